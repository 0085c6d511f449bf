"""The benchmark: how fast an executor answers, how fast it starts and restarts, what it weighs.

    executor-conformance bench [--image IMG | --url URL | --executor-command CMD] [--out DIR]

Any executor is measured the same way, through the contract's four endpoints only:

- start to ready: from the executor's process or container beginning to run (the kit's Popen, or
  Docker's ``State.StartedAt``: creating a container is Docker's time, not the executor's) to the
  first ``/ready`` true (not for ``--url``);
- ``/execute`` latency of ``1+1``: p50, p95 and p99 over a few hundred calls;
- throughput of back-to-back calls from one client and from several at once;
- ``/restart`` to ready again;
- a 1 MB output: time and bytes per second;
- memory at idle and after 200 calls (the container's, or the process tree's RSS).

Each figure is the median of ``repeats`` runs, with min and max. Before every figure that a
background task could disturb (idle memory, a restart), the kit waits, with a deadline, for the
executor's CPU to go quiet. In the same run, the floor is measured: a bare ``jupyter_client``
driving a default ``ipykernel`` (``conformance/floor.py``), inside a container of the image
under test with the same limits when it can, on the host otherwise. Figures are reported as
ratios to that floor, because absolute times vary from machine to machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import __version__
from .image import ImageTarget
from .options import OptionError, TargetSpec, add_target_options, spec_from
from .targets import Target, TargetError, start_to_ready
from .timeouts import KitTimeouts

__all__ = ["TARGETS", "BenchSettings", "main", "run_bench"]

SCHEMA_VERSION = 1
FLOOR_SCRIPT = Path(__file__).with_name("floor.py")
TRIVIAL = "1+1"
MB = 1_000_000


@dataclass(frozen=True)
class BenchSettings:
    repeats: int = 3
    #: ``1+1`` calls per latency run.
    calls: int = 300
    #: Calls before any figure, so that imports and caches are warm.
    warmup: int = 20
    #: Calls per throughput run, shared among the clients.
    throughput_calls: int = 200
    clients: int = 8
    output_bytes: int = MB
    #: Calls between the idle memory figure and the "after calls" one.
    memory_calls: int = 200
    #: What the executor loads at start: "empty" (like the floor) or "kit" (the sample workspace).
    workspace: str = "empty"


@dataclass(frozen=True)
class Goal:
    """A figure the reference executor is tuned to reach (issue #5), as a ratio or a bound."""

    figure: str
    limit: float
    text: str


#: The reference executor's goals. For other executors they are shown, not enforced.
TARGETS = (
    Goal("ratio.execute_p50", 1.0, "/execute 1+1 p50 <= 1.0x the bare jupyter_client round trip"),
    Goal("ratio.start_to_ready", 1.3, "start to ready <= 1.3x the bare kernel's start"),
    Goal("ratio.restart_to_ready", 0.25, "restart to ready <= 0.25x the bare kernel's restart"),
    Goal("memory_idle_mb", 170.0, "idle memory of the whole executor <= 170 MB"),
)


class BenchError(RuntimeError):
    """The executor could not be measured (it failed a trivial call, or never became ready)."""


def spread(values: list[float]) -> dict[str, float | int]:
    """Median, min and max of repeated measures."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": statistics.median(samples), "p95": cuts[94], "p99": cuts[98]}


class Progress:
    """One line per step on stderr, so a long run shows where it is."""

    def __init__(self, steps: int, stream: Any = sys.stderr) -> None:
        self.steps, self.step, self.stream, self.started = steps, 0, stream, time.monotonic()

    def __call__(self, text: str) -> None:
        self.step += 1
        elapsed = time.monotonic() - self.started
        self.stream.write(f"[bench {self.step:>2}/{self.steps} {elapsed:6.1f} s] {text}\n")
        self.stream.flush()


@dataclass
class Subject:
    """The running executor being measured, and a client for it."""

    target: Target
    timeouts: KitTimeouts
    http: httpx.Client = field(init=False)
    busy_answers: int = 0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.target.base_url, timeout=self.timeouts.request, headers=self.target.headers
        )

    def execute(self, code: str, http: httpx.Client | None = None) -> dict[str, Any]:
        """Run ``code``; ask again on a busy answer (429/503); fail unless it ran with status ok."""
        deadline = time.monotonic() + self.timeouts.ready
        while True:
            response = (http or self.http).post("/execute", json={"code": code})
            if response.status_code not in (429, 503) or time.monotonic() > deadline:
                break
            self.busy_answers += 1
            time.sleep(self.timeouts.poll_interval)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("status") != "ok":
            raise BenchError(f"{code!r} did not run: HTTP {response.status_code} {response.text[:300]}")
        return body

    def timed_execute(self, code: str, http: httpx.Client | None = None) -> float:
        started = time.perf_counter()
        self.execute(code, http)
        return time.perf_counter() - started

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeouts.ready
        while time.monotonic() < deadline:
            try:
                response = self.http.get("/ready")
                if response.status_code == 200 and response.json().get("ready") is True:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(self.timeouts.poll_interval)
        raise BenchError(f"/ready did not say ready within {self.timeouts.ready:.0f} s")

    def settle(self) -> None:
        """Wait (bounded) until the executor's CPU is quiet: no background start in progress."""
        window, deadline = self.timeouts.settle_window, time.monotonic() + self.timeouts.settle
        before = self.target.resource_usage()
        if before is None:
            return
        while time.monotonic() < deadline:
            time.sleep(window)
            after = self.target.resource_usage()
            if after is None:
                return
            if after.cpu_seconds - before.cpu_seconds < 0.05 * window:
                return
            before = after
        self.notes.append(f"the executor's CPU did not go quiet within {self.timeouts.settle:.0f} s")

    def memory_mb(self) -> float | None:
        usage = self.target.resource_usage()
        return None if usage is None else usage.memory_bytes / MB


def measure_start(spec: TargetSpec, settings: BenchSettings, progress: Progress) -> tuple[Target, Any]:
    """Start the executor ``repeats`` times; keep the last one running. Returns it and the figure."""
    times: list[float] = []
    for run in range(settings.repeats):
        target = spec.target()
        started = time.perf_counter()
        target.start()
        measured = start_to_ready(target)  # from the launch itself, when the target knows it
        times.append(time.perf_counter() - started if measured is None else measured)
        if not spec.started_by_kit:
            progress("start to ready: not measured (the kit did not start this executor)")
            return target, None
        progress(f"start to ready, run {run + 1}/{settings.repeats}: {times[-1]:.2f} s")
        if run < settings.repeats - 1:
            target.stop()
    return target, spread(times)


def measure_subject(subject: Subject, settings: BenchSettings, progress: Progress) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    subject.settle()
    figures["memory_idle_mb"] = subject.memory_mb()
    for _ in range(settings.memory_calls):
        subject.execute(TRIVIAL)
    subject.settle()
    figures["memory_after_calls_mb"] = subject.memory_mb()
    progress(f"memory: idle {figures['memory_idle_mb']}, after {settings.memory_calls} calls")

    latency = [
        percentiles([subject.timed_execute(TRIVIAL) for _ in range(settings.calls)]) for _ in range(settings.repeats)
    ]
    figures["execute_ms"] = {key: spread([run[key] * 1000 for run in latency]) for key in ("p50", "p95", "p99")}
    progress(f"/execute 1+1: p50 {figures['execute_ms']['p50']['median']:.2f} ms")

    figures["throughput_1_client"] = spread(
        [_throughput(subject, 1, settings.throughput_calls) for _ in range(settings.repeats)]
    )
    figures[f"throughput_{settings.clients}_clients"] = spread(
        [_throughput(subject, settings.clients, settings.throughput_calls) for _ in range(settings.repeats)]
    )
    progress(f"throughput: 1 and {settings.clients} clients")

    code = f"import sys\nsys.stdout.write('x' * {settings.output_bytes})"
    seconds = [subject.timed_execute(code) for _ in range(settings.repeats)]
    figures["output_1mb_s"] = spread(seconds)
    figures["output_1mb_bytes_per_s"] = spread([settings.output_bytes / s for s in seconds])
    progress(f"{settings.output_bytes / MB:g} MB output: {statistics.median(seconds):.3f} s")

    restarts: list[float] = []
    for run in range(settings.repeats):
        subject.settle()
        started = time.perf_counter()
        response = subject.http.post("/restart", json={})
        if response.status_code != 200:
            raise BenchError(f"/restart answered HTTP {response.status_code} {response.text[:300]}")
        subject.wait_ready()
        restarts.append(time.perf_counter() - started)
        subject.execute(TRIVIAL)
        progress(f"restart to ready, run {run + 1}/{settings.repeats}: {restarts[-1]:.3f} s")
    figures["restart_to_ready_s"] = spread(restarts)
    return figures


def _throughput(subject: Subject, clients: int, calls: int) -> float:
    """Calls per second, ``calls`` shared among ``clients`` threads, each with its own connection."""
    share = [calls // clients + (1 if i < calls % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(count: int) -> None:
        with httpx.Client(
            base_url=subject.target.base_url, timeout=subject.timeouts.request, headers=subject.target.headers
        ) as http:
            barrier.wait(timeout=subject.timeouts.request)
            for _ in range(count):
                subject.execute(TRIVIAL, http)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, count) for count in share]
        barrier.wait(timeout=subject.timeouts.request)
        started = time.perf_counter()
        for future in futures:
            future.result()
        return calls / (time.perf_counter() - started)


