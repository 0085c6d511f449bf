"""OutputCollector: iopub messages to contract output items."""

from __future__ import annotations

from reference_executor.outputs import TRUNCATION_MARKER, OutputCollector, strip_ansi


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
    collector = OutputCollector(10)
    collector.add("stream", {"name": "stdout", "text": "0123456789ABCDEF"})
    collector.add("stream", {"name": "stdout", "text": "more"})
    collector.add("error", {"ename": "E", "evalue": "v", "traceback": []})
    stream, error = collector.items()
    assert collector.truncated
    assert stream["text"] == "0123456789" + TRUNCATION_MARKER.format(limit=10)
    assert error["type"] == "error"


def test_a_rich_item_too_large_for_the_cap_is_replaced_by_the_marker() -> None:
    collector = OutputCollector(10)
    collector.add("display_data", {"data": {"image/png": "x" * 100}, "metadata": {}})
    (item,) = collector.items()
    assert collector.truncated and item["type"] == "stream" and "truncated" in item["text"]


def test_multibyte_text_is_cut_on_a_character_boundary() -> None:
    collector = OutputCollector(5)
    collector.add("stream", {"name": "stdout", "text": "ééé"})  # 6 bytes
    assert collector.items()[0]["text"].startswith("éé\n[output truncated")


def test_clear_output_drops_what_came_before() -> None:
    collector = OutputCollector(100)
    collector.add("stream", {"name": "stdout", "text": "old"})
    collector.add("clear_output", {"wait": False})
    collector.add("stream", {"name": "stdout", "text": "new"})
    assert collector.text() == "new"


def test_strip_ansi_removes_colour_and_cursor_sequences() -> None:
    assert strip_ansi("\x1b[1;32mok\x1b[0m \x1b[2K") == "ok "
