"""Concurrent executes (CONC-1, CONC-2)."""

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
