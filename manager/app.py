"""The manager's HTTP layer (FastAPI) and its pool (allocation queues per type)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["Pool", "create_app", "load_config"]

#: How long a proxied call may take (an execute may run for its whole EXECUTION_TIMEOUT).
PROXY_TIMEOUT = 900.0
#: How long a restart on deallocation may take.
RESTART_TIMEOUT = 120.0
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "host", "date", "server"}


@dataclass
class Executor:
    id: str
    url: str
    type: str


@dataclass
class Pool:
    """Executors by id, and a queue of free ones per type."""

    executors: dict[str, Executor]
    free: dict[str, deque[str]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        for executor in self.executors.values():
            self.free.setdefault(executor.type, deque()).append(executor.id)

    @property
    def allocated(self) -> list[str]:
        free = {i for queue in self.free.values() for i in queue}
        return sorted((i for i in self.executors if i not in free), key=int)

    def status(self) -> dict[str, Any]:
        allocated = self.allocated
        return {
            "available": len(self.executors) - len(allocated),
            "allocated": len(allocated),
            "total": len(self.executors),
            "available_by_type": {kind: len(queue) for kind, queue in self.free.items()},
            "allocated_ids": allocated,
        }


def load_config(path: Path) -> Pool:
    """The pool described by container_config.json: {"0": {"url": ..., "type": ...}, ...}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    executors = {
        str(i): Executor(str(i), str(entry["url"]).rstrip("/"), str(entry["type"])) for i, entry in data.items()
    }
    return Pool(executors)


class ClientGone(Exception):
    """The client closed its connection before the executor answered."""


async def _unless_the_client_leaves(forwarded: Awaitable[httpx.Response], request: Request) -> httpx.Response:
    """The executor's answer; if the client disconnects first, the call to the executor is
    cancelled (its connection closed, so the executor sees the client leave) and ClientGone raised."""
    answer = asyncio.ensure_future(forwarded)
    left = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({answer, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        if not answer.done():
            answer.cancel()
    if answer.cancelled() or not answer.done():
        raise ClientGone
    return answer.result()


async def _disconnected(request: Request) -> None:
    """Returns once the client has disconnected (the request body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(pool: Pool) -> FastAPI:
    """The manager app for ``pool``."""
    client: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal client
        client = httpx.AsyncClient(timeout=httpx.Timeout(PROXY_TIMEOUT, connect=5.0))
        yield
        await client.aclose()

    app = FastAPI(title="Executor manager", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return pool.status()

    @app.post("/allocate")
    async def allocate(container_type: str = "python") -> Any:
        async with pool.lock:
            queue = pool.free.get(container_type)
            if queue is None:
                return _error(404, f"no executors of type {container_type!r}; types: {sorted(pool.free)}")
            if not queue:
                return _error(503, f"every executor of type {container_type!r} is allocated; try again later")
            executor = pool.executors[queue.popleft()]
        return {"container_id": executor.id, "url": executor.url, "type": executor.type}

    @app.post("/deallocate/{container_id}")
    async def deallocate(container_id: str) -> Any:
        executor = pool.executors.get(container_id)
        if executor is None:
            return _error(404, f"no executor {container_id!r}")
        assert client is not None
        try:
            await client.post(f"{executor.url}/restart", timeout=RESTART_TIMEOUT)  # clears the user's state
        except httpx.HTTPError as exc:
            return _error(502, f"executor {container_id} did not restart: {type(exc).__name__}")
        async with pool.lock:
            queue = pool.free[executor.type]
            if container_id not in queue:
                queue.append(container_id)
        return {"status": "deallocated", "container_id": container_id}

    @app.api_route(
        "/session/{container_id}/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    )
    async def session(container_id: str, path: str, request: Request) -> Response:
        executor = pool.executors.get(container_id)
        if executor is None:
            return _error(404, f"no executor {container_id!r}")
        assert client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        forwarded = client.request(
            request.method, f"{executor.url}/{path}", content=await request.body(), headers=headers,
            params=request.query_params,
        )  # fmt: skip
        try:
            answer = await _unless_the_client_leaves(forwarded, request)
        except ClientGone:  # the executor saw the call's connection close too (CONC-3)
            return _error(499, "the client went away before the answer")
        except httpx.TimeoutException:
            return _error(504, f"executor {container_id} did not answer within {PROXY_TIMEOUT:.0f} s")
        except httpx.HTTPError as exc:
            return _error(502, f"executor {container_id} is unreachable: {type(exc).__name__}")
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    return app
