"""The manager's HTTP layer (FastAPI): its routes and who may call them.

The pool's policy is in ``pool.py`` (allocate, deallocate, status), the session proxy in
``proxy.py``; here requests become their calls and their outcomes answers.

Authentication is optional. With a manager token, ``/allocate``, ``/status`` and ``/deallocate``
need it (``Authorization: Bearer TOKEN``), and ``/allocate`` answers a token of the allocation
that ``/session/{id}/...`` needs (and ``/deallocate/{id}`` accepts): one user can neither reach
nor end another's session. The token goes no further than the manager. Without a manager token
the original API works as it always did, for anyone who can reach the manager (the manager
listens so only on loopback).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from executor_serving.settings import MAX_REQUEST_BYTES

from .pool import NoneAvailable, Pool, UnknownExecutor, UnknownType, load_config
from .proxy import error, forward

__all__ = ["Pool", "create_app", "load_config"]


def _bearer(request: Request) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def _same(given: str, expected: str | None) -> bool:
    return bool(given) and expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _unauthorised(what: str) -> JSONResponse:
    detail = f"{what}: send Authorization: Bearer <token>"
    return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def create_app(
    pool: Pool,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    token: str | None = None,
    executor_token: str | None = None,
) -> FastAPI:
    """The manager app for ``pool``; bodies above ``max_request_bytes`` get 413 (MAX_REQUEST_BYTES).

    ``token``: the manager token; None leaves every endpoint open (the original API).
    ``executor_token``: the executors' EXECUTOR_TOKEN (SEC-4), sent on every call to them, in place
    of the client's Authorization (which never leaves the manager).
    """

    def operator(request: Request) -> bool:
        return token is None or _same(_bearer(request), token)

    async def session_holder(request: Request, container_id: str) -> bool:
        """The request carries the token of the executor's allocation. Asking the store extends
        the allocation's lease, with or without tokens: a session in use is never reclaimed."""
        held = await pool.store.holder(container_id)
        return token is None or _same(_bearer(request), held)

    async def ending_holder(request: Request, container_id: str) -> bool:
        """The request carries the token of an allocation being handed over: it may end it again."""
        return token is None or _same(_bearer(request), await pool.store.ending(container_id))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(executor_token)
        try:
            yield
        finally:
            await pool.close()

    # Its API is documented by the pool contract (conformance/pool-openapi.yaml), not served.
    app = FastAPI(title="Executor manager", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def status(request: Request) -> Any:
        if not operator(request):
            return _unauthorised("/status needs the manager token")
        return await pool.status()

    @app.post("/allocate")
    async def allocate(request: Request, container_type: str = "python") -> Any:
        if not operator(request):
            return _unauthorised("/allocate needs the manager token")
        try:
            allocation = await pool.allocate(container_type, with_token=token is not None)
        except UnknownType as exc:
            return error(404, str(exc))
        except NoneAvailable as exc:
            return error(503, str(exc))
        return allocation.answer()

    @app.post("/deallocate/{container_id}")
    async def deallocate(container_id: str, request: Request) -> Any:
        holder = await session_holder(request, container_id) or await ending_holder(request, container_id)
        if not (operator(request) or holder):
            return _unauthorised(f"/deallocate/{container_id} needs its allocation's token or the manager token")
        try:
            cleared = await pool.deallocate(container_id)
        except UnknownExecutor as exc:
            return error(404, str(exc))
        if not cleared:
            return error(
                502,
                f"executor {container_id} did not restart (or, recycled, its container or pod did not end); "
                "it is cleared before it is handed out again",
            )
        return {"status": "deallocated", "container_id": container_id}

    @app.api_route(
        "/session/{container_id}/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    )
    async def session(container_id: str, path: str, request: Request) -> Response:
        if not await session_holder(request, container_id):
            return _unauthorised(f"/session/{container_id} needs the token its /allocate answered")
        try:
            return await forward(pool, container_id, path, request, max_request_bytes)
        except UnknownExecutor as exc:
            return error(404, str(exc))

    return app
