"""A bounded scale test of managers that share one pool: one manager, then two on one Redis.

Clients run allocate / execute / deallocate cycles over a pool of example executors (local
processes). Each execute prints a token of its own call and must get exactly it back (nothing
lost or misrouted); an executor handed to a client while another still holds it is a double
allocation. In the two-manager phase one manager is killed (SIGKILL) half-way and started again;
its clients go on through the other meanwhile. After each phase, nothing may stay allocated
(an allocation the killed manager was making when it died is freed by the lease). The figures
(cycles per second, execute p50 and p99, each phase) go to ``manager-scale.json`` in the test's
folder and to its output; the README quotes one run.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    EXAMPLE_EXECUTOR,
    EXAMPLES,
    RunningExecutor,
    start_executor,
    start_manager,
    stop_executor,
    wait_for,
)
from tests.pool.redis_server import PROBLEM, needs, redis_server

pytestmark = needs(PROBLEM, "Redis-backed")

EXECUTORS = 6
CLIENTS = 12
CYCLES_PER_PHASE = 48
#: Seconds an allocation lasts without use: frees what the killed manager was handing out.
LEASE_S = 5.0
#: No call may take longer; no phase may either.
CALL_TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 600.0
OPERATOR = {"Authorization": "Bearer operator"}


@dataclass
class Phase:
    """What one phase's clients saw."""

    managers: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[str, str] = field(default_factory=dict)  # executor id -> the call holding it
    doubles: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cycles: int = 0

    def manager(self, n: int) -> str:
        with self.lock:
            return self.managers[n % len(self.managers)]


def _call(phase: Phase, n: int, send: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
    """``send`` through manager ``n``; the other one(s) in turn while one does not answer (killed)."""
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        with httpx.Client(base_url=phase.manager(n), timeout=CALL_TIMEOUT_S) as http:
            try:
                return send(http)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                n += 1
                time.sleep(0.05)


def _cycle(phase: Phase, client: int, n: int) -> None:
    call = f"client-{client}-cycle-{n}"
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        answer = _call(phase, n, lambda http: http.post("/allocate", headers=OPERATOR))
        if answer.status_code == 200:
            break
        if answer.status_code != 503 or time.monotonic() > deadline:
            phase.problems.append(f"{call}: allocate {answer.status_code} {answer.text[:200]}")
            return
        time.sleep(0.02)
    allocation = answer.json()
    executor_id, token = allocation["container_id"], allocation["token"]
    with phase.lock:
        if executor_id in phase.held:
            phase.doubles.append(f"{executor_id}: {phase.held[executor_id]} and {call}")
        phase.held[executor_id] = call
    session = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    ran = _call(phase, n + 1, lambda http: http.post(
        f"/session/{executor_id}/execute", json={"code": f"print({call!r})"}, headers=session))  # fmt: skip
    elapsed = time.perf_counter() - started
    text = ran.json().get("outputs", [{}])[0].get("text") if ran.status_code == 200 else None
    if text != f"{call}\n":
        phase.problems.append(f"{call}: executor {executor_id} answered {ran.status_code} {ran.text[:200]}")
    with phase.lock:
        phase.latencies.append(elapsed)
        del phase.held[executor_id]  # before it is freed: nobody else can get it until then
    freed = _call(phase, n, lambda http: http.post(f"/deallocate/{executor_id}", headers=session))
    if freed.status_code != 200:
        phase.problems.append(f"{call}: deallocate {freed.status_code} {freed.text[:200]}")
    with phase.lock:
        phase.cycles += 1


def _run_phase(phase: Phase, halfway: Callable[[], None] | None = None) -> float:
    """Every client's cycles; ``halfway`` is called once half of them are done. The seconds it took."""
    per_client = CYCLES_PER_PHASE // CLIENTS
    started = time.perf_counter()

    def client(i: int) -> None:
        for n in range(per_client):
            _cycle(phase, i, n)
            if halfway is not None and i == 0 and n == per_client // 2:
                halfway()

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client, i) for i in range(CLIENTS)]:
            future.result(timeout=PHASE_TIMEOUT_S)
    return time.perf_counter() - started


def _figures(phase: Phase, seconds: float) -> dict[str, Any]:
    ordered = sorted(phase.latencies)
    return {
        "cycles": phase.cycles,
        "seconds": round(seconds, 1),
        "cycles_per_s": round(phase.cycles / seconds, 1),
        "execute_p50_ms": round(statistics.median(ordered) * 1000, 2),
        "execute_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
    }


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[list[RunningExecutor], str]]:
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "EXECUTION_TIMEOUT": "2"}
    started: list[RunningExecutor] = []
    try:
        with redis_server(tmp_path / "redis") as url:
            for i in range(EXECUTORS):
                started.append(start_executor(EXAMPLE_EXECUTOR, env, tmp_path / f"executor-{i}.log"))
            yield started, url
    finally:
        for executor in started:
            stop_executor(executor)


def _nothing_allocated(manager: RunningExecutor) -> None:
    def free() -> bool:
        status = manager.client.get("/status", headers=OPERATOR).json()
        return bool(status["allocated"] == 0 and status["available"] == EXECUTORS)  # JSON: untyped

    wait_for(free, LEASE_S + CALL_TIMEOUT_S, "every executor to be free after the phase")


def test_managers_sharing_one_redis_never_double_allocate_or_lose_a_call(
    pool: tuple[list[RunningExecutor], str], tmp_path: Path
) -> None:
    executors, url = pool
    config = {str(i): {"url": e.base_url, "type": "python"} for i, e in enumerate(executors)}
    env = {"MANAGER_TOKEN": "operator"}
    store = ("--store", url, "--lease", str(LEASE_S))
    first = start_manager(config, tmp_path, env, store, "first")
    second = start_manager(config, tmp_path, env, store, "second")
    managers = [first, second]
    figures: dict[str, Any] = {}
    try:
        alone = Phase([first.base_url])
        figures["one manager"] = _figures(alone, _run_phase(alone))
        _nothing_allocated(first)

        together = Phase([first.base_url, second.base_url])

        def kill_and_restart_the_second() -> None:
            os.killpg(second.process.pid, signal.SIGKILL)
            second.process.wait(timeout=15)
            stop_executor(second)
            again = start_manager(config, tmp_path, env, store, "second-again")
            managers.append(again)
            with together.lock:
                together.managers[1] = again.base_url

        figures["two managers"] = _figures(together, _run_phase(together, kill_and_restart_the_second))
        _nothing_allocated(managers[-1])
    finally:
        for manager in managers:
            stop_executor(manager)
    (tmp_path / "manager-scale.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    for phase in (alone, together):
        assert phase.doubles == [], phase.doubles[:5]
        assert phase.problems == [], phase.problems[:5]
        assert phase.cycles == CYCLES_PER_PHASE // CLIENTS * CLIENTS
