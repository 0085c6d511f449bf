"""Timeouts (TIMEOUT-1 to TIMEOUT-7)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.client import ExecutorClient, has_status, output_text, status_of
from conformance.pace import Timing
from conformance.targets import Capabilities
from conformance.violations import Exchange

from .conftest import (
    LONGEST_DEFAULT_TO_WAIT,
    Deadline,
    judge_default_timeout,
    observed_once,
    timed_out_in_time,
)


def _timed_out(
    executor: ExecutorClient, code: str, deadline: Deadline
) -> tuple[dict[str, Any], float, Exchange | None]:
    """Run code that outlives its timeout; it must end as `timeout` within timeout + 5 s."""
    # Whichever test ran into it, a late or missing timeout is TIMEOUT-1's.
    return timed_out_in_time(executor, code, deadline.send, deadline.seconds, requirement="TIMEOUT-1")


@dataclass(frozen=True)
class AfterATimeout:
    """One interruptible execution past its deadline, and what the session did next.

    TIMEOUT-1 to TIMEOUT-4 judge the same sequence, so it is run once per run (each timeout
    costs the whole deadline): a variable is defined, code prints a line and then sleeps past
    its deadline, the next execute is sent at once, and the variable is read back.
    """

    timed_out: dict[str, Any]
    timed_out_exchange: Exchange | None
    next_call: Exchange
    next_call_elapsed: float
    read_back: Exchange


_AFTER_A_TIMEOUT = pytest.StashKey[AfterATimeout]()
BEFORE_THE_DEADLINE = "printed before the deadline"


def _after_a_timeout(request: pytest.FixtureRequest, executor: ExecutorClient, deadline: Deadline) -> AfterATimeout:
    return observed_once(request, _AFTER_A_TIMEOUT, lambda: _observe_a_timeout(executor, deadline))


def _observe_a_timeout(executor: ExecutorClient, deadline: Deadline) -> AfterATimeout:
    defined = executor.run(executor.code("define", name="kept_through_timeout", value="kept"), requirement="TIMEOUT-4")
    executor.expect_status(defined, "ok", requirement="TIMEOUT-4")
    body, _, timed_out_exchange = _timed_out(
        executor, executor.code("print_then_sleep_forever", text=BEFORE_THE_DEADLINE), deadline
    )
    next_call, next_call_elapsed = _next_call(executor)
    read_back = executor.execute_when_free(executor.code("print_variable", name="kept_through_timeout"))
    return AfterATimeout(body, timed_out_exchange, next_call, next_call_elapsed, read_back)


def _next_call(executor: ExecutorClient) -> tuple[Exchange, float]:
    """The execute sent at once after a timeout, and the seconds it took (no retry: a busy answer
    is what TIMEOUT-3 looks for)."""
    started = time.monotonic()
    next_call = executor.execute(executor.code("print_sum", a=21, b=21))
    return next_call, time.monotonic() - started


@pytest.mark.conformance_requirement("TIMEOUT-1")
def test_code_past_its_timeout_ends_with_status_timeout(
    request: pytest.FixtureRequest, executor: ExecutorClient, deadline: Deadline
) -> None:
    """Code that runs past its timeout ends with `status: timeout` within the timeout + 5 s."""
    _after_a_timeout(request, executor, deadline)  # judged as it is observed: see _timed_out


@pytest.mark.conformance_requirement("TIMEOUT-2")
def test_output_before_the_deadline_is_returned(
    request: pytest.FixtureRequest, executor: ExecutorClient, deadline: Deadline
) -> None:
    """What was printed before the deadline comes back with the timeout."""
    seen = _after_a_timeout(request, executor, deadline)
    stdout = output_text(seen.timed_out, type_="stream", name="stdout")
    executor.expect(
        BEFORE_THE_DEADLINE in stdout, "the line printed before the deadline", repr(stdout), seen.timed_out_exchange
    )


@pytest.mark.conformance_requirement("TIMEOUT-3")
def test_next_execute_after_a_timeout_runs_promptly(
    request: pytest.FixtureRequest, executor: ExecutorClient, deadline: Deadline
) -> None:
    """After a timeout the next execute runs normally and promptly: no busy session is left over."""
    seen = _after_a_timeout(request, executor, deadline)
    prompt = executor.timeouts.prompt
    expected = f"'42' with status ok within {prompt:.0f} s"

    def judged(next_call: Exchange, elapsed: float) -> Timing:
        body = executor.expect_execute_response(next_call)
        executor.expect(
            has_status(body, "ok") and output_text(body) == "42\n",
            expected,
            f"status {status_of(body)!r} after {elapsed:.1f} s: {body['outputs']!r}",
            next_call,
        )
        return Timing(prompt, expected).saw(elapsed, next_call)

    def again() -> Timing:
        _timed_out(executor, executor.code("sleeps_forever"), deadline)
        return judged(*_next_call(executor))

    executor.judge_time(judged(seen.next_call, seen.next_call_elapsed), again)


@pytest.mark.conformance_requirement("TIMEOUT-4")
def test_state_survives_a_timeout_of_interruptible_code(
    request: pytest.FixtureRequest, executor: ExecutorClient, deadline: Deadline
) -> None:
    """When the code can be interrupted, state survives the timeout (`restarted: false`)."""
    seen = _after_a_timeout(request, executor, deadline)
    restarted = seen.timed_out.get("restarted")  # an answer without the field is EXEC-1's to judge
    executor.expect(restarted is not True, '"restarted": false', {"restarted": restarted}, seen.timed_out_exchange)
    body = executor.expect_execute_response(seen.read_back)
    executor.expect(
        status_of(body) == "ok" and output_text(body, type_="stream", name="stdout") == "kept\n",
        "the variable defined before the timeout: 'kept'",
        f"status {status_of(body)!r}: {output_text(body)!r}",
        seen.read_back,
    )


@pytest.mark.conformance_requirement("TIMEOUT-5")
def test_code_ignoring_interrupts_is_ended_by_a_restart(
    executor: ExecutorClient, deadline: Deadline, capabilities: Capabilities
) -> None:
    """Code that ignores SIGINT is still ended: the session restarts (`restarted: true`) and stays usable."""
    body, _, _ = _timed_out(executor, executor.code("ignores_interrupts"), deadline)
    executor.expect(body.get("restarted") is True, '"restarted": true', {"restarted": body.get("restarted")})
    executor.wait_ready()
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")
    if capabilities.workspace_mounted:
        order = executor.evaluate(executor.code("load_order"))
        executor.expect(bool(order), "the mounted code loaded again after the restart", order)


@pytest.mark.conformance_requirement("TIMEOUT-6")
def test_per_request_timeout_is_honoured(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """A per-request `timeout` overrides the default, both shorter and longer."""
    default = capabilities.execution_timeout
    # Sooner than the default: an executor that ignores the request's timeout ends at the default.
    sooner = math.nextafter(min(default, 0.5 + executor.timeouts.timeout_slack), 0.0)
    timed_out_in_time(executor, executor.code("sleeps_forever"), 0.5, 0.5, bound=sooner)
    if default <= LONGEST_DEFAULT_TO_WAIT:
        body = executor.run(executor.code("sleep_then_value", seconds=default + 1.0), default + 4.0)
        executor.expect_status(body, "ok")


#: Timeouts far below the time a round trip takes: the code may finish before the deadline
#: is noticed, or be stopped by it. The smallest positive double, a nanosecond, a millisecond.
TINY_TIMEOUTS = (5e-324, 1e-9, 1e-3)
#: Calls per tiny timeout: the race between the code and the deadline goes both ways.
TINY_TIMEOUT_CALLS = 3


@pytest.mark.conformance_requirement("TIMEOUT-6")
@pytest.mark.parametrize("timeout", TINY_TIMEOUTS)
def test_a_tiny_timeout_gives_a_status_that_agrees_with_the_result(executor: ExecutorClient, timeout: float) -> None:
    """Status and result agree for any timeout: `ok` with the value, or `timeout` without it;
    and the next call runs normally (the interrupt never lands in it: TIMEOUT-3)."""
    for _ in range(TINY_TIMEOUT_CALLS):
        body = executor.run(executor.code("expression_six_times_seven"), timeout)
        # The value in whatever item says it: the item's type is EXEC-3's to judge.
        valued = "42" in output_text(body)
        executor.expect(
            (status_of(body) == "ok" and valued) or (status_of(body) == "timeout" and not valued),
            f'"ok" with the value 42, or "timeout" without it, for a timeout of {timeout:g} s',
            f"status {status_of(body)!r}, {'with' if valued else 'without'} the value: {output_text(body)[:200]}",
        )
        after = executor.run(executor.code("expression_six_times_seven"))
        executor.expect(
            status_of(after) == "ok" and "42" in output_text(after),
            "the next call, with no timeout, runs normally: ok, 42",
            f"status {status_of(after)!r}: {output_text(after)[:200]}",
            requirement="TIMEOUT-3",
        )


@pytest.mark.conformance_requirement("TIMEOUT-7")
def test_default_timeout_comes_from_execution_timeout(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """With no `timeout`, code is cut at EXECUTION_TIMEOUT: not sooner, not later, whatever the default."""
    judge_default_timeout(executor, capabilities.execution_timeout)
