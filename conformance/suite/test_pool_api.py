"""The pool contract's API (docs/pool-contract.md): the manager's health, who may allocate and
see the status, what an allocation answers, and the session behind each allocation's token.

Every test runs through the manager alone, as its operator (the manager's token) and as the users
it hands executors to; what a test was handed is given back when it ends (the ``manager`` fixture).
"""

from __future__ import annotations

import secrets

import pytest

from conformance.client import status_of
from conformance.manager import Manager

#: A variable a refused call would bind, were it run.
REFUSED_MARK = "conformance_pool_refused"


@pytest.mark.conformance_requirement("POOL-1")
def test_health_answers_without_a_token(manager: Manager) -> None:
    exchange = manager.as_bearer_of(None).health()
    manager.operator.expect(
        exchange.status == 200 and exchange.json == {"status": "ok"},
        'HTTP 200 {"status": "ok"} from GET /health, without a token',
        exchange.response_line,
        exchange,
    )


@pytest.mark.conformance_requirement("POOL-2")
def test_the_operators_calls_need_the_managers_token(manager: Manager) -> None:
    """Without the manager's token, with another, or with an allocation's (a user's), /allocate,
    /status and /deallocate of another's executor answer 401 with a JSON detail, and do nothing: the
    allocations held meanwhile still serve their users."""
    held = manager.allocate()
    other = manager.allocations[-1] if manager.ask_allocation().status == 200 else None
    before = manager.status()
    tokens = ((None, "without a token"), (secrets.token_hex(16), "with another token"))
    users = ((held.token, "with an allocation's token"),) if held.token else ()
    for token, with_what in (*tokens, *users):
        stranger = manager.as_bearer_of(token)
        # A user may end their own allocation, and no other's.
        target = other if token == held.token else held
        calls = [("POST", f"/allocate?container_type={manager.type}"), ("GET", "/status")]
        for method, path in calls + ([("POST", f"/deallocate/{target.container_id}")] if target else []):
            exchange = stranger.request(method, path)
            if exchange.status == 200 and method == "POST" and path.startswith("/allocate"):
                manager.keep(exchange)  # given back at the end, though it should never have been made
            manager.operator.expect(
                exchange.status == 401 and isinstance(exchange.json, dict) and "detail" in exchange.json,
                f"HTTP 401 with a JSON detail for {method} {path} {with_what}",
                exchange.response_line,
                exchange,
            )
    after = manager.status()
    manager.operator.expect(
        after.get("allocated_ids") == before.get("allocated_ids"),
        "the same executors allocated after the refused calls as before them",
        f"before {before.get('allocated_ids')}, after {after.get('allocated_ids')}",
    )
    for allocation in (held, *([other] if other else [])):
        body = allocation.session.run(allocation.session.code("trivial"))
        manager.operator.expect(status_of(body) == "ok", "every allocation still serving its user", repr(body)[:300])


@pytest.mark.conformance_requirement("POOL-3")
def test_an_allocation_answers_its_executor_type_and_token(manager: Manager) -> None:
    """/allocate answers the executor's id, the type asked and a token of its own; a type the pool
    does not have is 404; once every executor of the type is handed out, 503."""
    first = manager.allocate(whole=True)
    manager.operator.expect(
        first.type == manager.type,
        f'"type": {manager.type!r} (the type asked) in the /allocate answer',
        repr(first.type),
    )
    unknown = manager.ask_allocation("conformance-no-such-type")
    manager.operator.expect(
        unknown.status == 404 and isinstance(unknown.json, dict) and "detail" in unknown.json,
        "HTTP 404 with a JSON detail for POST /allocate of a type the pool does not have",
        unknown.response_line,
        unknown,
    )
    manager.allocate_every_free()  # ends with a 503, checked there
    held = manager.allocations
    executors, tokens = len({a.container_id for a in held}), len({a.token for a in held})
    manager.operator.expect(
        executors == len(held) and tokens == len(held),
        "every allocation its own executor and its own token",
        f"{len(held)} allocations, {executors} executors, {tokens} tokens",
    )


@pytest.mark.conformance_requirement("POOL-4")
def test_status_counts_the_allocations(manager: Manager) -> None:
    before = manager.status(whole=True)
    held = manager.allocate()
    during = manager.status()
    manager.operator.expect(
        held.container_id in during.get("allocated_ids", [])
        and during.get("allocated") == before.get("allocated", 0) + 1
        and during.get("total") == before.get("total"),
        f'executor {held.container_id} among "allocated_ids", "allocated" one more, "total" the same',
        f"before {before}, during {during}",
    )
    exchange = manager.deallocate(held)
    manager.operator.expect(exchange.status == 200, "HTTP 200 from POST /deallocate/{id}", exchange.response_line)
    after = manager.status()
    manager.operator.expect(
        held.container_id not in after.get("allocated_ids", []) and after.get("allocated") == before.get("allocated"),
        f'executor {held.container_id} no longer among "allocated_ids" once deallocated',
        f"before {before}, after {after}",
    )


@pytest.mark.conformance_requirement("POOL-5")
def test_a_session_serves_its_allocations_token_alone(manager: Manager) -> None:
    """The session keeps its state between calls with the allocation's token; a call without it,
    or with another allocation's, is 401 and runs nothing."""
    held = manager.allocate()
    other = manager.ask_allocation()
    others_token = manager.allocations[-1].token if other.status == 200 else secrets.token_hex(16)
    session = held.session
    session.run(session.code("define", name="conformance_pool_state", value="kept"))
    kept = session.evaluate(session.code("variable_value", name="conformance_pool_state"))
    session.expect(kept == "kept", "the session's variable kept between two calls", repr(kept))
    for token, with_what in ((None, "without a token"), (others_token, "with another allocation's token")):
        stranger = manager.session_at(held.container_id, token)
        for exchange in (stranger.execute(stranger.code("define", name=REFUSED_MARK, value="ran")), stranger.restart()):
            session.expect(
                exchange.status == 401,
                f"HTTP 401 for {exchange.method} /session/{held.container_id}{exchange.path} {with_what}",
                exchange.response_line,
                exchange,
            )
    body = session.run(session.code("read_undefined", name=REFUSED_MARK))
    session.expect(status_of(body) == "error", "no refused call run: its variable undefined", repr(body)[:300])
    kept = session.evaluate(session.code("variable_value", name="conformance_pool_state"))
    session.expect(kept == "kept", "the session's variable kept: no refused restart done", repr(kept))
