"""Health: GET /health (HEALTH-1, HEALTH-2)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from conformance.client import ExecutorClient, status_of
from conformance.pace import Timing


@pytest.mark.conformance_requirement("HEALTH-1")
def test_health_answers_ok(executor: ExecutorClient) -> None:
    """GET /health answers 200 {"status": "ok"} while the HTTP process lives."""
    exchange = executor.health()
    executor.expect(exchange.status == 200, "HTTP 200", exchange.response_line, exchange)
    body = exchange.json
    executor.expect(
        isinstance(body, dict) and body.get("status") == "ok", '{"status": "ok"}', exchange.body_text, exchange
    )


def _health_while(executor: ExecutorClient, busy: Future[Any], timing: Timing) -> None:
    """Poll /health until ``busy`` is done (at least once): a bad answer fails at once, a slow one
    is noted in ``timing``."""
    polls = 0
    while polls == 0 or not busy.done():
        exchange = executor.health(timeout=executor.timeouts.health + executor.timeouts.request)
        executor.expect(exchange.status == 200, timing.expected, exchange.response_line, exchange)
        timing.saw(exchange.elapsed, exchange)
        polls += 1
        time.sleep(executor.timeouts.poll_interval * 4)


def _health_while_code_runs_and_during_restart(executor: ExecutorClient) -> Timing:
    timing = Timing(executor.timeouts.health, f"HTTP 200 within {executor.timeouts.health:.0f} s")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Asked again while the answer is "busy" or "not ready": the polls must overlap running code,
        # or an executor that blocks /health while busy would pass unseen.
        running = pool.submit(executor.execute_when_free, executor.code("sleep_then_value", seconds=2.5), 5)
        _health_while(executor, running, timing)
        ran = running.result()
        body = executor.expect_execute_response(ran)  # a response without its fields is EXEC-1's
        # "timeout" ran the code too (for as long as the executor's timeout): what matters here is
        # that it ran while /health was asked; whether the timeout was honoured is TIMEOUT-6's.
        executor.expect(
            status_of(body) in ("ok", "timeout"), "the code to run (HTTP 200, ok or timeout)", ran.response_line, ran
        )
        _health_while(executor, pool.submit(executor.restart), timing)
    executor.wait_ready()
    return timing


@pytest.mark.conformance_requirement("HEALTH-2")
def test_health_answers_within_a_second_while_code_runs_and_during_restart(executor: ExecutorClient) -> None:
    """/health answers within 1 s while user code runs (2.5 s of it), and while the session
    restarts; a slow answer is judged on the executor's time (``conformance.pace``)."""
    executor.judge_time(
        _health_while_code_runs_and_during_restart(executor),
        lambda: _health_while_code_runs_and_during_restart(executor),
    )
