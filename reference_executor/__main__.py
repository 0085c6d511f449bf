"""``python -m reference_executor``: serve one executor on PORT with uvicorn.

The first kernel is launched before ``jupyter_client`` and the HTTP stack are imported (0.2-0.3 s
and more again), and the session adopts it; the HTTP stack is then imported in a thread while
the kernel boots on its own. So start to ready costs little more than the kernel's own
start (issue #5: time to ready <= 1.3x a bare kernel's start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Callable
from types import ModuleType

from .config import ConfigError, Settings
from .isolation import IsolationError, KernelUsers, claim_kernel_users, kernel_environment
from .kernel_process import Prestarted, make_runtime_dir, prepare, prestart


def _import_http_stack() -> tuple[ModuleType, ModuleType, ModuleType]:
    import uvicorn

    from . import app, http_protocol

    return app, http_protocol, uvicorn


def _prestart_first_kernel(settings: Settings) -> tuple[Prestarted | None, KernelUsers | None]:
    """The kernel users, and the first kernel launched now (None if it could not be: the service says why)."""
    kept = (settings.workspace, *settings.persistent_folders)
    users = claim_kernel_users(settings.kernel_user, settings.kernel_uids, keep=kept)  # or the server stops
    runtime_dir = make_runtime_dir(settings.runtime_dir)
    env = kernel_environment(os.environ, settings.session_env)
    user = users.first if users is not None else None
    try:
        folder = prepare(runtime_dir, user=user, max_output_bytes=settings.max_output_bytes, env=env)
        return prestart(folder), users
    except OSError as exc:
        logging.getLogger("reference_executor").warning("could not prestart the first kernel: %s", exc)
        if settings.runtime_dir is None:  # the service makes its own
            shutil.rmtree(runtime_dir, ignore_errors=True)
        return None, users


async def serve(settings: Settings) -> None:
    prestarted, users = _prestart_first_kernel(settings)
    from .service import ExecutionService  # jupyter_client: imported while the first kernel boots

    service = ExecutionService(settings, prestarted=prestarted, kernel_users=users)
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
        try:
            runner.run(serve(settings))
        except IsolationError as exc:
            print(f"reference-executor: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
