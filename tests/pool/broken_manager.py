"""The manager with one fault, for the kit's gallery of broken pools (``test_pool_gallery``).

    python -m tests.pool.broken_manager FAULT [the manager's options]

Each fault breaks one promise of the pool contract, as a manager written another way might, and
names the requirement the kit must fail it on. The manager is the real one, patched in this
process only before it starts.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from executor_pool.manager import __main__ as manager_command
from executor_pool.manager import app, pool, store


def _health_needs_a_token() -> None:
    """/health answers 401 without a token: an orchestrator's probe, or a client, cannot tell it serves."""
    create_app = app.create_app

    def guarded(*args: Any, **kwargs: Any) -> FastAPI:
        application = create_app(*args, **kwargs)

        @application.middleware("http")
        async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if request.url.path == "/health" and "authorization" not in request.headers:
                return JSONResponse({"detail": "/health needs a token"}, status_code=401)
            return await call_next(request)

        return application

    app.create_app = guarded


def _operator_calls_open() -> None:
    """Every token, or none, is taken for the manager's (and for every allocation's)."""
    app._same = lambda given, expected: True


def _allocation_token_opens_operator_calls() -> None:
    """An allocation's token is taken for the manager's on /status, /allocate and /deallocate: a
    user can see the pool, take every executor and end another user's session."""
    create_app = app.create_app

    def lenient(the_pool: pool.Pool, *args: Any, **kwargs: Any) -> FastAPI:
        application = create_app(the_pool, *args, **kwargs)
        manager_token = kwargs.get("token")

        @application.middleware("http")
        async def promote(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            given = app._bearer(request)
            operator_call = request.url.path in ("/status", "/allocate") or request.url.path.startswith("/deallocate")
            if manager_token and given and operator_call:
                held = [await the_pool.store.holder(executor) for executor in the_pool.executors]
                if given in held:  # the bearer of an allocation: served as the operator
                    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
                    request.scope["headers"] = [*headers, (b"authorization", f"Bearer {manager_token}".encode())]
            return await call_next(request)

        return application

    app.create_app = lenient  # type: ignore[assignment]


def _allocation_without_token() -> None:
    """/allocate answers no token: the user cannot be told apart from the next."""
    answer = pool.Allocation.answer

    def without_token(self: pool.Allocation) -> dict[str, str]:
        return {key: value for key, value in answer(self).items() if key != "token"}

    pool.Allocation.answer = without_token  # type: ignore[method-assign]


def _status_out_of_step() -> None:
    """/status says nothing is allocated, whatever is."""
    status = pool.Pool.status

    async def never_allocated(self: pool.Pool) -> dict[str, Any]:
        return {**(await status(self)), "allocated": 0, "allocated_ids": []}

    pool.Pool.status = never_allocated  # type: ignore[method-assign]


def _session_serves_any_token() -> None:
    """A session serves any bearer token, another allocation's too (so does the operator's API)."""
    app._same = lambda given, expected: bool(given) and expected is not None


def _no_restart_on_deallocate() -> None:
    """The executor is handed to the next user as the last one left it: no restart."""

    async def restarted(self: pool.Pool, executor: pool.Executor) -> bool:
        return True

    pool.Pool._restarted = restarted  # type: ignore[method-assign]


def _same_token_for_every_user() -> None:
    """Every allocation gets the same token: the last user's calls reach the next user's session."""
    secrets.token_urlsafe = lambda nbytes=None: "the-same-token-for-every-user"  # the module the pool calls


def _lease_never_reclaimed() -> None:
    """/status declares a lease, and no allocation ever ends by it."""

    async def nothing_reclaimed(self: store.MemoryStore) -> list[str]:
        return []

    store.MemoryStore.reclaim = nothing_reclaimed  # type: ignore[method-assign]


#: Each fault, and the requirement the kit must fail it on.
FAULTS: dict[str, tuple[Callable[[], None], str]] = {
    "health_needs_a_token": (_health_needs_a_token, "POOL-1"),
    "operator_calls_open": (_operator_calls_open, "POOL-2"),
    "allocation_token_opens_operator_calls": (_allocation_token_opens_operator_calls, "POOL-2"),
    "allocation_without_token": (_allocation_without_token, "POOL-3"),
    "status_out_of_step": (_status_out_of_step, "POOL-4"),
    "session_serves_any_token": (_session_serves_any_token, "POOL-5"),
    "no_restart_on_deallocate": (_no_restart_on_deallocate, "POOL-6"),
    "same_token_for_every_user": (_same_token_for_every_user, "POOL-7"),
    "lease_never_reclaimed": (_lease_never_reclaimed, "POOL-8"),
}


if __name__ == "__main__":
    fault, *options = sys.argv[1:]
    if fault != "none":
        FAULTS[fault][0]()
    sys.exit(manager_command.main(options))
