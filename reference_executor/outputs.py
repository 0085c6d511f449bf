"""Turning Jupyter iopub messages into contract output items, under a size cap.

Pure data handling: no I/O, no kernel, no HTTP. The kernel layer feeds every iopub message of
one execution to an ``OutputCollector`` and asks it for the items at the end.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["TRUNCATION_MARKER", "OutputCollector", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

#: Appended, once, to the text where output was cut (OUTPUT-2).
TRUNCATION_MARKER = "\n[output truncated: more than {limit} bytes]\n"


def strip_ansi(text: str) -> str:
    """Remove ANSI colour and cursor sequences (as IPython puts in tracebacks)."""
    return _ANSI.sub("", text)


#: What each item costs beyond its strings: its JSON punctuation and field names, about.
ITEM_OVERHEAD = 64
#: Room error items have past the cap, all of them together: the error that stopped the code is
#: kept, cut if need be, even when other output used the whole cap.
ERROR_ALLOWANCE = 16 * 1024
#: An error's name is cut to this many bytes, however much room there is.
ERROR_NAME_BYTES = 256


def _size(value: Any) -> int:
    """The bytes ``value`` (a string, or JSON data) takes in a response, about: its UTF-8 strings
    and its numbers, with the keys of its objects."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) + 4 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_size(v) + 2 for v in value)
    return len(repr(value))


def _cut(text: str, size: int) -> str:
    """``text``, its UTF-8 cut to at most ``size`` bytes, on a character boundary."""
    return text.encode("utf-8", "surrogatepass")[: max(size, 0)].decode("utf-8", "ignore")


class OutputCollector:
    """Collects the output items of one execution, merging adjacent stream chunks.

    Every byte an item carries from user code counts against ``max_bytes``: stream text, every
    MIME type of a display or result, their metadata, the ``text`` made from them, an error's
    name, message and traceback, and each item's framing (OUTPUT-3). Output past the cap is
    dropped and marked once; error items say why the code stopped, so they are kept, cut to the
    room left plus ``ERROR_ALLOWANCE`` (for all errors together).
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._used = 0
        self._error_allowance = ERROR_ALLOWANCE
        self._items: list[dict[str, Any]] = []
        # Text chunks of the last item while it is a stream, joined once in items().
        self._stream_parts: list[str] = []
        self.truncated = False

    @property
    def _room(self) -> int:
        return self._max_bytes - self._used

    # -- feeding ------------------------------------------------------------------------
    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        """Take one iopub message of the execution; messages that are not output are ignored."""
        if msg_type == "stream":
            self.add_stream(str(content.get("name", "stdout")), content.get("text", ""))
        elif msg_type in ("execute_result", "display_data", "update_display_data"):
            self._add_rich(msg_type, content)
        elif msg_type == "error":
            self.add_error(content)
        elif msg_type == "clear_output":
            self._flush_stream()
            self._items = [item for item in self._items if item["type"] == "error"]

    def add_stream(self, name: str, text: Any) -> None:
        if not isinstance(text, str) or not text or self.truncated:
            return
        last = self._items[-1] if self._items else None
        merged = last is not None and last["type"] == "stream" and last["name"] == name
        framing = 0 if merged else ITEM_OVERHEAD + _size(name)
        size = _size(text) + framing
        if size > self._room:
            text = _cut(text, self._room - framing) + TRUNCATION_MARKER.format(limit=self._max_bytes)
            self.truncated = True
        self._used += min(size, max(self._room, 0))
        if merged:
            self._stream_parts.append(text)
            return
        self._flush_stream()
        self._items.append({"type": "stream", "name": name, "text": ""})
        self._stream_parts = [text]

    def add_error(self, content: dict[str, Any]) -> None:
        traceback = content.get("traceback", [])
        item = self._error_item(
            str(content.get("ename", "")),
            str(content.get("evalue", "")),
            [str(line) for line in traceback] if isinstance(traceback, list) else [str(traceback)],
        )
        size = _size(item) + ITEM_OVERHEAD
        room = max(self._room, 0) + self._error_allowance
        if size > room:
            item = self._cut_error(item, room)
            size = _size(item) + ITEM_OVERHEAD
            self.truncated = True
        if size > room:  # no room even for its name: the cap is spent on errors already
            return
        from_cap = min(size, max(self._room, 0))
        self._used += from_cap
        self._error_allowance -= size - from_cap
        self._append(item)

    @staticmethod
    def _error_item(ename: str, evalue: str, traceback: list[str]) -> dict[str, Any]:
        return {
            "type": "error",
            "ename": ename,
            "evalue": evalue,
            "traceback": traceback,
            "text": strip_ansi("\n".join(traceback)),
        }

    def _cut_error(self, item: dict[str, Any], room: int) -> dict[str, Any]:
        """``item`` cut to fit ``room`` bytes: its name, then a quarter each for the message and
        the traceback (which ``text`` repeats), keeping the traceback's last lines."""
        ename = _cut(item["ename"], min(ERROR_NAME_BYTES, room // 4))
        quarter = max(room - ITEM_OVERHEAD - _size(ename) - 64, 0) // 4
        marker = " [cut]"
        evalue = item["evalue"] if _size(item["evalue"]) <= quarter else _cut(item["evalue"], quarter - 6) + marker
        kept: list[str] = []
        left = quarter
        for line in reversed(item["traceback"]):
            line = line if _size(line) + 2 <= left else _cut(line, left - 8) + marker
            if _size(line) + 2 > left:
                break
            kept.insert(0, line)
            left -= _size(line) + 2
        return self._error_item(ename, evalue, kept)

    def _add_rich(self, msg_type: str, content: dict[str, Any]) -> None:
        if self.truncated:
            return
        data, metadata = content.get("data", {}), content.get("metadata", {})
        data = dict(data) if isinstance(data, dict) else {}
        plain = data.get("text/plain", "")
        item: dict[str, Any] = {
            "type": "display_data" if msg_type == "update_display_data" else msg_type,
            "data": data,
            "metadata": dict(metadata) if isinstance(metadata, dict) else {},
            "text": plain if isinstance(plain, str) else str(plain),
        }
        if msg_type == "execute_result":
            count = content.get("execution_count")
            item["execution_count"] = count if isinstance(count, int) else None
        size = _size(item) + ITEM_OVERHEAD
        if size > self._room:
            self.mark_truncated()
            return
        self._used += size
        self._append(item)

    def mark_truncated(self) -> None:
        """Note that output was dropped, with the marker as a stdout item of its own."""
        self._append({"type": "stream", "name": "stdout", "text": TRUNCATION_MARKER.format(limit=self._max_bytes)})
        self.truncated = True

    def _append(self, item: dict[str, Any]) -> None:
        self._flush_stream()
        self._items.append(item)

    def _flush_stream(self) -> None:
        if self._stream_parts:
            self._items[-1]["text"] = "".join(self._stream_parts)
            self._stream_parts = []

    # -- result -------------------------------------------------------------------------
    def items(self) -> list[dict[str, Any]]:
        """The output items collected so far, in order."""
        self._flush_stream()
        return list(self._items)

    def text(self) -> str:
        """All texts joined, as a simple client would show them."""
        return "".join(item["text"] for item in self.items())
