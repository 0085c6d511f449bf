"""The HTTP layer: FastAPI routes, request validation and error answers.

Routes translate HTTP to calls on the ``ExecutionService`` and back. Every error answer is
JSON ``{"detail": ...}`` with a 4xx (or 503 when no kernel is available); no request can
produce a stack trace in a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from executor_serving.body import body_within
from executor_serving.protocol import HeadAsGet

from . import __version__
from .config import Settings
from .service import ClientGoneError, ExecutionService, NotReadyError

__all__ = ["create_app"]

log = logging.getLogger("reference_executor.app")

FEATURES = ["mounted_code", "timeout_override", "rich_output", "restart_status", "info", "executor_token"]
CONTRACT_VERSION = "1.6"
#: What an orchestrator probes: open whatever EXECUTOR_TOKEN says (SEC-4).
OPEN_PATHS = frozenset({"/health", "/ready"})


class BearerRequired:
    """SEC-4: with EXECUTOR_TOKEN set, a request to any path but ``OPEN_PATHS`` without
    ``Authorization: Bearer <token>`` gets 401 before any route sees it (nothing runs)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                refusal = JSONResponse(
                    {"detail": "this executor serves only calls with its token (Authorization: Bearer ...)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ExecuteRequest(BaseModel):
    """Body of ``POST /execute``; unknown fields are ignored (INPUT-4)."""

    model_config = ConfigDict(extra="ignore")

    code: StrictStr
    timeout: Annotated[StrictFloat | StrictInt, Field(gt=0, allow_inf_nan=False)] | None = None

    @field_validator("code")
    @classmethod
    def _encodable(cls, code: str) -> str:
        try:
            code.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"code holds a lone surrogate ({code[exc.start]!r} at {exc.start}), which UTF-8 cannot carry"
            ) from None
        return code


async def _json_body(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON, whatever its Content-Type; 413 past ``max_bytes``.

    An oversized body is still drained before the 413 goes out (``executor_serving.body``).
    """
    raw = await body_within(request, max_bytes)
    if raw is None:
        raise HTTPException(413, f"request body larger than MAX_REQUEST_BYTES ({max_bytes} bytes)")
    if not raw.strip():
        raise HTTPException(400, 'empty body: send a JSON object such as {"code": "1+1"}')
    try:
        # strict=False: line breaks inside a string are accepted, as the original README's curl
        # examples send them (a multi-line "code" typed between single quotes in the shell).
        return json.loads(raw, strict=False)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:  # valid JSON nested deeper than the parser goes (INPUT-1)
        raise HTTPException(400, "body is nested too deeply") from None
    except ValueError as exc:  # a number past Python's digit limit for integers (INPUT-1)
        raise HTTPException(400, f"body holds a value that cannot be read: {exc}") from None


def create_app(settings: Settings | None = None, service: ExecutionService | None = None) -> FastAPI:
    """The ASGI app of one executor; its kernel starts with the app's lifespan.

    A ``service`` passed in was started already (``__main__`` starts it before the HTTP stack is
    even imported); the app still closes it when it stops.
    """
    settings = Settings.from_env() if settings is None else settings
    started = service is not None
    service = ExecutionService(settings) if service is None else service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not started:
            await service.start()
        service.serving()
        try:
            yield
        finally:
            await service.close()

    app = FastAPI(
        title="Reference executor",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the contract's openapi.yaml is the published schema
    )
    app.state.service = service
    app.add_middleware(HeadAsGet)
    if settings.executor_token:
        app.add_middleware(BearerRequired, token=settings.executor_token)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        problems = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        readiness = service.readiness
        body = {"ready": readiness.ready, "reason": readiness.reason}
        return JSONResponse(body, status_code=200 if readiness.ready else 503)

    @app.exception_handler(ClientGoneError)
    async def client_gone(request: Request, exc: ClientGoneError) -> JSONResponse:
        log.info("dropped a queued execute: its client had gone before it could run (CONC-3)")
        return JSONResponse({"detail": str(exc)}, status_code=499)  # nobody reads it

    @app.post("/execute")
    async def execute(request: Request) -> JSONResponse:
        body = ExecuteRequest.model_validate(await _json_body(request, settings.max_request_bytes))
        timeout = None if body.timeout is None else float(body.timeout)
        if timeout is not None and timeout > settings.timeouts.max_execution:
            raise HTTPException(
                422, f"timeout {timeout:g} s is above MAX_EXECUTION_TIMEOUT ({settings.timeouts.max_execution:g} s)"
            )
        result = await service.execute(body.code, timeout, abandoned=request.is_disconnected)
        return JSONResponse(result.as_dict())  # already JSON types: no jsonable_encoder walk of the outputs

    @app.post("/restart")
    async def restart() -> dict[str, str]:
        return {"status": await service.restart()}

    @app.get("/restart-status")
    async def restart_status() -> dict[str, bool]:
        return {"restarting": service.restarting}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "implementation": "reference-executor",
            "version": __version__,
            "contract_version": CONTRACT_VERSION,
            "language": "python",
            "features": FEATURES,
            "persistent_folders": [str(folder) for folder in settings.persistent_folders],
            # The values in force, for a client that did not start the executor (INFO-1, 1.6).
            "settings": {
                "EXECUTION_TIMEOUT": settings.timeouts.execution,
                "MAX_EXECUTION_TIMEOUT": settings.timeouts.max_execution,
                "MAX_OUTPUT_BYTES": settings.max_output_bytes,
                "MAX_REQUEST_BYTES": settings.max_request_bytes,
            },
        }

    return app
