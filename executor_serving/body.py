"""A request body read no further than a limit, for a 413 that reaches the client."""

from __future__ import annotations

from starlette.requests import Request

from .settings import DRAIN_LIMIT_BYTES

__all__ = ["body_within"]


async def body_within(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is larger than ``limit`` bytes (kept no further).

    An oversized body is still read, and dropped, up to DRAIN_LIMIT_BYTES: closing on unread data
    sends a TCP reset that can destroy the 413 before the client reads it (RFC 9112, 9.6). One
    that declares more than both is not read at all. A body within ``limit`` is read whole,
    however large the limit.
    """
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    if too_large and int(declared) > DRAIN_LIMIT_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        too_large = too_large or size > limit
        if not too_large:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT_BYTES:
            break
    return None if too_large else b"".join(chunks)
