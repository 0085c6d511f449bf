"""One benchmark: the executor, then the floor, in the same run; the document bench.json holds."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from ..targets import TargetSpec
from .floor import measure_floor
from .measure import (
    GOALS,
    SCHEMA_VERSION,
    TRIVIAL,
    BenchSettings,
    Progress,
    Subject,
    lookup,
    measure_start,
    measure_subject,
)

__all__ = [
    "goals",
    "machine",
    "ratios",
    "run_bench",
    "versions",
]


def _value(figures: dict[str, Any], path: str) -> float | None:
    """The figure at ``path`` ("a.b"), its median if it was repeated."""
    value = lookup(figures, path)
    return value.get("median") if isinstance(value, dict) else value


def ratios(figures: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, float | None]:
    if floor is None:
        return {}

    def over(mine: float | None, theirs: float) -> float | None:
        return None if mine is None else mine / theirs

    return {
        "execute_p50": over(_value(figures, "execute_ms.p50"), floor["round_trip_ms"]["p50"]["median"]),
        "start_to_ready": over(_value(figures, "start_to_ready_s"), floor["start_s"]["median"]),
        "restart_to_ready": over(_value(figures, "restart_to_ready_s"), floor["restart_s"]["median"]),
    }


def goals(figures: dict[str, Any], ratio: dict[str, Any]) -> list[dict[str, Any]]:
    measured = {**figures, "ratio": ratio}
    out = []
    for goal in GOALS:
        value = _value(measured, goal.figure)
        out.append({**asdict(goal), "value": value, "met": None if value is None else value <= goal.limit})
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    try:
        total = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        total = None
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": total,
        "python": sys.version.split()[0],
    }


def versions() -> dict[str, str]:
    out = {"executor-conformance": __version__}
    for name in ("httpx", "jupyter_client", "ipykernel", "testcontainers", "docker"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def run_bench(
    spec: TargetSpec,
    settings: BenchSettings,
    *,
    with_floor: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure the executor, then the floor; return the bench.json document."""
    progress = progress or Progress(settings.repeats * 2 + 6)
    timeouts = spec.timeouts
    target, start = measure_start(spec, settings, progress)
    subject = Subject(target, timeouts)
    try:
        subject.wait_ready()
        for _ in range(settings.warmup):
            subject.execute(TRIVIAL)
        figures = {"start_to_ready_s": start, **measure_subject(subject, settings, progress)}
        described = target.describe()
        usage = target.resource_usage()
    finally:
        subject.client.close()
        target.stop()
    if start is None:
        subject.notes.append("start to ready is not measured for an executor the kit did not start")
    if usage is None:
        subject.notes.append("memory is not measured: the kit cannot see this executor's processes")
    figures["busy_answers"] = subject.busy_answers
    floor = None
    if with_floor:
        progress("the floor: a bare jupyter_client and a default ipykernel")
        floor = measure_floor(target, settings, timeouts)
    ratio = ratios(figures, floor)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "executor-conformance benchmark",
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "subject": described,
        "memory_source": usage.source if usage else None,
        "machine": machine(),
        "versions": versions(),
        "settings": asdict(settings),
        "figures": figures,
        "floor": floor,
        "ratios": ratio,
        "goals": goals(figures, ratio),
        "notes": subject.notes,
    }
