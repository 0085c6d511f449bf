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


def _size_of_bundle(data: dict[str, Any]) -> int:
    return sum(len(value) if isinstance(value, str) else len(repr(value)) for value in data.values())


class OutputCollector:
    """Collects the output items of one execution, merging adjacent stream chunks.

    Output past ``max_bytes`` is dropped and marked; error items are always kept, since
    they say why the code stopped.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._used = 0
        self._items: list[dict[str, Any]] = []
        # Text chunks of the last item while it is a stream, joined once in items().
        self._stream_parts: list[str] = []
        self.truncated = False

    # -- feeding ------------------------------------------------------------------------
    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        """Take one iopub message of the execution; messages that are not output are ignored."""
        if msg_type == "stream":
            self.add_stream(content.get("name", "stdout"), content.get("text", ""))
        elif msg_type in ("execute_result", "display_data", "update_display_data"):
            self._add_rich(msg_type, content)
        elif msg_type == "error":
            self.add_error(content)
        elif msg_type == "clear_output":
            self._flush_stream()
            self._items = [item for item in self._items if item["type"] == "error"]

    def add_stream(self, name: str, text: str) -> None:
        if not text or self.truncated:
            return
        room = self._max_bytes - self._used
        encoded_len = len(text.encode("utf-8", "surrogatepass"))
        if encoded_len > room:
            text = text.encode("utf-8", "surrogatepass")[: max(room, 0)].decode("utf-8", "ignore")
            text += TRUNCATION_MARKER.format(limit=self._max_bytes)
            self.truncated = True
        self._used += min(encoded_len, max(room, 0))
        last = self._items[-1] if self._items else None
        if last is not None and last["type"] == "stream" and last["name"] == name:
            self._stream_parts.append(text)
            return
        self._flush_stream()
        self._items.append({"type": "stream", "name": name, "text": ""})
        self._stream_parts = [text]

    def add_error(self, content: dict[str, Any]) -> None:
        traceback = [str(line) for line in content.get("traceback", [])]
        self._append(
            {
                "type": "error",
                "ename": str(content.get("ename", "")),
                "evalue": str(content.get("evalue", "")),
                "traceback": traceback,
                "text": strip_ansi("\n".join(traceback)),
            }
        )

    def _add_rich(self, msg_type: str, content: dict[str, Any]) -> None:
        if self.truncated:
            return
        data = dict(content.get("data", {}))
        size = _size_of_bundle(data)
        if size > self._max_bytes - self._used:
            self._mark_truncated()
            return
        self._used += size
        plain = data.get("text/plain", "")
        item: dict[str, Any] = {
            "type": "display_data" if msg_type == "update_display_data" else msg_type,
            "data": data,
            "metadata": dict(content.get("metadata", {})),
            "text": plain if isinstance(plain, str) else str(plain),
        }
        if msg_type == "execute_result":
            item["execution_count"] = content.get("execution_count")
        self._append(item)

    def _mark_truncated(self) -> None:
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
