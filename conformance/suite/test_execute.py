"""Execution: the response of POST /execute and its output items (EXEC-1 to EXEC-7)."""

from __future__ import annotations

import base64

import pytest

from conformance.client import ExecutorClient, output_text, raised, status_of
from conformance.schema import schema_errors

#: Code whose responses together use every status but timeout/crashed and every output type
#: (sample -> the language pack's snippet).
SAMPLES = {
    "expression": "expression_six_times_seven",
    "stdout and stderr": "stdout_and_stderr",
    "exception": "raises_sample_error",
    "syntax error": "syntax_error",
    "display": "display_html",
    "empty": "empty",
}

SPECIAL_TEXT = "héllo wörld ✓ 漢字 😀 nul:\x00: ansi:\x1b[31mred\x1b[0m tab:\t bell:\x07 end"


@pytest.mark.conformance_requirement("EXEC-1")
@pytest.mark.parametrize("sample", list(SAMPLES))
def test_execute_response_matches_the_schema(executor: ExecutorClient, sample: str) -> None:
    """Whenever code was run, the answer is 200 with the documented fields and a known status."""
    body = executor.run(executor.code(SAMPLES[sample]))
    errors = schema_errors("ExecuteResponse", body)
    executor.expect(not errors, "a body matching the ExecuteResponse schema", "; ".join(errors))


@pytest.mark.conformance_requirement("EXEC-2")
def test_stdout_and_stderr_come_back_as_named_streams(executor: ExecutorClient) -> None:
    """stdout and stderr are `stream` items with the right `name` and the exact text."""
    body = executor.run(executor.code("streams_exactly"))
    executor.expect_status(body, "ok")
    stdout = output_text(body, type_="stream", name="stdout")
    stderr = output_text(body, type_="stream", name="stderr")
    executor.expect(stdout == "to stdout\nno newline", "stdout text 'to stdout\\nno newline'", repr(stdout))
    executor.expect(stderr == "to stderr\n", "stderr text 'to stderr\\n'", repr(stderr))


@pytest.mark.conformance_requirement("EXEC-3")
def test_trailing_expression_comes_back_as_execute_result(executor: ExecutorClient) -> None:
    """The value of a trailing expression is an `execute_result` with text/plain."""
    body = executor.run(executor.code("one_plus_one"))
    executor.expect_status(body, "ok")
    results = [item for item in body["outputs"] if item.get("type") == "execute_result"]
    executor.expect(len(results) == 1, "one execute_result item", body["outputs"])
    data = results[0].get("data")
    executor.expect(isinstance(data, dict) and data.get("text/plain") == "2", 'data {"text/plain": "2"}', data)


@pytest.mark.conformance_requirement("EXEC-4")
def test_rich_display_comes_back_as_display_data(executor: ExecutorClient) -> None:
    """IPython.display output is `display_data` with its MIME bundle; images as base64 PNG."""
    body = executor.run(executor.code("display_html_and_png"))
    executor.expect_status(body, "ok")
    bundles = [item.get("data") or {} for item in body["outputs"] if item.get("type") == "display_data"]
    executor.expect(
        any("<i>rich</i>" in str(b.get("text/html", "")) for b in bundles),
        "a display_data item with text/html '<i>rich</i>'",
        body["outputs"],
    )
    pngs = [b["image/png"] for b in bundles if isinstance(b.get("image/png"), str)]
    executor.expect(bool(pngs), "a display_data item with image/png", body["outputs"])
    try:
        decoded = base64.b64decode(pngs[0], validate=False)
    except ValueError:
        decoded = b""
    executor.expect(decoded.startswith(b"\x89PNG"), "image/png as base64 of a PNG", pngs[0][:80])


@pytest.mark.conformance_requirement("EXEC-5")
def test_every_output_item_has_type_and_text(executor: ExecutorClient) -> None:
    """Every item has a string `type` and a string `text`: text/plain for results, a plain traceback for errors."""
    for sample in ("stdout and stderr", "expression", "exception", "display"):
        may_raise = sample in ("exception", "display")  # display needs IPython, which may be absent
        body = executor.run(executor.code(SAMPLES[sample]), requirement="ERROR-1" if may_raise else None)
        for item in body["outputs"]:
            executor.expect(
                isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("text"), str),
                "an item with string `type` and `text`",
                item,
            )
            if item["type"] in ("execute_result", "display_data") and isinstance(item.get("data"), dict):
                plain = item["data"].get("text/plain", "")
                executor.expect(item["text"] == plain, f"text equal to text/plain {plain!r}", item)
            if item["type"] == "error":
                executor.expect(
                    item["text"].strip() != "" and "\x1b[" not in item["text"],
                    "error text holding the traceback without ANSI colour codes",
                    repr(item["text"][:300]),
                )
    body = executor.run(executor.code(SAMPLES["exception"]), requirement="ERROR-1")
    text = output_text(body, type_="error")
    executor.expect("sample error" in text, "the raised error's message in the error item's text", repr(text[:300]))


@pytest.mark.conformance_requirement("EXEC-6")
def test_special_characters_round_trip_unchanged(executor: ExecutorClient) -> None:
    """Non-ASCII, emoji, NUL and ANSI control characters come back unchanged, in valid JSON."""
    body = executor.run(executor.code("print_text", text=SPECIAL_TEXT))
    executor.expect(
        executor.last is not None and executor.last.json is not None,
        "valid JSON",
        executor.last.body_text if executor.last else "",
    )
    stdout = output_text(body, type_="stream", name="stdout")
    executor.expect(stdout == SPECIAL_TEXT + "\n", repr(SPECIAL_TEXT + "\n"), repr(stdout))


@pytest.mark.conformance_requirement("EXEC-7")
@pytest.mark.parametrize(
    "snippet", ["empty", "comment_only", "blank_and_comments"], ids=["empty", "comment", "blank-and-comments"]
)
def test_empty_or_comment_only_code_is_ok_with_no_outputs(executor: ExecutorClient, snippet: str) -> None:
    """Empty or comment-only code gives `ok` and no outputs."""
    body = executor.run(executor.code(snippet))
    executor.expect(status_of(body) == "ok" and body["outputs"] == [], '"status": "ok", "outputs": []', body)


#: Code whose output is not valid Unicode: (name, snippet, the text expected back, the item's type).
UNENCODABLE = {
    "stdout": ("lone_surrogate_stdout", "a\ufffdb\n", "stream"),
    "stderr": ("lone_surrogate_stderr", "c\ufffdd\n", "stream"),
    "exception": ("lone_surrogate_error", "e\ufffdf", "error"),
}


@pytest.mark.conformance_requirement("EXEC-8")
@pytest.mark.parametrize("case", list(UNENCODABLE))
def test_output_that_is_not_unicode_comes_back_with_replacement_characters(executor: ExecutorClient, case: str) -> None:
    """A lone surrogate in output comes back as U+FFFD; the rest of the output is kept."""
    snippet, expected, kind = UNENCODABLE[case]
    body = executor.run(executor.code(snippet))
    items = [item for item in body["outputs"] if item.get("type") == kind]
    text = "".join(str(item.get("evalue" if kind == "error" else "text", "")) for item in items)
    executor.expect(
        # An error's message, in whichever field the item says it: its fields are ERROR-1's.
        text == expected or (kind == "error" and raised(body, expected)),
        f"{expected!r} in the {kind} output (U+FFFD for the lone surrogate)",
        f"{text!r}; all outputs: {body['outputs']!r}",
    )
