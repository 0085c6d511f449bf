"""The manager's HTTP layer (FastAPI) and its pool (allocation queues per type).

Authentication is optional. With a manager token, ``/allocate``, ``/status`` and ``/deallocate``
need it (``Authorization: Bearer TOKEN``), and ``/allocate`` answers a token of the allocation
that ``/session/{id}/...`` needs (and ``/deallocate/{id}`` accepts): one user can neither reach
nor end another's session. The token goes no further than the manager. Without a manager token
the original API works as it always did, for anyone who can reach the manager.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from .store import MemoryStore, Store

__all__ = ["Pool", "create_app", "load_config"]

#: How long a proxied call may take (an execute may run for its whole EXECUTION_TIMEOUT).
PROXY_TIMEOUT = 900.0
#: How long the calls in flight on an allocation have to end, once cut by its /deallocate.
CUT_CALLS_TIMEOUT = 5.0
#: How long a restart on deallocation may take.
RESTART_TIMEOUT = 120.0
#: How long an executor has to answer GET /ready before it is handed out.
READY_CHECK_TIMEOUT = 2.0
#: Bodies above the limit are read (and dropped) up to this many bytes before the 413 goes out.
DRAIN_LIMIT = 64 * 1024 * 1024
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "host", "date", "server"}
#: Never forwarded to an executor: the manager's and the sessions' tokens stay here.
_PRIVATE_HEADERS = {"authorization"}


@dataclass
class Executor:
    id: str
    url: str
    type: str


def _id_order(container_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then any others by name."""
    return (0, int(container_id), "") if container_id.isdigit() else (1, 0, container_id)


@dataclass
class Pool:
    """The executors by id (from the configuration, the same for every manager) and the store of
    their allocation state (``store.py``: this manager's memory, or Redis shared by several).

    A free executor is handed out only if its /ready says ready. One whose restart failed when it
    was given back is dirty: it is restarted before it is handed out again, never as it was.
    """

    executors: dict[str, Executor]
    store: Store = field(default_factory=MemoryStore)

    @property
    def types(self) -> list[str]:
        return sorted({executor.type for executor in self.executors.values()})

    async def status(self) -> dict[str, Any]:
        await self.store.reclaim()
        state = await self.store.status()
        allocated = sorted((i for i in state["allocated"] if i in self.executors), key=_id_order)
        return {
            "available": len(self.executors) - len(allocated),
            "allocated": len(allocated),
            "total": len(self.executors),
            "available_by_type": {kind: state["free_by_type"].get(kind, 0) for kind in self.types},
            "allocated_ids": allocated,
            "not_ready_ids": sorted(state["not_ready"], key=_id_order),
            "needs_restart_ids": sorted(state["dirty"], key=_id_order),
        }


