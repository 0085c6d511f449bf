"""Health: GET /health (HEALTH-1, HEALTH-2)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.client import ExecutorClient


@pytest.mark.requirement("HEALTH-1")
def test_health_answers_ok(executor: ExecutorClient) -> None:
    """GET /health answers 200 {"status": "ok"} while the HTTP process lives."""
    exchange = executor.health()
    executor.expect(exchange.status == 200, "HTTP 200", exchange.response_line, exchange)
    body = exchange.json
    executor.expect(
        isinstance(body, dict) and body.get("status") == "ok", '{"status": "ok"}', exchange.body_text, exchange
    )


def _health_latencies(executor: ExecutorClient, busy_for: float) -> list[float]:
    """Poll /health for ``busy_for`` seconds; fail on the first slow or bad answer."""
    latencies = []
    deadline = time.monotonic() + busy_for
    while time.monotonic() < deadline:
        exchange = executor.health(timeout=executor.timeouts.health + executor.timeouts.request)
        executor.expect(
            exchange.status == 200 and exchange.elapsed <= executor.timeouts.health,
            f"HTTP 200 within {executor.timeouts.health:.0f} s",
            exchange.response_line,
            exchange,
        )
        latencies.append(exchange.elapsed)
        time.sleep(executor.timeouts.poll_interval * 4)
    return latencies


@pytest.mark.requirement("HEALTH-2")
def test_health_answers_within_a_second_while_code_runs_and_during_restart(executor: ExecutorClient) -> None:
    """/health answers within 1 s while user code runs, and while the session restarts."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(executor.execute, "import time\ntime.sleep(1.5)")
        _health_latencies(executor, busy_for=1.2)
        running.result()
        restarting = pool.submit(executor.restart)
        _health_latencies(executor, busy_for=0.5)
        restarting.result()
    executor.wait_ready()
