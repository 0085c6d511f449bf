"""An executor written to the original executor README only: a test subject of the profiles.

It keeps the example executor's session (examples/subprocess_executor), the contract's four
endpoints and its settings, and answers in the shape that README describes, nothing more:

- ``POST /execute`` answers ``{"outputs": [...]}``: no ``status``, ``execution_count``,
  ``duration_ms``, ``truncated`` or ``restarted``. Items carry ``type`` and ``text`` of its own
  kinds (``stream`` with its ``name``, ``result``, ``display``, ``error``); a timeout or a crash is
  an ``error`` item saying so.
- ``GET /ready`` runs ``1+1`` in the session and answers ``{"ready": true}`` when it ran, else
  ``{"ready": false}``: always HTTP 200, no ``reason``.
- ``POST /restart`` answers ``{"status": "restarting"}`` at once and restarts in the background;
  ``GET /restart-status`` says whether it is still under way.

The kit's ``core`` profile must find it conformant, and ``full`` must list what it would have
to change. Run it with ``python tests/kit/original_shape.py`` (the same environment as any executor).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.subprocess_executor import server  # noqa: E402

#: The example's output item types, as this executor names them.
ITEM_TYPES = {"stream": "stream", "execute_result": "result", "display_data": "display", "error": "error"}
#: What a call that did not end normally says, by the example's status.
ENDINGS = {"timeout": "TimeoutError: execution timed out", "crashed": "KernelDied: the session died and was restarted"}


def original_item(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as the original README gives it: its type and its text (a stream's name too)."""
    kind = ITEM_TYPES.get(str(item.get("type")), str(item.get("type")))
    shaped: dict[str, Any] = {"type": kind, "text": str(item.get("text", ""))}
    if kind == "stream":
        shaped["name"] = item.get("name")
    return shaped


class OriginalHandler(server.Handler):
    routes = {**server.Handler.routes, "/restart-status": "GET"}

    def handle_execute(self, raw: bytes) -> None:
        code, timeout = server.parse_execute(raw)
        answer = self.session.execute(code, timeout)
        outputs = [original_item(item) for item in answer["outputs"]]
        if answer["status"] in ENDINGS:
            outputs.append({"type": "error", "text": ENDINGS[answer["status"]]})
        self.send_json(200, {"outputs": outputs})

    def handle_ready(self, raw: bytes) -> None:
        ready = False
        if self.session.ready and not self.session.restarting:
            try:
                ready = self.session.execute("1+1", None)["status"] == "ok"
            except server.Busy:  # code is running: the session is busy, not ready
                ready = False
        self.send_json(200, {"ready": ready})

    def handle_restart(self, raw: bytes) -> None:
        session = self.session
        session.restarting, session.ready, session.reason = True, False, "restarting"
        threading.Thread(target=session.restart, daemon=True).start()
        self.send_json(200, {"status": "restarting"})

    def handle_restart_status(self, raw: bytes) -> None:
        self.send_json(200, {"restarting": self.session.restarting})


# The example's dispatch finds a path's handler by name: handle_ plus the path without its slash.
setattr(OriginalHandler, "handle_restart-status", OriginalHandler.handle_restart_status)


if __name__ == "__main__":
    server.serve(server.Session(server.Settings.from_env()), OriginalHandler)
