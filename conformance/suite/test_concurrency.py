"""Concurrent executes (CONC-1 to CONC-3)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.client import BUSY, ExecutorClient, output_text
from conformance.outcomes import not_applicable
from conformance.targets import Capabilities
from conformance.violations import Exchange

CLIENTS = 6
LINES = 5


def _code(executor: ExecutorClient, n: int) -> str:
    return executor.code("print_lines_slowly", prefix=f"conc-{n}-", count=LINES)


def _burst(executor: ExecutorClient) -> list[Exchange]:
    codes = [_code(executor, n) for n in range(CLIENTS)]
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(executor.execute, codes))


@pytest.mark.conformance_requirement("CONC-1")
def test_concurrent_executes_never_interleave(executor: ExecutorClient) -> None:
    """Each response holds exactly its own outputs, as if the calls had run one after another."""
    exchanges = _burst(executor)
    for n, exchange in enumerate(exchanges):
        deadline = time.monotonic() + executor.timeouts.ready
        while exchange.status in BUSY and time.monotonic() < deadline:  # refused (CONC-2): ask again
            time.sleep(executor.timeouts.poll_interval)
            exchange = executor.execute(_code(executor, n))
        body = executor.expect_execute_response(exchange)
        stdout = output_text(body, type_="stream", name="stdout")
        expected = "".join(f"conc-{n}-{i}\n" for i in range(LINES))
        executor.expect(stdout == expected, f"only this call's lines: {expected!r}", repr(stdout), exchange)


@pytest.mark.conformance_requirement("CONC-2")
def test_refused_concurrent_executes_get_a_json_error(executor: ExecutorClient) -> None:
    """An executor that refuses excess concurrent calls answers 429 or 503 with a JSON error."""
    refused = [exchange for exchange in _burst(executor) if exchange.status in BUSY]
    if not refused:
        not_applicable("the executor queued every concurrent call (allowed)")
    for exchange in refused:
        executor.expect(
            isinstance(exchange.json, dict) and "detail" in exchange.json,
            'a JSON error {"detail": ...}',
            exchange.response_line,
            exchange,
        )


#: CONC-3: the longest the first call holds the session (shorter when the default timeout is).
HOLD = 3.0


@pytest.mark.conformance_requirement("CONC-3")
def test_a_queued_call_whose_client_left_is_never_run(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """A call queued behind another, whose client disconnects while it waits, does not run.

    The first call holds the session for ``hold`` seconds (within the default timeout, so that
    nothing interrupts it); the second is sent a quarter of that later by a client that gives up
    after another quarter. Judged from the times both calls record in the session.
    """
    hold = min(HOLD, 0.8 * capabilities.execution_timeout)
    quarter = hold / 4
    executor.expect_status(executor.run(executor.code("reset_abandoned")), "ok")
    holder_code = executor.code("records_start_then_sleeps", seconds=hold)
    abandoned_code = executor.code("records_time")
    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(executor.execute, holder_code)
        # Not a wait for a condition: it orders the two calls, and the order is checked below from
        # the times they record (a second call that ran while its client waited is inconclusive).
        time.sleep(quarter)
        abandoned = executor.execute(abandoned_code, client_timeout=quarter)
        held = holder.result()
    if abandoned.status in BUSY:
        not_applicable(f"the executor refused the second call (HTTP {abandoned.status}) rather than queue it")
    executor.expect_execute_response(held)
    started, ran = executor.evaluate(executor.code("holder_and_abandoned"))
    if ran is not None and ran < started + 2 * quarter:  # its client had not given up yet
        not_applicable("the second call ran while its client still waited: nothing was left to drop")
    executor.expect(
        ran is None,
        f"the abandoned call never run (its client gave up after {quarter:.2f} s, while it waited)",
        f"it ran {ran - started:.2f} s after the first call began" if ran is not None else "",
        abandoned,
    )
