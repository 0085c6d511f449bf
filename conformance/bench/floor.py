"""The floor: a bare jupyter_client and a default ipykernel, in the image under test when it can."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..targets import Target
from ..timeouts import KitTimeouts
from .measure import BenchError, BenchSettings, percentiles, spread

__all__ = [
    "FLOOR_SCRIPT",
    "measure_floor",
]

#: The floor's own script, run by a bare Python (here, or in a container of the image under test).
FLOOR_SCRIPT = Path(__file__).with_name("floor_kernel.py")


def _floor_arguments(settings: BenchSettings) -> list[str]:
    return ["--repeats", str(settings.repeats), "--calls", str(settings.calls), "--warmup", str(settings.warmup)]


def measure_floor(target: Target, settings: BenchSettings, timeouts: KitTimeouts) -> dict[str, Any]:
    """The bare jupyter_client floor: where the executor runs, under its limits, when the target has
    such a place of its own (an image's container); else here, on the kit's host."""
    args, within = _floor_arguments(settings), timeouts.startup * (settings.repeats * 2 + 1)
    beside = target.run_beside(FLOOR_SCRIPT, args, within, env={"JUPYTER_RUNTIME_DIR": "/tmp/kit-floor"})
    why = ""
    if beside is not None and beside.output is not None:
        raw, where = json.loads(beside.output), beside.where
    else:
        if beside is not None:
            why = f"the image cannot run the floor ({beside.why}); it was measured on the host, without limits"
        done = subprocess.run(
            [sys.executable, str(FLOOR_SCRIPT), *args], capture_output=True, text=True, timeout=within, check=False
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
