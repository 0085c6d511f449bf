"""uvicorn's HTTP protocol, with bounds on how long a client may take to send its request
(INPUT-6) and on how large the request's head may be (INPUT-7).

uvicorn closes a keep-alive connection that stays idle between requests, but waits forever on a
connection that never sends a first request, or trickles its head or body a byte at a time: 50
such connections held the server's sockets open indefinitely (issue #14). Here a connection has
``request_read`` seconds (REQUEST_READ_TIMEOUT) from its opening, and each later request from its
first byte, to arrive whole; past that it is closed. Answers are not bounded: a slow reader of a large
response is the kernel's output cap's business.

httptools keeps a header field it has not seen the end of in memory, however long it grows, and
uvicorn keeps every field: a never-ending header line of 39 MiB on each of four connections took
a 256 MB container's memory (issue #28). Here the head is fed to the parser at most
``HeadLimits.head`` bytes in all, so memory is bounded whatever the client sends; a longer head,
a request line or header field over ``HeadLimits.line`` or more than ``HeadLimits.count`` fields
get 431 with a JSON error, and the connection is closed.

Served by the reference executor (imported with uvicorn, after its first kernel was launched)
and by the pool's manager.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import HeadLimits

__all__ = ["HeadAsGet", "bounded_request_protocol"]

log = logging.getLogger("executor_serving.protocol")


class _HeadTooLarge(Exception):
    """Raised in a parser callback: the head is past one of its bounds (INPUT-7)."""


class _BoundedRequestProtocol(HttpToolsProtocol):
    """httptools' protocol whose requests must arrive within ``request_read`` seconds, with a
    head within ``head_limits``."""

    request_read: float = 5.0
    head_limits: HeadLimits = HeadLimits()
    _request_timer: asyncio.TimerHandle | None = None
    #: Bytes of the current request's head fed to the parser so far; None once the head is whole.
    _head_bytes: int | None = 0
    #: Why the head was refused, once it was.
    _refused: str | None = None

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

    # -- the head's bounds (INPUT-7) -----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Feed the parser no more of a head than ``head_limits.head`` bytes."""
        while data and self._head_bytes is not None and self._refused is None:
            room = self.head_limits.head - self._head_bytes
            if room <= 0:
                self._refuse(f"the request head is over {self.head_limits.head} bytes")
                return
            part, data = data[:room], data[room:]
            self._head_bytes += len(part)
            super().data_received(part)
        if data and self._refused is None and not self.transport.is_closing():
            super().data_received(data)

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.head_limits.line:
            self._refuse(f"the request line is over {self.head_limits.line} bytes", stop=True)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self.head_limits.line:
            self._refuse(f"a header field is over {self.head_limits.line} bytes", stop=True)
        if len(self.headers) >= self.head_limits.count:
            self._refuse(f"the request has over {self.head_limits.count} header fields", stop=True)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def _refuse(self, why: str, *, stop: bool = False) -> None:
        """Answer 431 and close; ``stop``, from a parser callback: stop the parser too."""
        self._refused = why
        self.send_400_response(why)  # sends the 431: see below
        if stop:  # uvicorn catches it as a parser error, and calls send_400_response again
            raise _HeadTooLarge(why)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what its parser refuses, as JSON (INPUT-1): 431 for a head past
        its bounds, else 400."""
        if self.transport.is_closing():
            return
        status = b"431 Request Header Fields Too Large" if self._refused else b"400 Bad Request"
        detail = self._refused or "not a valid HTTP/1.1 request"
        log.info("refused a request: %s", detail)
        body = json.dumps({"detail": detail}).encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()

    # -- the time a request may take (INPUT-6) ---------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0  # the next request's head, if any, starts here
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def bounded_request_protocol(request_read: float, head_limits: HeadLimits) -> type[Any]:
    """The protocol class for uvicorn's ``http`` setting: a request has ``request_read`` seconds
    to arrive, and a head within ``head_limits``."""
    return type(
        "BoundedRequestProtocol",
        (_BoundedRequestProtocol,),
        {"request_read": request_read, "head_limits": head_limits},
    )


class HeadAsGet:
    """ASGI middleware: HEAD is answered wherever GET is, with GET's status and headers and no
    body (RFC 9110, 9.3.2; INPUT-8). FastAPI routes a HEAD only where it was declared, so a
    monitor's ``HEAD /health`` got 405."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_the_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_the_body)
