"""What recycling costs a pool's users, in one run: ``nox -s pool_latency``.

A generated compose pool of four reference executors, once restarting them between users and once
recycling them (``--recycle``), one after the other on this machine; ``executor-pool latency`` on
each, the same cycles: users one after another, each holding its executor ``HOLD`` s. Prints one
JSON line per pool and a Markdown table (the README's).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from executor_pool.compose import TOKEN_FILE
from tests.image.docker_env import IMAGE
from tests.image.test_compose_pool import COMPOSE
from tests.image.test_pool_certification import up

HOST = "127.0.0.5"
MANAGER = f"http://{HOST}:5000"
CYCLES, WARM_UP, HOLD = 40, 4, 2.0


def _measured(here: Path, *flags: str) -> dict[str, float]:
    subprocess.run([sys.executable, "-m", "executor_pool", "compose", "-n", "4", "-t", "python:4",
                    "--image", f"python={IMAGE}", "--manager-image", IMAGE, "--host-ip", HOST,
                    "--network-base", "10.217.0.0/16", "-o", str(here / "pool.yml"), *flags],
                   check=True, cwd=here, capture_output=True)  # fmt: skip
    assert COMPOSE is not None  # else pool_latency cannot run (no compose command)
    with up(here, [*COMPOSE, "-p", here.name.lower(), "-f", "pool.yml"], MANAGER, size=4):
        latency = [sys.executable, "-m", "executor_pool", "latency", "--manager", MANAGER,
                   "--token-file", str(here / TOKEN_FILE), "--cycles", str(CYCLES), "--warm-up", str(WARM_UP),
                   "--hold", str(HOLD)]  # fmt: skip
        measured = subprocess.run(latency, check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(measured.stdout)
    return figures


def main() -> int:
    rows = {}
    with tempfile.TemporaryDirectory(prefix="pool-latency-") as folder:
        for name, flags in (("restarted", ()), ("recycled", ("--recycle", "python"))):
            here = Path(folder) / name
            here.mkdir()
            rows[name] = _measured(here, *flags)
            print(json.dumps({"pool": name, **rows[name]}), flush=True)
    print("\n| between users | allocate p50 (ms) | allocate p99 (ms) | deallocate p50 (ms) | deallocate p99 (ms) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['allocate_p50_ms']} | {row['allocate_p99_ms']} | "
              f"{row['deallocate_p50_ms']} | {row['deallocate_p99_ms']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
