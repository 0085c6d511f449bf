"""uvicorn's HTTP protocol, with a bound on how long a client may take to send its request (INPUT-6).

uvicorn closes a keep-alive connection that stays idle between requests, but waits forever on a
connection that never sends a first request, or trickles its head or body a byte at a time: 50
such connections held the server's sockets open indefinitely (issue #14). Here a connection has
``Timeouts.request_read`` seconds from its opening, and each later request from its first byte,
to arrive whole; past that it is closed. Answers are not bounded: a slow reader of a large
response is the kernel's output cap's business.

Part of the HTTP layer (it is imported with uvicorn, after the first kernel was launched).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["bounded_request_protocol"]

log = logging.getLogger("reference_executor.http")


class _BoundedRequestProtocol(HttpToolsProtocol):
    """httptools' protocol whose requests must arrive within ``request_read`` seconds."""

    request_read: float = 5.0
    _request_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._request_timer = self.loop.call_later(self.request_read, self._too_slow)

    def _disarm(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _too_slow(self) -> None:
        self._request_timer = None
        if not self.transport.is_closing():
            log.info("closed a connection whose request took over %.0f s to arrive", self.request_read)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def bounded_request_protocol(request_read: float) -> type[Any]:
    """The protocol class for uvicorn's ``http`` setting, bound to ``request_read`` seconds."""
    return type("BoundedRequestProtocol", (_BoundedRequestProtocol,), {"request_read": request_read})
