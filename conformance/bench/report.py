"""bench.md: the figures, the floor's, their ratios and the goals, as a table."""

from __future__ import annotations

from typing import Any

from ..results import published_schema
from .measure import MB, SCHEMA_VERSION, lookup

__all__ = [
    "ROWS",
    "bench_schema",
    "to_markdown",
]


def bench_schema() -> dict[str, Any]:
    """The JSON Schema of bench.json for this schema version (shipped in the package)."""
    return published_schema("bench", SCHEMA_VERSION)


#: The table: label, figure in bench["figures"], figure in bench["floor"], ratio, scale, digits.
ROWS = (
    ("start to ready (s)", "start_to_ready_s", "start_s", "start_to_ready", 1, 2),
    ("/execute 1+1 p50 (ms)", "execute_ms.p50", "round_trip_ms.p50", "execute_p50", 1, 2),
    ("/execute 1+1 p95 (ms)", "execute_ms.p95", "round_trip_ms.p95", "", 1, 2),
    ("/execute 1+1 p99 (ms)", "execute_ms.p99", "round_trip_ms.p99", "", 1, 2),
    ("throughput, 1 client (calls/s)", "throughput_1_client", "", "", 1, 1),
    ("throughput, {clients} clients (calls/s)", "throughput_{clients}_clients", "", "", 1, 1),
    ("restart to ready (s)", "restart_to_ready_s", "restart_s", "restart_to_ready", 1, 3),
    ("1 MB output (s)", "output_1mb_s", "", "", 1, 3),
    ("1 MB output (MB/s)", "output_1mb_bytes_per_s", "", "", 1 / MB, 1),
    ("memory at idle (MB)", "memory_idle_mb", "", "", 1, 1),
    ("memory after {memory_calls} calls (MB)", "memory_after_calls_mb", "", "", 1, 1),
)


def _cells(figure: Any, scale: float, digits: int) -> list[str]:
    if isinstance(figure, dict):
        return [f"{figure[key] * scale:.{digits}f}" for key in ("median", "min", "max")]
    return ["n/a" if figure is None else f"{figure * scale:.{digits}f}", "", ""]


def to_markdown(bench: dict[str, Any]) -> str:
    figures, floor, ratio = bench["figures"], bench["floor"], bench["ratios"]
    rows = []
    for label, mine, theirs, ratio_key, scale, digits in ROWS:
        label, mine = label.format(**bench["settings"]), mine.format(**bench["settings"])
        measured = _cells(lookup(figures, mine), scale, digits)
        base = _cells(lookup(floor, theirs), scale, digits)[0] if theirs and floor else ""
        times = f"{ratio[ratio_key]:.2f}x" if ratio.get(ratio_key) is not None else ""
        rows.append(f"| {label} | {' | '.join(measured)} | {base} | {times} |")
    subject = bench["subject"]
    name = subject.get("image") or subject.get("command") or subject.get("base_url")
    where = (floor or {}).get("where", "-")
    lines = [
        f"Benchmark of `{name}` ({subject['kind']}), {bench['at']}; floor measured on the {where}.",
        "",
        "| figure | median | min | max | floor | ratio |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "| goal of the reference executor | value | met |",
        "|---|---:|:---:|",
    ]
    for goal in bench["goals"]:
        value = "n/a" if goal["value"] is None else f"{goal['value']:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[goal["met"]]
        lines.append(f"| {goal['text']} | {value} | {met} |")
    for note in bench["notes"] + ([floor["note"]] if floor and floor.get("note") else []):
        lines.append(f"\nNote: {note}")
    return "\n".join(lines) + "\n"
