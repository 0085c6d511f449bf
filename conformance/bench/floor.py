"""The floor: a bare jupyter_client and a default ipykernel, in the image under test when it can."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..image import ImageTarget, archive_of
from ..targets import Target
from ..timeouts import KitTimeouts
from .measure import BenchError, BenchSettings, percentiles, spread

__all__ = [
    "FLOOR_SCRIPT",
    "measure_floor",
]

#: The floor's own script, run by a bare Python (here, or in a container of the image under test).
FLOOR_SCRIPT = Path(__file__).with_name("floor_kernel.py")


def _floor_command(settings: BenchSettings, script: str) -> list[str]:
    return [
        script,
        "--repeats",
        str(settings.repeats),
        "--calls",
        str(settings.calls),
        "--warmup",
        str(settings.warmup),
    ]


def measure_floor(target: Target, settings: BenchSettings, timeouts: KitTimeouts) -> dict[str, Any]:
    """The bare jupyter_client floor: in the image under test with its limits when possible, else here."""
    raw: dict[str, Any] | None = None
    where, why = "host", ""
    if isinstance(target, ImageTarget):
        raw, why = _floor_in_container(target, settings, timeouts)
        where = "container"
    if raw is None:
        done = subprocess.run(
            [sys.executable, *_floor_command(settings, str(FLOOR_SCRIPT))],
            capture_output=True,
            text=True,
            timeout=timeouts.startup * (settings.repeats * 2 + 1),
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"the floor could not be measured on the host:\n{done.stderr[-2000:]}")
        raw, where = json.loads(done.stdout), "host"
    latency = [percentiles(run) for run in raw["round_trip_s"]]
    floor = {
        "where": where,
        "start_s": spread(raw["start_s"]),
        "round_trip_ms": {key: spread([run[key] * 1000 for run in latency]) for key in ("p50", "p95", "p99")},
        "restart_s": spread(raw["restart_s"]),
        "versions": raw["versions"],
    }
    if why:
        floor["note"] = why
    return floor


def _floor_in_container(
    target: ImageTarget, settings: BenchSettings, timeouts: KitTimeouts
) -> tuple[dict[str, Any] | None, str]:
    """Run floor.py in a container of the image under test, with the same limits."""
    import docker

    client = docker.from_env()
    container = client.containers.create(
        target.image,
        ["python3", *_floor_command(settings, "/kit-floor.py")],
        entrypoint=[],
        environment={"JUPYTER_RUNTIME_DIR": "/tmp/kit-floor", "HOME": "/tmp"},
        network_disabled=True,
        **target.docker_limits(),
    )
    try:
        container.put_archive("/", archive_of(FLOOR_SCRIPT, "kit-floor.py"))  # through the engine's API
        container.start()
        status = container.wait(timeout=timeouts.startup * (settings.repeats * 2 + 1))
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        if status.get("StatusCode") == 0:
            return json.loads(out), ""
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace").strip().splitlines()
        last = err[-1] if err else f"exit code {status.get('StatusCode')}"
        return None, f"the image cannot run the floor ({last}); it was measured on the host, without limits"
    finally:
        container.remove(force=True)
        client.close()
