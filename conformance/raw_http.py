"""Requests an HTTP client library will not send: heads that never end (INPUT-7), and bytes
that are not the HTTP/1.1 an executor speaks (INPUT-1).

Raw sockets, bounded in bytes and time: a flood stops at ``cap`` bytes or its deadline, whichever
comes first, and its socket is closed in every outcome. The suite uses it against executors, and
the project's tests against the manager, which must bound heads the same way.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

__all__ = ["HEAD_SHAPES", "NOT_HTTP_1_1", "STALLED", "HeadFlood", "RawAnswer", "flood_head", "flood_heads", "send_raw"]

#: A peer that took no byte for this long has stopped reading (its buffers are full).
STALLED = 1.0

_FILLER = b"a" * 1024
#: A head that never ends, three ways: (what it is, its start, what repeats after it for ever).
HEAD_SHAPES: dict[str, tuple[bytes, bytes]] = {
    "a request line": (b"GET /health?", _FILLER * 64),
    "a header field": (b"GET /health HTTP/1.1\r\nHost: executor\r\nX-Flood: ", _FILLER * 64),
    "header fields": (b"GET /health HTTP/1.1\r\nHost: executor\r\n", b"X-Flood: " + _FILLER + b"\r\n"),
}


#: Requests that are not well-formed HTTP/1.1: (what it is, its bytes). No 5xx for any of them.
NOT_HTTP_1_1: dict[str, bytes] = {
    "an HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "an unknown HTTP version": b"GET /health HTTP/9.9\r\nHost: executor\r\n\r\n",
    # A TLS record's first bytes, then a line break: a server that reads lines judges it at once.
    "a TLS handshake": bytes.fromhex("160301020001000200030300") + b"\x00" * 32 + b"\r\n\r\n",
    "a negative Content-Length": b"POST /execute HTTP/1.1\r\nHost: executor\r\nContent-Length: -5\r\n\r\n",
    "two different Content-Lengths": (
        b"POST /execute HTTP/1.1\r\nHost: executor\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n123456"
    ),
    "a malformed chunked body": (
        b"POST /execute HTTP/1.1\r\nHost: executor\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"
    ),
}


@dataclass(frozen=True)
class RawAnswer:
    """What came back for raw bytes: the status and body of an answer, if any, and whether the
    connection was closed."""

    status: int | None
    head: str
    body: bytes
    closed: bool
    #: Whether any byte came back (an answer without a status line, say).
    received: bool

    def describe(self) -> str:
        if self.status is None and self.received:
            return f"bytes that are no HTTP answer: {(self.head.encode('latin-1') + self.body)[:200]!r}"
        if self.status is None:
            return "no answer, connection closed" if self.closed else "no answer"
        return f"HTTP {self.status}: {self.body[:200]!r}"


def send_raw(host: str, port: int, data: bytes, *, within: float) -> RawAnswer:
    """Send ``data`` on a connection of its own, then read what comes back for ``within`` seconds
    at most (until the connection closes, or an answer whose length is known is whole)."""
    deadline = time.monotonic() + within
    received, closed, length = b"", False, None
    with _connection(host, port, within) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        while (left := deadline - time.monotonic()) > 0:
            try:
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                    if k.strip().lower() == b"content-length" and v.strip().isdigit()
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    head, _, body = received.partition(b"\r\n\r\n")
    if length is not None:  # the answer's own body: what follows (a second answer, say) is not
        body = body[:length]
    return RawAnswer(_status_of(received), head.decode("latin-1"), body, closed, bool(received))


@dataclass(frozen=True)
class HeadFlood:
    """What became of one never-ending head."""

    shape: str
    #: Bytes the peer took (the kernel's buffers included) before it answered, closed, or the end.
    sent: int
    #: The status code of the peer's answer, if it answered.
    status: int | None
    #: Whether the peer closed or reset the connection.
    closed: bool
    #: Whether the peer took half the cap or more, or was still taking bytes at the deadline.
    unbounded: bool

    def describe(self) -> str:
        answer = f"answered {self.status}" if self.status is not None else "no answer"
        ended = "closed" if self.closed else "left open"
        taken = f"took {self.sent / 2**20:.1f} MiB"
        return f"{self.shape}: {taken}, {answer}, {ended}" + (
            " (still taking bytes at the end)" if self.unbounded else ""
        )


def _status_of(data: bytes) -> int | None:
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


@contextlib.contextmanager
def _connection(host: str, port: int, timeout: float) -> Iterator[socket.socket]:
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def flood_head(host: str, port: int, shape: str, *, cap: int, within: float) -> HeadFlood:
    """Send a head of ``shape`` that never ends, up to ``cap`` bytes or for ``within`` seconds.

    A bounded peer reads a head up to its bound, then answers 431, closes, or stops reading (the
    flood stalls once the kernel's buffers are full): ``unbounded`` is False. One that takes half
    the ``cap`` or more, or is still taking bytes at the deadline, keeps the head in memory.
    """
    start, filler = HEAD_SHAPES[shape]
    deadline = time.monotonic() + within
    sent, received, closed = 0, b"", False
    progress = time.monotonic()  # when the peer last took bytes
    with _connection(host, port, within) as sock:
        sock.setblocking(False)  # select() says when to send or read
        pending = memoryview(start)
        while not closed and _status_of(received) is None:
            left = deadline - time.monotonic()
            if left <= 0 or sent >= cap:
                break
            readable, writable, _ = select.select([sock], [sock], [], min(left, 0.5))
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError:  # reset
                    closed = True
                    break
                received += data[:4096]
                closed = data == b""
                continue
            if writable:
                if not pending:
                    pending = memoryview(filler)
                try:
                    count = sock.send(pending[: cap - sent])
                except BlockingIOError:
                    continue
                except OSError:  # the peer closed or reset the connection
                    closed = True
                    break
                sent += count
                pending = pending[count:]
                progress = time.monotonic()
        answered = closed or _status_of(received) is not None
        # Half the cap is far past any bound and the kernel's buffers (docker-proxy's included): a
        # peer that took that much before it answered or closed (its read deadline, say) read on.
        unbounded = sent >= cap // 2 or (not answered and time.monotonic() - progress < STALLED)
        if not closed:  # a peer that answered may close at once: say so if it does
            with contextlib.suppress(OSError):
                ready, _, _ = select.select([sock], [], [], 0.2)
                closed = bool(ready) and sock.recv(65536) == b""
    return HeadFlood(shape, sent, _status_of(received), closed, unbounded)


def flood_heads(host: str, port: int, *, connections: int, cap: int, within: float) -> list[HeadFlood]:
    """Every shape of ``HEAD_SHAPES`` on ``connections`` connections at once each, one shape after another."""
    floods: list[HeadFlood] = []
    with ThreadPoolExecutor(connections) as pool:
        for shape in HEAD_SHAPES:
            futures = [pool.submit(flood_head, host, port, shape, cap=cap, within=within) for _ in range(connections)]
            floods.extend(future.result() for future in futures)
    return floods
