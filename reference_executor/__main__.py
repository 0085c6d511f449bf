"""``python -m reference_executor``: serve one executor on PORT with uvicorn.

The first kernel starts before the HTTP stack is imported, and that import runs in a thread
while the kernel process boots on its own, so start to ready costs little more than the
kernel's own start (issue #5: time to ready <= 1.3x a bare kernel's start).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from .config import ConfigError, Settings
from .service import ExecutionService


def _import_http_stack() -> tuple[ModuleType, ModuleType]:
    import uvicorn

    from . import app

    return app, uvicorn


async def serve(settings: Settings) -> None:
    service = ExecutionService(settings)
    await service.start()
    try:
        app, uvicorn = await asyncio.to_thread(_import_http_stack)
        config = uvicorn.Config(
            app.create_app(settings, service=service),
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        await uvicorn.Server(config).serve()
    finally:
        await service.close()  # also when the server could not start (port taken, say)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a fraction of a millisecond per call), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"reference-executor: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
