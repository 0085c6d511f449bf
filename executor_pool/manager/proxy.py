"""The session proxy: a user's call passed on to the executor of their allocation, and its
answer passed back as it comes.

The client's Authorization never leaves the manager (the pool's client sends the executors'
token instead); the call is cut when the client leaves, or when the allocation is deallocated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from executor_serving.body import body_within

from .pool import PROXY_TIMEOUT, Pool

__all__ = ["error", "forward"]

_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "host", "date", "server"}
#: Never forwarded to an executor: the manager's and the sessions' tokens stay here.
_PRIVATE_HEADERS = {"authorization"}


class ClientGone(Exception):
    """The client closed its connection (or the call was cut) before the executor answered."""


def error(status: int, detail: str) -> JSONResponse:
    """The manager's error answer: JSON, as an executor's (INPUT-1)."""
    return JSONResponse({"detail": detail}, status_code=status)


async def forward(pool: Pool, container_id: str, path: str, request: Request, max_request_bytes: int) -> Response:
    """``request`` passed on to the executor's ``path``; bodies above ``max_request_bytes`` get 413."""
    executor = pool.executor(container_id)
    private = _HOP_HEADERS | _PRIVATE_HEADERS
    headers = {k: v for k, v in request.headers.items() if k.lower() not in private}
    body = await body_within(request, max_request_bytes)
    if body is None:
        return error(413, f"request body larger than MAX_REQUEST_BYTES ({max_request_bytes} bytes)")
    client = pool.client
    outgoing = client.build_request(
        request.method, f"{executor.url}/{path}", content=body, headers=headers, params=request.query_params
    )
    forwarded = client.send(outgoing, stream=True)  # the answer is passed on as it comes, never held whole
    try:
        answer = await _unless_the_client_leaves(forwarded, request, pool.calls.setdefault(container_id, set()))
    except ClientGone:  # the executor saw the call's connection close too (CONC-3)
        if container_id in pool.handing_over:
            return error(409, f"executor {container_id} was deallocated before the answer; the call was cut")
        return error(499, "the client went away before the answer")
    except httpx.TimeoutException:
        return error(504, f"executor {container_id} did not answer within {PROXY_TIMEOUT:.0f} s")
    except httpx.HTTPError as exc:
        return error(502, f"executor {container_id} is unreachable: {type(exc).__name__}")
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
    return StreamingResponse(
        answer.aiter_raw(), status_code=answer.status_code, headers=kept, background=BackgroundTask(answer.aclose)
    )


async def _unless_the_client_leaves(
    forwarded: Awaitable[httpx.Response], request: Request, calls: set[asyncio.Future[httpx.Response]]
) -> httpx.Response:
    """The executor's answer; if the client disconnects first, the call to the executor is
    cancelled (its connection closed, so the executor sees the client leave) and ClientGone raised.
    The call is in ``calls`` (its allocation's) meanwhile: a deallocation cancels it the same way."""
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
