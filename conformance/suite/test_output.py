"""Output limits (OUTPUT-1, OUTPUT-2)."""

from __future__ import annotations

import pytest

from conformance.client import ExecutorClient, output_text
from conformance.targets import Capabilities

#: Generous room for the marker and framing past the limit.
MARKER_ROOM = 64 * 1024


@pytest.mark.conformance_requirement("OUTPUT-1")
def test_huge_output_does_not_break_the_executor(executor: ExecutorClient) -> None:
    """50 MB of output: the call returns, and the next call works."""
    exchange = executor.execute_when_free(executor.code("floods_stdout"), timeout=60)
    executor.expect(exchange.status == 200, "HTTP 200 after printing 50 MB", exchange.response_line, exchange)
    body = executor.run(executor.code("value_of_text", text="after the flood"))
    executor.expect_status(body, "ok")


@pytest.mark.conformance_requirement("OUTPUT-2")
def test_output_past_the_limit_is_cut_and_marked(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """Output past MAX_OUTPUT_BYTES is cut, with `truncated: true` and a visible marker."""
    limit = capabilities.settings.max_output_bytes
    body = executor.run(executor.code("writes_bytes", char="x", count=2 * limit), timeout=60)
    text = output_text(body)
    executor.expect(body.get("truncated") is True, '"truncated": true', {"truncated": body.get("truncated")})
    executor.expect(
        len(text.encode("utf-8")) <= limit + MARKER_ROOM,
        f"at most about {limit} bytes of text",
        f"{len(text)} characters",
    )
    executor.expect(text.replace("x", "").strip() != "", "a visible marker in the text", text[-200:])
    # Half the limit comes back whole: the cut is at MAX_OUTPUT_BYTES, not at a limit of the executor's own.
    half = limit // 2
    body = executor.run(executor.code("writes_bytes", char="y", count=half), timeout=60)
    kept = output_text(body).count("y")
    executor.expect(
        kept == half and body.get("truncated") is not True,
        f"all {half} bytes of output under MAX_OUTPUT_BYTES = {limit}, not truncated",
        f"{kept} bytes kept, truncated: {body.get('truncated')}",
    )
