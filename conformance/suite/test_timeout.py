"""Timeouts (TIMEOUT-1 to TIMEOUT-7)."""

from __future__ import annotations

import time

import pytest

from conformance.client import ExecutorClient, output_text

from .conftest import LONGEST_DEFAULT_TO_WAIT, Deadline

SLEEPS = "import time\ntime.sleep(600)"
IGNORES_SIGINT = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)"


def _timed_out(executor: ExecutorClient, code: str, deadline: Deadline) -> tuple[dict, float]:
    """Run code that outlives its timeout; it must end as `timeout` within timeout + 5 s."""
    started = time.monotonic()
    body = executor.run(code, deadline.send)
    elapsed = time.monotonic() - started
    bound = deadline.seconds + executor.timeouts.timeout_slack
    executor.expect(
        body["status"] == "timeout" and elapsed <= bound,
        f'"status": "timeout" within {bound:.1f} s',
        f"status {body['status']!r} after {elapsed:.1f} s",
        executor.last,
        requirement="TIMEOUT-1",  # whichever test ran into it, a late or missing timeout is TIMEOUT-1's
    )
    return body, elapsed


@pytest.mark.requirement("TIMEOUT-1")
def test_code_past_its_timeout_ends_with_status_timeout(executor: ExecutorClient, deadline: Deadline) -> None:
    """Code that runs past its timeout ends with `status: timeout` within the timeout + 5 s."""
    _timed_out(executor, SLEEPS, deadline)


@pytest.mark.requirement("TIMEOUT-2")
def test_output_before_the_deadline_is_returned(executor: ExecutorClient, deadline: Deadline) -> None:
    """What was printed before the deadline comes back with the timeout."""
    body, _ = _timed_out(executor, "print('printed before the deadline', flush=True)\n" + SLEEPS, deadline)
    stdout = output_text(body, type_="stream", name="stdout")
    executor.expect(
        "printed before the deadline" in stdout, "the line printed before the deadline", repr(stdout), executor.last
    )


@pytest.mark.requirement("TIMEOUT-3")
def test_next_execute_after_a_timeout_runs_promptly(executor: ExecutorClient, deadline: Deadline) -> None:
    """After a timeout the next execute runs normally and promptly: no busy session is left over."""
    _timed_out(executor, SLEEPS, deadline)
    started = time.monotonic()
    exchange = executor.execute("print(21 * 2)")  # no retry: a busy answer is what this test looks for
    elapsed = time.monotonic() - started
    body = executor.expect_execute_response(exchange)
    executor.expect(
        body["status"] == "ok" and elapsed <= executor.timeouts.prompt and output_text(body) == "42\n",
        f"'42' with status ok within {executor.timeouts.prompt:.0f} s",
        f"status {body['status']!r} after {elapsed:.1f} s: {body['outputs']!r}",
        exchange,
    )


@pytest.mark.requirement("TIMEOUT-4")
def test_state_survives_a_timeout_of_interruptible_code(executor: ExecutorClient, deadline: Deadline) -> None:
    """When the code can be interrupted, state survives the timeout (`restarted: false`)."""
    executor.expect_status(executor.run("kept_through_timeout = 'kept'"), "ok", executor.last)
    body, _ = _timed_out(executor, SLEEPS, deadline)
    executor.expect(body["restarted"] is False, '"restarted": false', {"restarted": body["restarted"]}, executor.last)
    value = executor.evaluate("kept_through_timeout")
    executor.expect(value == "kept", "the variable defined before the timeout", value, executor.last)


@pytest.mark.requirement("TIMEOUT-5")
def test_code_ignoring_interrupts_is_ended_by_a_restart(
    executor: ExecutorClient, deadline: Deadline, capabilities
) -> None:
    """Code that ignores SIGINT is still ended: the session restarts (`restarted: true`) and stays usable."""
    body, _ = _timed_out(executor, IGNORES_SIGINT, deadline)
    executor.expect(body["restarted"] is True, '"restarted": true', {"restarted": body["restarted"]}, executor.last)
    executor.wait_ready()
    executor.expect_status(executor.run("1"), "ok", executor.last)
    if capabilities.workspace_mounted:
        order = executor.evaluate("globals().get('CONFORMANCE_LOAD_ORDER')")
        executor.expect(bool(order), "the mounted code loaded again after the restart", order, executor.last)


@pytest.mark.requirement("TIMEOUT-6")
def test_per_request_timeout_is_honoured(executor: ExecutorClient, capabilities) -> None:
    """A per-request `timeout` overrides the default, both shorter and longer."""
    default = capabilities.execution_timeout
    started = time.monotonic()
    body = executor.run(SLEEPS, 0.5)
    elapsed = time.monotonic() - started
    executor.expect(
        body["status"] == "timeout" and elapsed < min(default, 0.5 + executor.timeouts.timeout_slack),
        f'"status": "timeout" sooner than the default {default:.1f} s',
        f"status {body['status']!r} after {elapsed:.1f} s",
        executor.last,
    )
    if default <= LONGEST_DEFAULT_TO_WAIT:
        body = executor.run(f"import time\ntime.sleep({default + 1.0})\n'finished'", default + 4.0)
        executor.expect_status(body, "ok", executor.last)


@pytest.mark.requirement("TIMEOUT-7")
def test_default_timeout_comes_from_execution_timeout(executor: ExecutorClient, capabilities) -> None:
    """With no `timeout`, code is cut at EXECUTION_TIMEOUT (not sooner, not much later)."""
    default = capabilities.execution_timeout
    started = time.monotonic()
    body = executor.run(SLEEPS)
    elapsed = time.monotonic() - started
    executor.expect(
        body["status"] == "timeout" and default * 0.9 <= elapsed <= default + executor.timeouts.timeout_slack,
        f'"status": "timeout" after about EXECUTION_TIMEOUT = {default:.1f} s',
        f"status {body['status']!r} after {elapsed:.1f} s",
        executor.last,
    )
    if default <= LONGEST_DEFAULT_TO_WAIT:
        body = executor.run(f"import time\ntime.sleep({default * 0.5})\n'finished'")
        executor.expect_status(body, "ok", executor.last)
