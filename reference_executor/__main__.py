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

from executor_serving.settings import HeadLimits, not_installed

from .config import REFERENCE_MODULES, ConfigError, Settings, Timeouts
from .isolation import IsolationError
from .kernels import KernelFactory

#: The exit status of a server that stopped because no kernel could start (KERNEL_START_GIVE_UP).
EXIT_NO_KERNEL = 3


def _import_http_stack() -> tuple[ModuleType, ModuleType, ModuleType]:
    import uvicorn

    from executor_serving import protocol

    from . import app

    return app, protocol, uvicorn


async def serve(settings: Settings) -> int:
    """Serve until stopped: 0, or ``EXIT_NO_KERNEL`` when the service failed for want of a kernel."""
    kernels = KernelFactory(settings)  # claims the kernel users, or the server stops
    kernels.prestart()
    from .service import ExecutionService  # jupyter_client: imported while the first kernel boots

    service = ExecutionService(settings, kernels=kernels)
    await service.start()
    try:
        app, protocol, uvicorn = await asyncio.to_thread(_import_http_stack)
        config = uvicorn.Config(
            app.create_app(settings, service=service),
            host=settings.host,
            port=settings.port,
            http=protocol.bounded_request_protocol(settings.timeouts.request_read, settings.head_limits),
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


def usage() -> str:
    """What ``--help`` prints: how the executor is configured, with the defaults from ``config``."""
    d, t, h = Settings(), Timeouts(), HeadLimits()
    return f"""usage: reference-executor  (or python -m reference_executor)

Serves one executor of the contract (docs/contract.md) over HTTP: GET /health, GET /ready,
POST /execute, POST /restart, GET /info. It takes no arguments: it is configured by environment
variables (a bad value stops it with a one-line message, exit status 2):

  HOST, PORT                where to listen (default {d.host}:{d.port})
  WORKSPACE_FOLDER          mounted code, loaded into every session (default {d.workspace})
  EXECUTION_TIMEOUT         default seconds per execute (default {t.execution:g})
  MAX_EXECUTION_TIMEOUT     the longest timeout a request may ask for (default {t.max_execution:g})
  MAX_OUTPUT_BYTES          output kept per execute (default {d.max_output_bytes})
  MAX_REQUEST_BYTES         the largest request body (default {d.max_request_bytes})
  REQUEST_READ_TIMEOUT      seconds for a whole request to arrive (default {t.request_read:g})
  MAX_HEAD_BYTES            the largest request head (default {h.head}); past it, 431
  MAX_HEADER_LINE_BYTES     the longest request line or header field (default {h.line})
  MAX_HEADER_COUNT          the most header fields in a request (default {h.count})
  SESSION_ENV               names of the variables user code may see (default: none)
  SUBMISSION_DIR            a folder kept across sessions (default: none)
  KERNEL_USER, KERNEL_UIDS  auto (as root: two throwaway uids of {d.kernel_uids.start}-{d.kernel_uids.stop - 1}) or none
  STANDBY_KERNEL            keep a second kernel ready for restarts (default 1)
  INTERRUPT_GRACE           seconds interrupted code has to stop (default {t.interrupt_grace:g})
  KERNEL_START_TIMEOUT      seconds a new kernel has to answer (default {t.kernel_start:g})
  KERNEL_START_GIVE_UP      seconds of failed kernel starts before the server stops, exit
                            status {EXIT_NO_KERNEL} (default {t.start_give_up:g})
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        if argv[0] in ("-h", "--help"):
            print(usage())
            return 0
        print(f"reference-executor: no arguments are taken ({' '.join(argv)}); see --help", file=sys.stderr)
        return 2
    absent = not_installed(REFERENCE_MODULES)
    if absent:
        print(
            f"reference-executor: {', '.join(absent)} not installed; "
            "install the reference executor's extra: pip install 'executor-conformance[reference]'",
            file=sys.stderr,
        )
        return 2
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