# -- the floor --------------------------------------------------------------------------------


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
        volumes={str(FLOOR_SCRIPT): {"bind": "/kit-floor.py", "mode": "ro"}},
        network_disabled=True,
        **target.docker_limits(),
    )
    try:
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


# -- the run ----------------------------------------------------------------------------------


def _value(figures: dict[str, Any], path: str) -> float | None:
    """The figure at ``path`` ("a.b"), its median if it was repeated."""
    value = _lookup(figures, path)
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
    for goal in TARGETS:
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
        subject.http.close()
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


# -- rendering --------------------------------------------------------------------------------


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


def _lookup(document: dict[str, Any] | None, path: str) -> Any:
    value: Any = document
    for key in path.split(".") if path else ():
        value = value.get(key) if isinstance(value, dict) else None
    return value if path else None


def _cells(figure: Any, scale: float, digits: int) -> list[str]:
    if isinstance(figure, dict):
        return [f"{figure[key] * scale:.{digits}f}" for key in ("median", "min", "max")]
    return ["n/a" if figure is None else f"{figure * scale:.{digits}f}", "", ""]


def to_markdown(bench: dict[str, Any]) -> str:
    figures, floor, ratio = bench["figures"], bench["floor"], bench["ratios"]
    rows = []
    for label, mine, theirs, ratio_key, scale, digits in ROWS:
        label, mine = label.format(**bench["settings"]), mine.format(**bench["settings"])
        measured = _cells(_lookup(figures, mine), scale, digits)
        base = _cells(_lookup(floor, theirs), scale, digits)[0] if theirs and floor else ""
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


