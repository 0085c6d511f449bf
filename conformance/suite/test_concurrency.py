"""Concurrent executes (CONC-1 to CONC-3)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.client import BUSY, ExecutorClient, output_text
from conformance.violations import Exchange

CLIENTS = 6
LINES = 5


def _code(n: int) -> str:
    return f"import time\nfor i in range({LINES}):\n    print('conc-{n}-' + str(i), flush=True)\n    time.sleep(0.02)"


def _burst(executor: ExecutorClient) -> list[Exchange]:
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(lambda n: executor.execute(_code(n)), range(CLIENTS)))


@pytest.mark.requirement("CONC-1")
def test_concurrent_executes_never_interleave(executor: ExecutorClient) -> None:
    """Each response holds exactly its own outputs, as if the calls had run one after another."""
    exchanges = _burst(executor)
    for n, exchange in enumerate(exchanges):
        deadline = time.monotonic() + executor.timeouts.ready
        while exchange.status in BUSY and time.monotonic() < deadline:  # refused (CONC-2): ask again
            time.sleep(executor.timeouts.poll_interval)
            exchange = executor.execute(_code(n))
        body = executor.expect_execute_response(exchange)
        stdout = output_text(body, type_="stream", name="stdout")
        expected = "".join(f"conc-{n}-{i}\n" for i in range(LINES))
        executor.expect(stdout == expected, f"only this call's lines: {expected!r}", repr(stdout), exchange)


@pytest.mark.requirement("CONC-2")
def test_refused_concurrent_executes_get_a_json_error(executor: ExecutorClient) -> None:
    """An executor that refuses excess concurrent calls answers 429 or 503 with a JSON error."""
    refused = [exchange for exchange in _burst(executor) if exchange.status in BUSY]
    if not refused:
        pytest.skip("the executor queued every concurrent call (allowed)")
    for exchange in refused:
        executor.expect(
            isinstance(exchange.json, dict) and "detail" in exchange.json,
            'a JSON error {"detail": ...}',
            exchange.response_line,
            exchange,
        )


#: CONC-3: the call that holds the session, and the one whose client gives up while it waits.
HOLDER = "import time\nconformance_holder_started = time.time()\ntime.sleep(3)"
ABANDONED = "import time\nconformance_abandoned_ran = time.time()"
#: How long the abandoned call's client waits before it gives up (the holder runs 3 s).
GIVE_UP_AFTER = 0.5


@pytest.mark.requirement("CONC-3")
def test_a_queued_call_whose_client_left_is_never_run(executor: ExecutorClient) -> None:
    """A call queued behind another, whose client disconnects while it waits, does not run."""
    executor.expect_status(executor.run("conformance_abandoned_ran = None"), "ok", executor.last)
    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(executor.execute, HOLDER)
        # Not a wait for a condition: it orders the two calls, and the order is checked below from
        # the times they record (a second call that ran first makes the test inconclusive).
        time.sleep(GIVE_UP_AFTER)
        abandoned = executor.execute(ABANDONED, timeout=None, client_timeout=GIVE_UP_AFTER)
        held = holder.result()
    if abandoned.status in BUSY:
        pytest.skip(f"the executor refused the second call (HTTP {abandoned.status}) rather than queue it")
    executor.expect_execute_response(held)
    times = executor.evaluate("[conformance_holder_started, conformance_abandoned_ran]")
    started, ran = times
    # The abandoned call's client gave up about 2 * GIVE_UP_AFTER after the first call began:
    # a call that ran before that ran while its client still waited (not queued, or not for long).
    if ran is not None and ran < started + 2 * GIVE_UP_AFTER:
        pytest.skip("the second call ran while its client still waited: nothing was left to drop")
    executor.expect(
        ran is None,
        f"the abandoned call never run (its client gave up after {GIVE_UP_AFTER} s, while it waited)",
        f"it ran {ran - started:.1f} s after the first call began" if ran is not None else "",
        abandoned,
    )
