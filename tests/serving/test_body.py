"""A request body read within a limit (executor_serving.body), through a real Starlette app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from executor_serving.body import body_within
from executor_serving.settings import DRAIN_LIMIT_BYTES

MIB = 1024 * 1024


def _size_read(limit: int, body: Any) -> int | None:
    """What ``body_within(request, limit)`` returned, as its size, for a POST of ``body``."""

    async def echo_size(request: Request) -> JSONResponse:
        read = await body_within(request, limit)
        return JSONResponse({"size": None if read is None else len(read)})

    async def post() -> int | None:
        app = Starlette(routes=[Route("/", echo_size, methods=["POST"])])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
            size: int | None = (await client.post("/", content=body)).json()["size"]  # JSON: untyped
            return size

    return asyncio.run(post())


async def _chunks(total: int, size: int) -> AsyncIterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_within_a_limit_above_the_drain_bound_is_read_whole(chunked: bool) -> None:
    """A review found bodies over DRAIN_LIMIT_BYTES cut short (chunked: 64 MiB of 80 came back as
    if whole) or refused (a Content-Length of 80 MiB) under a limit of 100 MiB."""
    assert DRAIN_LIMIT_BYTES < 80 * MIB
    body = _chunks(80 * MIB, MIB) if chunked else b"x" * (80 * MIB)
    assert _size_read(100 * MIB, body) == 80 * MIB


@pytest.mark.parametrize(
    "body", [b"x" * (2 * MIB), b"x" * (70 * MIB)], ids=["over-the-limit", "one-chunk-past-the-drain-bound"]
)
def test_a_body_over_its_limit_is_refused_never_cut(body: bytes) -> None:
    assert _size_read(MIB, body) is None


def test_a_body_at_its_limit_is_kept() -> None:
    assert _size_read(MIB, b"x" * MIB) == MIB
