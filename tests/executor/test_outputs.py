"""OutputCollector: iopub messages to contract output items."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reference_executor.outputs import ITEM_OVERHEAD, TRUNCATION_MARKER, OutputCollector, strip_ansi


def room_for(text_bytes: int, name: str = "stdout") -> int:
    """A cap that leaves ``text_bytes`` for the text of one stream item, past its framing."""
    return ITEM_OVERHEAD + len(name) + text_bytes


def test_adjacent_chunks_of_one_stream_are_merged_and_streams_keep_their_names() -> None:
    collector = OutputCollector(1000)
    for name, text in [("stdout", "a"), ("stdout", "b"), ("stderr", "c"), ("stdout", "d")]:
        collector.add("stream", {"name": name, "text": text})
    assert collector.items() == [
        {"type": "stream", "name": "stdout", "text": "ab"},
        {"type": "stream", "name": "stderr", "text": "c"},
        {"type": "stream", "name": "stdout", "text": "d"},
    ]


def test_rich_items_carry_text_plain_as_text() -> None:
    collector = OutputCollector(1000)
    collector.add("execute_result", {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": 3})
    collector.add("display_data", {"data": {"text/html": "<b>x</b>"}, "metadata": {}})
    result, display = collector.items()
    assert result == {
        "type": "execute_result",
        "data": {"text/plain": "2"},
        "metadata": {},
        "text": "2",
        "execution_count": 3,
    }
    assert display["text"] == "" and display["data"] == {"text/html": "<b>x</b>"}


def test_error_text_is_the_traceback_without_ansi_codes() -> None:
    collector = OutputCollector(1000)
    collector.add("error", {"ename": "E", "evalue": "v", "traceback": ["\x1b[31mline one\x1b[0m", "line two"]})
    (item,) = collector.items()
    assert item["text"] == "line one\nline two"
    assert item["traceback"] == ["\x1b[31mline one\x1b[0m", "line two"]


def test_output_past_the_cap_is_cut_marked_and_further_output_dropped_but_errors_kept() -> None:
    collector = OutputCollector(room_for(10))
    collector.add("stream", {"name": "stdout", "text": "0123456789ABCDEF"})
    collector.add("stream", {"name": "stdout", "text": "more"})
    collector.add("error", {"ename": "E", "evalue": "v", "traceback": []})
    stream, error = collector.items()
    assert collector.truncated
    assert stream["text"] == "0123456789" + TRUNCATION_MARKER.format(limit=room_for(10))
    assert error["type"] == "error"


def test_a_rich_item_too_large_for_the_cap_is_replaced_by_the_marker() -> None:
    collector = OutputCollector(10)
    collector.add("display_data", {"data": {"image/png": "x" * 100}, "metadata": {}})
    (item,) = collector.items()
    assert collector.truncated and item["type"] == "stream" and "truncated" in item["text"]


def test_multibyte_text_is_cut_on_a_character_boundary() -> None:
    collector = OutputCollector(room_for(5))
    collector.add("stream", {"name": "stdout", "text": "ééé"})  # 6 bytes
    assert collector.items()[0]["text"].startswith("éé\n[output truncated")


def test_clear_output_drops_what_came_before() -> None:
    collector = OutputCollector(1000)
    collector.add("stream", {"name": "stdout", "text": "old"})
    collector.add("clear_output", {"wait": False})
    collector.add("stream", {"name": "stdout", "text": "new"})
    assert collector.text() == "new"


def test_strip_ansi_removes_colour_and_cursor_sequences() -> None:
    assert strip_ansi("\x1b[1;32mok\x1b[0m \x1b[2K") == "ok "


# -- OUTPUT-3: every byte from user code counts, whatever its kind or field -----------------------
CAP = 64 * 1024
#: What a response may carry past the cap: the errors' allowance, the marker, framing.
ROOM = 32 * 1024


def carried(collector: OutputCollector) -> int:
    """The bytes the items take in a JSON response."""
    return len(json.dumps(collector.items()).encode())


FORGED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "display metadata": [("display_data", {"data": {"text/plain": "m"}, "metadata": {"k": "x" * 4 * CAP}})],
    "a result's text/plain, which `text` repeats": [
        ("execute_result", {"data": {"text/plain": "x" * (CAP * 3 // 4)}, "metadata": {}, "execution_count": 1})
    ],
    "MIME types of a display": [("display_data", {"data": {f"text/x-{i}": "x" * 1024 for i in range(200)}})],
    "an error's message and traceback": [
        ("error", {"ename": "E" * 4 * CAP, "evalue": "v" * 4 * CAP, "traceback": ["t" * 4 * CAP] * 3})
    ],
    "forged error items": [("error", {"ename": "E", "evalue": "v" * 1024, "traceback": ["t" * 1024]})] * 2000,
    "streams alternating, an item each": [
        ("stream", {"name": name, "text": "x"}) for _ in range(20_000) for name in ("stdout", "stderr")
    ],
    "malformed fields": [
        ("display_data", {"data": "not a bundle", "metadata": ["not", "a", "dict"]}),
        ("execute_result", {"data": {"text/plain": 7}, "execution_count": "one"}),
        ("error", {"ename": None, "evalue": {"a": 1}, "traceback": "not a list"}),
        ("stream", {"name": 3, "text": ["not text"]}),
    ],
}


@pytest.mark.parametrize("case", list(FORGED))
def test_every_byte_from_user_code_counts_against_the_cap(case: str) -> None:
    collector = OutputCollector(CAP)
    for msg_type, content in FORGED[case]:
        collector.add(msg_type, content)
    assert carried(collector) <= CAP + ROOM
    if case != "malformed fields":
        assert collector.truncated


def test_an_error_too_large_is_cut_keeping_its_name_and_last_traceback_line() -> None:
    collector = OutputCollector(CAP)
    collector.add("stream", {"name": "stdout", "text": "x" * 2 * CAP})  # the cap is spent
    traceback = [f"frame {i}" for i in range(10_000)] + ["ValueError: " + "v" * CAP]
    collector.add("error", {"ename": "ValueError", "evalue": "v" * CAP, "traceback": traceback})
    error = collector.items()[-1]
    assert error["type"] == "error" and error["ename"] == "ValueError"
    assert error["traceback"][-1].startswith("ValueError: vvv") and error["text"].endswith("[cut]")
    assert carried(collector) <= CAP + ROOM
