"""Readiness: GET /ready (READY-1 to READY-4)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conformance.catalogue import Need
from conformance.client import ExecutorClient
from conformance.outcomes import not_applicable, not_run
from conformance.targets import ReadyObservation, Target

from .conftest import StartUpLoading, observed_once

#: How far a ready answer may precede the end of loading, for clocks read in two processes.
CLOCK_SLACK = 0.1
#: At most this many /ready requests while one restart is under way.
MAX_POLLS = 2000
#: At most this many restarts are watched for a not-ready answer.
RESTARTS_WATCHED = 3
NEVER_SEEN_NOT_READY = f"the executor was never seen not ready (at start-up or during {RESTARTS_WATCHED} restarts)"


@pytest.mark.conformance_requirement("READY-1")
def test_ready_answers_200_and_true_when_ready(executor: ExecutorClient) -> None:
    """When the session can run code, /ready answers 200 {"ready": true}."""
    exchange = executor.ready()
    body = exchange.json
    executor.expect(
        exchange.status == 200 and isinstance(body, dict) and body.get("ready") is True,
        'HTTP 200 {"ready": true, "reason": null}',
        exchange.response_line,
        exchange,
    )


#: READY-2 and READY-3 judge the same answers (their body, their status): one restart serves both.
_NOT_READY_ANSWERS = pytest.StashKey[list[ReadyObservation]]()


def _not_ready_answers(
    request: pytest.FixtureRequest, executor: ExecutorClient, target: Target
) -> list[ReadyObservation]:
    """Not-ready answers seen at start-up and during one restart, observed once per run."""
    return observed_once(request, _NOT_READY_ANSWERS, lambda: _observe_not_ready_answers(executor, target))


def _observe_not_ready_answers(executor: ExecutorClient, target: Target) -> list[ReadyObservation]:
    """Not-ready answers seen at start-up, and while a restart is under way.

    A restart can be over in a tenth of a second, and on a busy machine every look can miss it:
    up to RESTARTS_WATCHED restarts are watched until one is seen.
    """
    seen = [o for o in target.startup_observations if not _says_ready(o.body)]
    for _ in range(RESTARTS_WATCHED):
        during = _watch_one_restart(executor)
        seen += during
        if during:
            break
    return seen


def _watch_one_restart(executor: ExecutorClient) -> list[ReadyObservation]:
    """The not-ready answers to /ready while one restart is under way and just after it."""
    seen: list[ReadyObservation] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        restart = pool.submit(executor.restart)
        for _ in range(MAX_POLLS):
            if restart.done():
                break
            exchange = executor.ready()
            body: Any = exchange.json if exchange.json is not None else exchange.body_text
            if not _says_ready(body):
                seen.append(ReadyObservation(exchange.status, body, time.time()))
        restart.result()
    for exchange in [executor.ready() for _ in range(20)]:
        body = exchange.json if exchange.json is not None else exchange.body_text
        if _says_ready(body):
            break
        seen.append(ReadyObservation(exchange.status, body, time.time()))
    executor.wait_ready()
    return seen


def _says_ready(body: Any) -> bool:
    return isinstance(body, dict) and body.get("ready") is True


@pytest.mark.conformance_requirement("READY-2")
def test_not_ready_answers_say_false_and_why(
    request: pytest.FixtureRequest, executor: ExecutorClient, executor_target: Target
) -> None:
    """While not ready, `ready` is false and `reason` is a non-empty string."""
    seen = _not_ready_answers(request, executor, executor_target)
    if not seen:
        not_applicable(NEVER_SEEN_NOT_READY)
    for observation in seen:
        body = observation.body
        executor.expect(
            isinstance(body, dict)
            and body.get("ready") is False
            and isinstance(body.get("reason"), str)
            and body["reason"].strip() != "",
            'a not-ready answer {"ready": false, "reason": "<why>"}',
            f"HTTP {observation.status} {body!r}",
            None,
        )


@pytest.mark.conformance_requirement("READY-3")
def test_not_ready_answers_use_503(
    request: pytest.FixtureRequest, executor: ExecutorClient, executor_target: Target
) -> None:
    """Not-ready answers use HTTP 503, so that readiness probes work."""
    seen = [o for o in _not_ready_answers(request, executor, executor_target) if o.status is not None]
    if not seen:
        not_applicable(NEVER_SEEN_NOT_READY)
    for observation in seen:
        executor.expect(
            observation.status == 503,
            "HTTP 503 while not ready",
            f"HTTP {observation.status} {observation.body!r}",
            None,
        )


@pytest.mark.conformance_requirement("READY-4")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_ready_at_start_up_only_after_mounted_code_is_loaded(
    executor: ExecutorClient, start_up_loading: StartUpLoading | None
) -> None:
    """At start-up, the first /ready true came only once the workspace had loaded in the first session.

    Observed before the first test of the run: the workspace must be loaded at the kit's first
    look, and its last file must have run before the kit saw /ready true.
    """
    seen = start_up_loading
    if seen is not None and seen.problem is not None:
        not_run(seen.problem)
    if seen is None or seen.ready_at is None:
        not_applicable("the kit did not see the executor start (a URL): its start-up is not judged")
    if seen.loaded_at is None:
        not_applicable("the workspace never loaded in the first session (CODE-1 judges that)")
    executor.expect(
        seen.first_look is True and seen.loaded_at <= seen.ready_at + CLOCK_SLACK,
        "the workspace loaded in the first session before /ready first said true",
        f"{'not loaded at the first look after ready; ' if not seen.first_look else ''}"
        f"its last file finished {seen.loaded_at - seen.ready_at:.2f} s after the kit saw ready",
        None,
    )


@pytest.mark.conformance_requirement("READY-4")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_ready_only_after_mounted_code_is_loaded(executor: ExecutorClient) -> None:
    """After a restart too, the executor says ready only once the mounted code has been loaded."""
    exchange = executor.restart()
    executor.expect(exchange.status == 200, "POST /restart to answer 200", exchange.response_line, exchange)
    ready = executor.wait_ready()
    ready_at = time.time()  # the ready answer had arrived by now
    loaded_at = executor.evaluate(executor.code("loaded_at"))
    executor.expect(
        isinstance(loaded_at, float) and loaded_at <= ready_at + CLOCK_SLACK,
        "the last workspace file to have run before /ready said ready",
        f"it finished {loaded_at - ready_at:.2f} s after the ready answer"
        if isinstance(loaded_at, float)
        else repr(loaded_at),
        ready,
    )
