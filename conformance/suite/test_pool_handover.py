"""The pool contract's hand-over (docs/pool-contract.md): what a user leaves behind when the
executor goes to the next one. The kit holds every free executor of the type, gives one back, and
is handed it again: the same executor, a new session, a new token, nothing of the last user.
"""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from conformance.client import ExecutorClient, status_of
from conformance.manager import Allocation, Manager
from conformance.outcomes import not_applicable, not_run
from conformance.violations import Exchange

#: Variables the last user binds, looked for in the next user's session.
LAST_USERS_MARK, LATE_CALLS_MARK = "conformance_pool_last_user", "conformance_pool_late_call"
#: The most calls POOL-7 sends on an allocation being deallocated, one after another as fast as they
#: are answered (a refused one takes milliseconds): every moment of the hand-over meets one.
MOST_LATE_CALLS = 2000
#: What the contract lets a refused session call answer: unauthorised, forbidden, no such session, gone.
REFUSED = (401, 403, 404, 410)


def _handed_back_again(manager: Manager, given: Allocation) -> Allocation:
    """The next allocation, once ``given``'s executor (the only one given back) is free again."""
    again = manager.allocate(when_free=True)
    if again.container_id != given.container_id:
        not_run(
            f"the manager handed out executor {again.container_id}, not {given.container_id}: more executors "
            f"of type {manager.type!r} are free than the kit can hold at once"
        )
    return again


def _undefined(session: ExecutorClient, name: str, what: str) -> None:
    body = session.run(session.code("read_undefined", name=name))
    session.expect(status_of(body) == "error", f"the next user's session holding nothing of {what}", repr(body)[:300])


def _hold_every_free(manager: Manager) -> Allocation:
    held = manager.allocate_every_free()
    if not held:
        not_run(f"no executor of type {manager.type!r} was free")
    return held[0]


@pytest.mark.conformance_requirement("POOL-6")
def test_once_deallocated_the_token_is_refused_and_the_next_session_is_new(manager: Manager) -> None:
    given = _hold_every_free(manager)
    given.session.run(given.session.code("define", name=LAST_USERS_MARK, value=secrets.token_hex(8)))
    exchange = manager.deallocate(given)
    manager.operator.expect(exchange.status == 200, "HTTP 200 from POST /deallocate/{id}", exchange.response_line)
    stale = given.session.execute(given.session.code("define", name=LATE_CALLS_MARK, value="ran"))
    manager.operator.expect(
        stale.status in REFUSED,
        f"the deallocated allocation's token refused ({', '.join(map(str, REFUSED))})",
        stale.response_line,
        stale,
    )
    again = _handed_back_again(manager, given)
    manager.operator.expect(
        again.token != given.token, "a new token for the next allocation of the same executor", "the same token again"
    )
    _undefined(again.session, LAST_USERS_MARK, "the last user's variables")
    _undefined(again.session, LATE_CALLS_MARK, "a call on the last user's token")


@pytest.mark.conformance_requirement("POOL-7")
def test_a_call_racing_the_deallocation_never_runs_in_the_next_session(manager: Manager) -> None:
    """Calls on the allocation's token go on, one after another, while it is deallocated and until
    ``handover_race`` s after the executor was handed out again: none may run in the new session."""
    given = _hold_every_free(manager)
    racer = manager.session_at(given.container_id, given.token)
    code = racer.code("define", name=LATE_CALLS_MARK, value="ran")
    handed_out, sent, answered_after = threading.Event(), [0], [0]

    def race() -> None:
        deadline = None
        while sent[0] < MOST_LATE_CALLS and (deadline is None or time.monotonic() < deadline):
            after = handed_out.is_set()
            exchange = racer.execute(code, client_timeout=racer.timeouts.request)
            sent[0] += 1
            answered_after[0] += after and exchange.status is not None
            if deadline is None and after:
                deadline = time.monotonic() + racer.timeouts.handover_race

    thread = threading.Thread(target=race, name="pool-race", daemon=True)
    thread.start()
    try:
        manager.operator.wait_until(
            lambda: racer.last if sent[0] else None, manager.operator.timeouts.request, "a first call on the token"
        )
        exchange = manager.deallocate(given)
        manager.operator.expect(exchange.status == 200, "HTTP 200 from POST /deallocate/{id}", exchange.response_line)
        again = _handed_back_again(manager, given)
    finally:
        handed_out.set()
        thread.join(racer.timeouts.request * 2)
    if not answered_after[0]:
        not_run(f"none of the {sent[0]} calls on the last user's token was answered once the executor was handed out")
    _undefined(again.session, LATE_CALLS_MARK, f"the {sent[0]} calls sent on the last user's token")


@pytest.mark.conformance_requirement("POOL-8")
def test_an_allocation_whose_lease_ran_out_is_refused(manager: Manager) -> None:
    """An allocation left unused past the lease the manager declares (GET /status ``lease_s``) is
    freed as a deallocated one is: its token refused, and the executor handed out again restarted."""
    lease = manager.status().get("lease_s")
    if lease is None:
        not_applicable("the manager declares no lease (GET /status `lease_s`): allocations last until /deallocate")
    longest = manager.operator.timeouts.longest_lease
    if not isinstance(lease, (int, float)) or lease > longest:
        not_run(f"a lease of {lease!r} s is longer than the kit waits ({longest:.0f} s)")
    held = _hold_every_free(manager)  # every one left unused: each lease runs out
    held.session.run(held.session.code("define", name=LAST_USERS_MARK, value=secrets.token_hex(8)))
    bound = lease + manager.operator.timeouts.timeout_slack

    def freed() -> Exchange | None:
        allocated = manager.status().get("allocated_ids", [])
        return manager.operator.last if held.container_id not in allocated else None

    manager.operator.wait_until(freed, bound, f"executor {held.container_id} freed once its lease of {lease} s ran out")
    for allocation in manager.allocations:
        allocation.given_back = True  # the leases ended them
    stale = held.session.execute(held.session.code("trivial"))
    manager.operator.expect(
        stale.status in REFUSED,
        f"the token of an allocation whose lease ran out refused ({', '.join(map(str, REFUSED))})",
        stale.response_line,
        stale,
    )
    # Handed out again, restarted: held again with the others, which are free too by now.
    again = next((a for a in manager.allocate_every_free() if a.container_id == held.container_id), None)
    if again is None:
        not_run(f"executor {held.container_id} was not handed out again among the free ones")
    _undefined(again.session, LAST_USERS_MARK, "the user whose lease ran out")
