"""Crashes of the execution environment (CRASH-1 to CRASH-3).

Destructive: they run on targets the kit started, and on a URL only with --allow-destructive.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.catalogue import Need
from conformance.client import ExecutorClient, status_of
from conformance.targets import Capabilities

#: How the session's process dies (the test's id -> the language pack's snippet).
CRASHES = {"os._exit": "exits_the_process", "SIGKILL": "kills_itself"}
#: The per-request timeout of a call that crashes: far longer than CRASH-1's 10 s.
CRASH_CALL_TIMEOUT = 60


def _crash(executor: ExecutorClient, snippet: str) -> dict[str, Any]:
    exchange = executor.execute_when_free(
        executor.code(snippet), timeout=CRASH_CALL_TIMEOUT
    )  # far past the bound: no waiting for it
    elapsed = exchange.elapsed  # of the call that was accepted
    body = executor.expect_execute_response(exchange, requirement="CRASH-1")
    bound = executor.timeouts.crash_answer
    executor.expect(
        status_of(body) == "crashed" and body.get("restarted") is True and elapsed <= bound,
        f'"status": "crashed", "restarted": true within {bound:.0f} s',
        f"status {status_of(body)!r}, restarted {body.get('restarted')!r} after {elapsed:.1f} s",
        exchange,
        requirement="CRASH-1",
    )
    return body


@pytest.mark.conformance_requirement("CRASH-1")
@pytest.mark.conformance_needs(Need.DESTRUCTIVE)
@pytest.mark.parametrize("how", list(CRASHES))
def test_dying_environment_answers_crashed_promptly(executor: ExecutorClient, how: str) -> None:
    """If the session dies during a call, the call answers `crashed`, `restarted: true` within 10 s."""
    _crash(executor, CRASHES[how])
    executor.wait_ready()


@pytest.mark.conformance_requirement("CRASH-2")
@pytest.mark.conformance_needs(Need.DESTRUCTIVE)
def test_executor_recovers_by_itself(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """After a crash the executor becomes ready again, with mounted code, and runs code."""
    _crash(executor, CRASHES["os._exit"])
    executor.wait_ready()
    body = executor.run(executor.code("value_of_text", text="alive again"))
    executor.expect_status(body, "ok")
    if capabilities.workspace_mounted:
        order = executor.evaluate(executor.code("load_order"))
        executor.expect(bool(order), "the mounted code loaded again after the crash", order)


@pytest.mark.conformance_requirement("CRASH-3")
@pytest.mark.conformance_needs(Need.DESTRUCTIVE)
@pytest.mark.conformance_needs(Need.MEMORY_LIMIT)
def test_memory_exhaustion_does_not_take_down_the_server(executor: ExecutorClient) -> None:
    """User code that exhausts memory loses its own session, not the HTTP server: /health answers
    throughout, the call answers, and the next session works."""
    with executor.health_watched("a session exhausting the memory"):
        exchange = executor.execute_when_free(executor.code("memory_bomb"), timeout=60)
        executor.expect(
            exchange.error is None, "an answer to the call that exhausted memory", exchange.response_line, exchange
        )
        executor.wait_ready()
    executor.expect(
        exchange.status == 200, "HTTP 200 for code that raised", exchange.response_line, exchange, "ERROR-1"
    )
    executor.expect_status(executor.run(executor.code("value_of_text", text="still serving")), "ok")
