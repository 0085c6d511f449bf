"""``executor-pool latency --manager URL --token-file F``: what a user waits for, measured on a
running pool.

Users come one after another, as they do to a pool run for many: each cycle allocates an executor
of ``--type``, runs trivial code in its session, holds it ``--hold`` seconds (a user's session
lasts a while, which lets the pool clear the executors given back meanwhile), and deallocates it.
The time to an allocation is from the first ``POST /allocate`` until one answers 200, asked
again while none is free (503): a pool whose executors are all being restarted or recycled makes
its users wait, and that wait is counted. ``POST /deallocate`` is timed too (a restart, or the end
of a container). Each time is one sample; the answer is the median and the 99th percentile of
each, in milliseconds.

Warm-up cycles (``--warm-up``) run first and are not counted. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Latency", "main", "measure"]

#: How long one call may take, and how long a user waits for a free executor.
CALL_TIMEOUT, FREE_TIMEOUT = 60.0, 120.0
#: How often /allocate is asked again while no executor is free.
RETRY_INTERVAL = 0.02


@dataclass(frozen=True)
class Latency:
    """Milliseconds per cycle: to an allocation, and of the deallocation."""

    allocate: list[float]
    deallocate: list[float]

    def summary(self) -> dict[str, float | int]:
        return {
            "cycles": len(self.allocate),
            **_percentiles("allocate", self.allocate),
            **_percentiles("deallocate", self.deallocate),
        }


def _percentiles(name: str, samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    return {f"{name}_p50_ms": round(statistics.median(samples), 1), f"{name}_p99_ms": round(cuts[98], 1)}


def _allocated(client: httpx.Client, kind: str) -> tuple[dict[str, str], float]:
    """An allocation of ``kind``, and the milliseconds it took to get one."""
    started = time.perf_counter()
    deadline = time.monotonic() + FREE_TIMEOUT
    while True:
        answer = client.post("/allocate", params={"container_type": kind})
        if answer.status_code == 200:
            return answer.json(), (time.perf_counter() - started) * 1000
        if answer.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"POST /allocate answered HTTP {answer.status_code}: {answer.text[:300]}")
        time.sleep(RETRY_INTERVAL)


def measure(manager: str, token: str | None, kind: str, cycles: int, warm_up: int = 3, hold: float = 0.0) -> Latency:
    """``cycles`` users, one after another, each holding its executor ``hold`` s, on the pool behind ``manager``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    allocate: list[float] = []
    deallocate: list[float] = []
    with httpx.Client(base_url=manager.rstrip("/"), headers=headers, timeout=CALL_TIMEOUT) as client:
        for cycle in range(warm_up + cycles):
            allocation, took = _allocated(client, kind)
            session = {"Authorization": f"Bearer {allocation['token']}"} if "token" in allocation else {}
            ran = client.post(f"/session/{allocation['container_id']}/execute", json={"code": "1"}, headers=session)
            if ran.status_code != 200:
                raise RuntimeError(f"the session answered HTTP {ran.status_code}: {ran.text[:300]}")
            time.sleep(hold)  # the user's session: what a real one does with it is not measured
            started = time.perf_counter()
            ended = client.post(f"/deallocate/{allocation['container_id']}", headers=session)
            if ended.status_code != 200:
                raise RuntimeError(f"POST /deallocate answered HTTP {ended.status_code}: {ended.text[:300]}")
            if cycle >= warm_up:
                allocate.append(took)
                deallocate.append((time.perf_counter() - started) * 1000)
    return Latency(allocate, deallocate)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="executor-pool latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manager", required=True, help="the manager's URL")
    parser.add_argument("--token-file", help="a file holding the manager's token (none: a pool without auth)")
    parser.add_argument("--type", default="python", help="the executors' type (default python)")
    parser.add_argument("--cycles", type=int, default=50, help="users, one after another (default 50)")
    parser.add_argument("--warm-up", type=int, default=3, help="cycles run first, not counted (default 3)")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds each user holds its executor (default 0)")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.warm_up < 0 or not 0 <= args.hold <= FREE_TIMEOUT:
        parser.error(f"--cycles must be at least 1, --warm-up at least 0, --hold from 0 to {FREE_TIMEOUT:g}")
    try:
        token = Path(args.token_file).read_text(encoding="utf-8").strip() if args.token_file else None
        latency = measure(args.manager, token, args.type, args.cycles, args.warm_up, args.hold)
    except (OSError, httpx.HTTPError, RuntimeError) as exc:
        print(f"executor-pool latency: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(latency.summary()))
    return 0