def load_config(path: Path, store: Store | None = None) -> Pool:
    """The pool described by container_config.json: {"0": {"url": ..., "type": ...}, ...}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    executors = {
        str(i): Executor(str(i), str(entry["url"]).rstrip("/"), str(entry["type"])) for i, entry in data.items()
    }
    return Pool(executors, store or MemoryStore())


class ClientGone(Exception):
    """The client closed its connection before the executor answered."""


async def _unless_the_client_leaves(
    forwarded: Awaitable[httpx.Response], request: Request, calls: set[asyncio.Future[httpx.Response]]
) -> httpx.Response:
    """The executor's answer; if the client disconnects first, the call to the executor is
    cancelled (its connection closed, so the executor sees the client leave) and ClientGone raised.
    The call is in ``calls`` (its allocation's) meanwhile: a /deallocate cancels it the same way."""
    answer = asyncio.ensure_future(forwarded)
    left = asyncio.ensure_future(_disconnected(request))
    calls.add(answer)
    try:
        await asyncio.wait({answer, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        calls.discard(answer)
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


async def _ready(client: httpx.AsyncClient, executor: Executor) -> bool:
    try:
        answer = await client.get(f"{executor.url}/ready", timeout=READY_CHECK_TIMEOUT)
        return answer.status_code == 200 and answer.json().get("ready") is True
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


async def _restarted(client: httpx.AsyncClient, executor: Executor) -> bool:
    try:
        answer = await client.post(f"{executor.url}/restart", timeout=RESTART_TIMEOUT)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is larger than ``limit`` (read no further than needed).

    An oversized body is still read and dropped up to DRAIN_LIMIT: closing on unread data sends a
    TCP reset that can destroy the 413 before the client reads it (RFC 9112, 9.6).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            break
        if size <= limit:
            chunks.append(chunk)
    return None if size > limit else b"".join(chunks)


def _bearer(request: Request) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def _same(given: str, expected: str | None) -> bool:
    return bool(given) and expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def create_app(
    pool: Pool, *, max_request_bytes: int = 1024 * 1024, token: str | None = None, executor_token: str | None = None
) -> FastAPI:
    """The manager app for ``pool``; bodies above ``max_request_bytes`` get 413 (MAX_REQUEST_BYTES).

    ``token``: the manager token; None leaves every endpoint open (the original API).
    ``executor_token``: the executors' EXECUTOR_TOKEN (SEC-4), sent on every call to them, in place
    of the client's Authorization (which never leaves the manager).
    """

    def operator(request: Request) -> bool:
        return token is None or _same(_bearer(request), token)

    async def session_holder(request: Request, container_id: str) -> bool:
        """The request carries the token of the executor's allocation (whose lease it extends)."""
        held = await pool.store.holder(container_id)
        return token is None or _same(_bearer(request), held)

    def unauthorised(what: str) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{what}: send Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    client: httpx.AsyncClient | None = None
    #: The calls being forwarded on each executor's allocation, and the executors being handed over.
    calls: dict[str, set[asyncio.Future[httpx.Response]]] = {}
    handing_over: set[str] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal client
        await pool.store.register((e.id, e.type) for e in pool.executors.values())
        to_executors = {"Authorization": f"Bearer {executor_token}"} if executor_token else {}
        client = httpx.AsyncClient(timeout=httpx.Timeout(PROXY_TIMEOUT, connect=5.0), headers=to_executors)
        try:
            yield
        finally:
            await client.aclose()
            await pool.store.close()

    app = FastAPI(title="Executor manager", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def status(request: Request) -> Any:
        if not operator(request):
            return unauthorised("/status needs the manager token")
        return await pool.status()

    @app.post("/allocate")
    async def allocate(request: Request, container_type: str = "python") -> Any:
        """A free executor of the type that is ready now; one that is not stays free and is skipped.

        Each free executor is claimed (atomically: no other request or manager can take it too),
        restarted if it is dirty, asked /ready, then confirmed or given back to the end of its queue.
        """
        assert client is not None
        if not operator(request):
            return unauthorised("/allocate needs the manager token")
        if container_type not in pool.types:
            return _error(404, f"no executors of type {container_type!r}; types: {pool.types}")
        await pool.store.reclaim()
        free = await pool.store.free_count(container_type)
        if not free:
            return _error(503, f"every executor of type {container_type!r} is allocated; try again later")
        for _ in range(free):
            claim = await pool.store.claim(container_type)
            if claim is None:
                break
            executor = pool.executors[claim.id]
            healthy = not claim.dirty or await _restarted(client, executor)
            if healthy and await _ready(client, executor):
                allocation = {"container_id": executor.id, "url": executor.url, "type": executor.type}
                if token is not None:
                    allocation["token"] = secrets.token_urlsafe(32)
                await pool.store.confirm(executor.id, allocation.get("token"))
                return allocation
            await pool.store.give_back(executor.id, dirty=not healthy, not_ready=healthy)  # still free
        return _error(503, f"no executor of type {container_type!r} is ready ({free} free, none ready)")

    async def ending_holder(request: Request, container_id: str) -> bool:
        """The request carries the token of an allocation being handed over: it may end it again."""
        return token is None or _same(_bearer(request), await pool.store.ending(container_id))

    @app.post("/deallocate/{container_id}")
    async def deallocate(container_id: str, request: Request) -> Any:
        holder = await session_holder(request, container_id) or await ending_holder(request, container_id)
        if not (operator(request) or holder):
            return unauthorised(f"/deallocate/{container_id} needs its allocation's token or the manager token")
        executor = pool.executors.get(container_id)
        if executor is None:
            return _error(404, f"no executor {container_id!r}")
        assert client is not None
        # The hand-over is atomic: the token ends first (a call sent from now on gets 401), the
        # calls in flight on it are cut (their connections to the executor closed) and waited
        # for, then the restart clears the user's state; the executor is handed out again only
        # once restarted and ready (``allocate`` asks /ready). Before, the token lived on until
        # the restart had ended, and a call sent meanwhile ran in the next user's session.
        handing_over.add(container_id)
        try:
            await pool.store.revoke(container_id)
            in_flight = list(calls.get(container_id, ()))
            for call in in_flight:
                call.cancel()
            if in_flight:
                await asyncio.wait(in_flight, timeout=CUT_CALLS_TIMEOUT)
            restarted = await _restarted(client, executor)  # clears the user's state
        finally:
            handing_over.discard(container_id)
        # Freed; the pool never shrinks: a dirty one is restarted before it is handed out.
        await pool.store.give_back(container_id, dirty=not restarted)
        if not restarted:
            return _error(
                502, f"executor {container_id} did not restart; it is restarted before it is handed out again"
            )
        return {"status": "deallocated", "container_id": container_id}

    @app.api_route(
        "/session/{container_id}/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    )
    async def session(container_id: str, path: str, request: Request) -> Response:
        if not await session_holder(request, container_id):
            return unauthorised(f"/session/{container_id} needs the token its /allocate answered")
        executor = pool.executors.get(container_id)
        if executor is None:
            return _error(404, f"no executor {container_id!r}")
        assert client is not None
        private = _HOP_HEADERS | _PRIVATE_HEADERS
        headers = {k: v for k, v in request.headers.items() if k.lower() not in private}
        body = await _body_within(request, max_request_bytes)
        if body is None:
            return _error(413, f"request body larger than MAX_REQUEST_BYTES ({max_request_bytes} bytes)")
        outgoing = client.build_request(
            request.method, f"{executor.url}/{path}", content=body, headers=headers, params=request.query_params
        )
        forwarded = client.send(outgoing, stream=True)  # the answer is passed on as it comes, never held whole
        try:
            answer = await _unless_the_client_leaves(forwarded, request, calls.setdefault(container_id, set()))
        except ClientGone:  # the executor saw the call's connection close too (CONC-3)
            if container_id in handing_over:
                return _error(409, f"executor {container_id} was deallocated before the answer; the call was cut")
            return _error(499, "the client went away before the answer")
        except httpx.TimeoutException:
            return _error(504, f"executor {container_id} did not answer within {PROXY_TIMEOUT:.0f} s")
        except httpx.HTTPError as exc:
            return _error(502, f"executor {container_id} is unreachable: {type(exc).__name__}")
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
        return StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code, headers=kept, background=BackgroundTask(answer.aclose)
        )

    return app