# -- the command ------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="executor-conformance bench", description=__doc__.splitlines()[0])
    add_target_options(parser.add_argument)
    defaults = BenchSettings()
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="runs per figure (median, min, max)")
    parser.add_argument("--calls", type=int, default=defaults.calls, help="1+1 calls per latency run")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients for throughput")
    parser.add_argument("--no-floor", action="store_true", help="do not measure the bare jupyter_client floor")
    parser.add_argument(
        "--bench-workspace",
        choices=("empty", "kit"),
        default="empty",
        help="what the executor loads at start: nothing (default: like the floor) or the kit's sample workspace",
    )
    parser.add_argument("--out", default="results/bench", help="where bench.json and bench.md go")
    parser.add_argument("--check-goals", action="store_true", help="exit 1 unless every goal is met")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.calls < 2 or args.clients < 1:
        parser.error("--repeats must be >= 1, --calls >= 2 and --clients >= 1")
    settings = BenchSettings(
        repeats=args.repeats, calls=args.calls, clients=args.clients, workspace=args.bench_workspace
    )

    def option(name: str) -> Any:
        return getattr(args, name)

    try:
        spec = spec_from(option)
        if not args.no_workspace:
            # The kit's workspace sleeps on purpose (READY-4); the floor loads nothing either.
            spec = spec.with_workspace(settings.workspace)
        bench = run_bench(spec, settings, with_floor=not args.no_floor)
    except OptionError as exc:
        parser.error(str(exc))
    except (TargetError, BenchError) as exc:
        print(f"executor-conformance bench: {exc}", file=sys.stderr)
        return 3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=2) + "\n", encoding="utf-8")
    table = to_markdown(bench)
    (out / "bench.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"    json: {out / 'bench.json'}\nmarkdown: {out / 'bench.md'}")
    missed = [goal for goal in bench["goals"] if goal["met"] is False]
    return 1 if args.check_goals and missed else 0
