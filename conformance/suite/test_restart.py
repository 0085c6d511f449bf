"""Restart (RESTART-1 to RESTART-5)."""

from __future__ import annotations

import pytest

from conformance.catalogue import Need
from conformance.client import BUSY, ExecutorClient, has_status, raised, status_of
from conformance.outcomes import not_applicable


@pytest.mark.conformance_requirement("RESTART-1")
def test_restart_answers_ok_or_restarting(executor: ExecutorClient) -> None:
    """POST /restart answers 200 with `ok` (done) or `restarting` (under way)."""
    executor.restart_answered()
    executor.wait_ready()


@pytest.mark.conformance_requirement("RESTART-2")
def test_restart_clears_user_state(executor: ExecutorClient) -> None:
    """Once a restart has completed, earlier user state is gone."""
    executor.expect_status(executor.run(executor.code("define", name="state_before_restart", value="1")), "ok")
    executor.restart_answered()
    executor.wait_ready()
    body = executor.run(executor.code("read_undefined", name="state_before_restart"), requirement="ERROR-1")
    undefined = executor.language.error_name("read_undefined")
    executor.expect(
        has_status(body, "error") and raised(body, undefined),
        f"{undefined}: the variable is gone",
        f"status {status_of(body)!r}: {body['outputs']!r}",
    )


@pytest.mark.conformance_requirement("RESTART-3")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_restart_loads_mounted_code_again(executor: ExecutorClient) -> None:
    """After a restart, the mounted code is loaded again."""
    executor.expect_status(executor.run(executor.code("overwrite_load_order")), "ok")
    executor.restart_answered()
    executor.wait_ready()
    order = executor.evaluate(executor.code("load_order"))
    executor.expect(
        isinstance(order, list) and "a_first" in order,
        "CONFORMANCE_LOAD_ORDER as the workspace defines it",
        order,
    )


@pytest.mark.conformance_requirement("RESTART-4")
def test_no_execute_after_restart_sees_the_old_state(executor: ExecutorClient) -> None:
    """An execute sent right after /restart answered waits for the new session, or gets 503."""
    executor.expect_status(executor.run(executor.code("define", name="old_session_marker", value="old")), "ok")
    read = executor.code("read_undefined", name="old_session_marker")
    undefined = executor.language.error_name("read_undefined")
    executor.restart_answered()
    exchange = executor.execute(read)  # no wait for /ready
    if exchange.status in BUSY:  # "not now" is allowed: then the new session must answer
        executor.run(read, requirement="ERROR-1")
        exchange = executor.last or exchange
    executor.expect(
        exchange.status == 200, "HTTP 200 for code that raised", exchange.response_line, exchange, "ERROR-1"
    )
    body = executor.expect_execute_response(exchange)
    executor.expect(
        has_status(body, "error") and raised(body, undefined),
        f"{undefined} (a new session), or HTTP 503",
        f"status {status_of(body)!r}: {body['outputs']!r}",
        exchange,
    )


@pytest.mark.conformance_requirement("RESTART-5")
def test_restart_status_answers_a_boolean(executor: ExecutorClient, features_declared: bool) -> None:
    """GET /restart-status answers {"restarting": bool}."""
    exchange = executor.request("GET", "/restart-status")
    if exchange.status == 404 and not features_declared:
        not_applicable("the executor does not serve the optional GET /restart-status")
    body = exchange.json
    executor.expect(
        exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("restarting"), bool),
        'HTTP 200 {"restarting": <bool>}',
        exchange.response_line,
        exchange,
    )
