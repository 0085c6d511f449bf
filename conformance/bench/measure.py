"""The executor under measure: settings, goals, and each figure taken through the contract's endpoints."""

from __future__ import annotations

import concurrent.futures
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..client import ExecutorClient
from ..targets import Target, TargetSpec, Workspace, start_to_ready
from ..timeouts import KitTimeouts
from ..violations import Violation

__all__ = [
    "GOALS",
    "MB",
    "SCHEMA_VERSION",
    "TRIVIAL",
    "BenchError",
    "BenchSettings",
    "Goal",
    "Progress",
    "Subject",
    "lookup",
    "measure_start",
    "measure_subject",
    "percentiles",
    "spread",
]

SCHEMA_VERSION = 1
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
    #: What the executor loads at start: nothing (like the floor) or the kit's sample workspace.
    workspace: Workspace = Workspace.EMPTY


@dataclass(frozen=True)
class Goal:
    """A figure the reference executor is tuned to reach (issue #5), as a ratio or a bound."""

    figure: str
    limit: float
    text: str


#: The reference executor's goals. For other executors they are shown, not enforced.
GOALS = (
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
    """The running executor being measured, and the kit's client for it (keeping one exchange)."""

    target: Target
    timeouts: KitTimeouts
    client: ExecutorClient = field(init=False)
    notes: list[str] = field(default_factory=list)
    #: Busy answers (429/503) the throughput clients, each on a connection of its own, asked again after.
    busy_elsewhere: int = 0

    def __post_init__(self) -> None:
        self.client = self.connect()

    def connect(self) -> ExecutorClient:
        """A client on a connection of its own."""
        return ExecutorClient.of_target(self.target, self.timeouts, keep=1)

    @property
    def busy_answers(self) -> int:
        """Every busy answer asked again after, by the main client and the throughput clients."""
        return self.client.busy_answers + self.busy_elsewhere

    def execute(self, code: str, client: ExecutorClient | None = None) -> None:
        """Run ``code``, asked again on a busy answer (429/503); fail unless it ran with status ok."""
        exchange = (client or self.client).execute_when_free(code)
        body = exchange.json
        if exchange.status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
            raise BenchError(f"{code!r} did not run: {exchange.response_line} {exchange.body_text[:300]}")

    def timed_execute(self, code: str, client: ExecutorClient | None = None) -> float:
        started = time.perf_counter()
        self.execute(code, client)
        return time.perf_counter() - started

    def restart(self) -> None:
        """POST /restart, then wait for /ready, as a manager does between two users."""
        try:
            self.client.bound_to("READY-1").new_session()
        except Violation as exc:
            raise BenchError(str(exc)) from None

    def wait_ready(self) -> None:
        try:
            self.client.bound_to("READY-1").wait_ready()
        except Violation as exc:
            raise BenchError(str(exc)) from None

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
        subject.restart()
        restarts.append(time.perf_counter() - started)
        subject.execute(TRIVIAL)
        progress(f"restart to ready, run {run + 1}/{settings.repeats}: {restarts[-1]:.3f} s")
    figures["restart_to_ready_s"] = spread(restarts)
    return figures


def _throughput(subject: Subject, clients: int, calls: int) -> float:
    """Calls per second, ``calls`` shared among ``clients`` threads, each with its own connection."""
    share = [calls // clients + (1 if i < calls % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(count: int) -> int:
        """Run ``count`` calls on a connection of its own; the busy answers it met."""
        own = subject.connect()
        try:
            barrier.wait(timeout=subject.timeouts.request)
            for _ in range(count):
                subject.execute(TRIVIAL, own)
            return own.busy_answers
        finally:
            own.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, count) for count in share]
        barrier.wait(timeout=subject.timeouts.request)
        started = time.perf_counter()
        busy = sum(future.result() for future in futures)
        rate = calls / (time.perf_counter() - started)
    subject.busy_elsewhere += busy
    return rate


def lookup(document: dict[str, Any] | None, path: str) -> Any:
    value: Any = document
    for key in path.split(".") if path else ():
        value = value.get(key) if isinstance(value, dict) else None
    return value if path else None
