"""``python -m reference_executor``: serve one executor on PORT with uvicorn.

The first kernel is launched before ``jupyter_client`` and the HTTP stack are imported (0.2-0.3 s
and more again), and the session adopts it; the HTTP stack is then imported in a thread while
the kernel boots on its own. So start to ready costs little more than the kernel's own
start (issue #5: time to ready <= 1.3x a bare kernel's start).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from .config import ConfigError, Settings
from .isolation import IsolationError
from .kernels import KernelFactory

#: The exit status of a server that stopped because no kernel could start (KERNEL_START_GIVE_UP).
EXIT_NO_KERNEL = 3


def _import_http_stack() -> tuple[ModuleType, ModuleType, ModuleType]:
    import uvicorn

    from . import app, http_protocol

    return app, http_protocol, uvicorn


async def serve(settings: Settings) -> int:
    """Serve until stopped: 0, or ``EXIT_NO_KERNEL`` when the service failed for want of a kernel."""
    kernels = KernelFactory(settings)  # claims the kernel users, or the server stops
    kernels.prestart()
    from .service import ExecutionService  # jupyter_client: imported while the first kernel boots

    service = ExecutionService(settings, kernels=kernels)
    await service.start()
    try:
        app, http_protocol, uvicorn = await asyncio.to_thread(_import_http_stack)
        config = uvicorn.Config(
            app.create_app(settings, service=service),
            host=settings.host,
            port=settings.port,
            http=http_protocol.bounded_request_protocol(settings.timeouts.request_read),
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)

        async def stop_when_failed() -> None:
            await service.failed.wait()
            server.should_exit = True

        watcher = asyncio.create_task(stop_when_failed())
        try:
            await server.serve()
        finally:
            watcher.cancel()
    finally:
        await service.close()  # also when the server could not start (port taken, say)
    return EXIT_NO_KERNEL if service.failed.is_set() else 0


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
        try:
            return runner.run(serve(settings))
        except IsolationError as exc:
            print(f"reference-executor: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
