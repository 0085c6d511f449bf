"""A bounded load test of the manager: 8 clients over a pool of 3 reference executors, on 127.0.0.1.

Each client sends its calls to one session, in turn through the manager and straight to the
executor, each call printing a token of its own: no answer may be lost, or carry another call's
token. The figures (throughput, p50, p99, each way) go to the test's output and to
``manager-load.json`` in its folder; the README quotes one run.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, RunningExecutor, start_executor, start_manager, stop_executor

EXECUTORS = 3
CLIENTS = 8
CALLS_PER_CLIENT = 250  # 2,000 calls each way
#: A call that has not answered in this long is lost.
CALL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def load_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """(the manager's base URL, the executors' base URLs)."""
    folder = tmp_path_factory.mktemp("load")
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "STANDBY_KERNEL": "0"}
    command = [sys.executable, "-m", "reference_executor"]
    executors: list[RunningExecutor] = []
    manager = None
    try:
        for i in range(EXECUTORS):
            executors.append(start_executor(command, env, folder / f"executor-{i}.log"))
        config = {str(i): {"url": e.base_url, "type": "python"} for i, e in enumerate(executors)}
        manager = start_manager(config, folder)
        yield manager.base_url, [e.base_url for e in executors]
    finally:
        for running in [*executors, *([manager] if manager else [])]:
            stop_executor(running)


def _client(base_url: str, client_id: int) -> tuple[list[float], list[str]]:
    """Latencies of one client's calls, and what went wrong with any of them."""
    latencies, problems = [], []
    with httpx.Client(base_url=base_url, timeout=CALL_TIMEOUT) as http:
        for n in range(CALLS_PER_CLIENT):
            token = f"client-{client_id}-call-{n}"
            started = time.perf_counter()
            try:
                answer = http.post("/execute", json={"code": f"print({token!r})"})
                body = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                problems.append(f"{token}: {type(exc).__name__}")
                continue
            latencies.append(time.perf_counter() - started)
            printed = "".join(item.get("text", "") for item in body.get("outputs", []))
            if answer.status_code != 200 or printed != token + "\n":
                problems.append(f"{token}: HTTP {answer.status_code}, printed {printed!r}")
    return latencies, problems


def _load(session_urls: list[str]) -> dict[str, float | int | list[str]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(_client, [session_urls[i % len(session_urls)] for i in range(CLIENTS)], range(CLIENTS)))
    wall = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    problems = [p for _, found in results for p in found]
    return {
        "calls": CLIENTS * CALLS_PER_CLIENT,
        "answered": len(latencies),
        "throughput_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "problems": problems[:20],
    }


def test_no_answer_is_lost_or_misrouted_through_the_manager(load_pool: tuple[str, list[str]], tmp_path: Path) -> None:
    manager, executors = load_pool
    direct = _load(executors)
    through = _load([f"{manager}/session/{i}" for i in range(EXECUTORS)])
    figures = {"direct": direct, "through_the_manager": through, "clients": CLIENTS, "executors": EXECUTORS}
    (tmp_path / "manager-load.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    for name, run in (("direct", direct), ("through the manager", through)):
        assert run["problems"] == [] and run["answered"] == run["calls"], f"{name}: {run}"
