"""Output limits (OUTPUT-1 to OUTPUT-3)."""

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


#: OUTPUT-3: each way a response can carry output past the cap (the snippet), beyond stream text.
PAST_THE_CAP = {
    "an error's message (and its traceback)": "raises_huge_message",
    "a result's value": "huge_value",
    "rich output": "displays_huge",
}


@pytest.mark.conformance_requirement("OUTPUT-3")
@pytest.mark.parametrize("case", list(PAST_THE_CAP))
def test_every_kind_of_output_counts_against_the_cap(
    executor: ExecutorClient, capabilities: Capabilities, case: str
) -> None:
    """Twice MAX_OUTPUT_BYTES carried by `case`: the response stays within the cap plus a fixed
    overhead, and says `truncated: true`; the session survives it."""
    limit = capabilities.settings.max_output_bytes
    with executor.attacked(f"{case} of {2 * limit} bytes"):
        exchange = executor.execute_when_free(executor.code(PAST_THE_CAP[case], char="x", count=2 * limit), timeout=60)
        body = executor.expect_execute_response(exchange)
    size = len(exchange.body_text.encode("utf-8", "surrogatepass"))
    executor.expect(
        size <= limit + MARKER_ROOM,
        f"a response of at most MAX_OUTPUT_BYTES + {MARKER_ROOM >> 10} KiB = {limit + MARKER_ROOM} bytes",
        f"{size} bytes",
        exchange,
    )
    displays = [item for item in body.get("outputs", []) if item.get("type") == "display_data"]
    # What was cut must say so: a response that reached the cap's scale, or rich output of which
    # only the small display came back. (Not a short representation of the executor's choosing, as
    # Node's inspect() of a long string, nor an executor without rich output.)
    cut = size > limit // 2 or (case == "rich output" and len(displays) == 1)
    if not cut:
        return
    executor.expect(body.get("truncated") is True, '"truncated": true', {"truncated": body.get("truncated")}, exchange)
