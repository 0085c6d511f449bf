"""The execution service: one session's policy over kernel sessions.

It serialises executions (one lock), tracks readiness, replaces a kernel that died or ignored
an interrupt, restarts on request, keeps an optional standby kernel (started in the
background with the workspace loaded, never used by anyone before it is swapped in), and
watches the idle kernel so that a death is noticed within about a second. Its kernels come from
one ``KernelFactory``, which retires every kernel that goes the same way: shut down, then its
user's processes and files swept before that user id serves again, so that nothing of one
session reaches the next (ISO-1..5). A kernel that fails to start is tried again, less and
less often, until ``timeouts.start_give_up``; then the service has ``failed`` and the server
stops, so that whatever runs it starts it afresh.
No HTTP types here: the routes in ``app.py`` translate its results and exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .kernel import KernelSession, KernelStartError, RunOutcome, workspace_signature
from .kernels import KernelFactory

__all__ = ["ClientGoneError", "ExecuteResult", "ExecutionService", "NotReadyError", "Readiness", "SessionEndedError"]

log = logging.getLogger("reference_executor.service")

#: How long to wait before trying again after a kernel failed to start.


class NotReadyError(RuntimeError):
    """No kernel became available within the bound; the HTTP layer answers 503."""


class SessionEndedError(NotReadyError):
    """The call came during a restart, or waited for its turn across one: it was not run, so that
    nothing sent to one session runs in the next (ISO-7). The HTTP layer answers 503."""


class ClientGoneError(RuntimeError):
    """The caller went away while its execution waited for its turn: it was not run (CONC-3)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None


@dataclass(frozen=True)
class ExecuteResult:
    status: str
    outputs: list[dict[str, Any]]
    execution_count: int | None
    duration_ms: float
    truncated: bool
    restarted: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "outputs": self.outputs,
            "execution_count": self.execution_count,
            "duration_ms": self.duration_ms,
            "truncated": self.truncated,
            "restarted": self.restarted,
        }


class ExecutionService:
    """Runs code for one client session on a kernel it keeps alive and replaces when needed."""

    def __init__(self, settings: Settings, *, kernels: KernelFactory | None = None) -> None:
        """``kernels``: where the kernels come from (made here when not given; ``__main__`` gives
        one that has prestarted the first kernel already)."""
        self.settings = settings
        self._kernels = KernelFactory(settings) if kernels is None else kernels
        #: Set when no kernel could start within ``timeouts.start_give_up``: the server should stop.
        self.failed = asyncio.Event()
        self._serving = False  # until serving(): no standby kernel
        self._run_lock = asyncio.Lock()  # one execution at a time (CONC-1)
        self._lifecycle_lock = asyncio.Lock()  # one kernel replacement at a time
        self._active: KernelSession | None = None
        self._kernel_ready = asyncio.Event()
        self._reason: str | None = "starting"
        self._standby: asyncio.Task[KernelSession] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._running: KernelSession | None = None
        self._closed = False
        #: Which session calls are for: a requested restart begins the next one (ISO-7).
        self._session_number = 0
        self._restarts_under_way = 0

    # -- readiness ----------------------------------------------------------------------
    @property
    def readiness(self) -> Readiness:
        if self._kernel_ready.is_set():
            return Readiness(True, None)
        return Readiness(False, self._reason or "starting")

    @property
    def restarting(self) -> bool:
        return self._reason in ("restarting", "recovering") and not self._kernel_ready.is_set()

    def _not_ready(self, reason: str) -> None:
        self._reason = reason
        self._kernel_ready.clear()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Bring up the first kernel in the background; ``/ready`` turns true when it is loaded."""
        self._spawn(self._replace_kernel("starting", first=True))
        self._watchdog = asyncio.create_task(self._watch())

    async def close(self) -> None:
        """Stop every kernel and background task."""
        self._closed = True
        tasks = [t for t in (self._watchdog, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self._discard_standby()
        if self._active is not None:
            await self._kernels.retire(self._active)
            self._active = None
        await self._kernels.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fresh_kernel(self) -> KernelSession:
        """Start a kernel and load the workspace into it. One that fails is tried again, waiting
        ``start_retry`` s, then twice as long each time up to ``start_retry_max``; past
        ``start_give_up`` s of failures the last error is raised."""
        waits = self.settings.timeouts
        give_up, pause = time.monotonic() + waits.start_give_up, waits.start_retry
        while True:
            kernel = None
            try:
                kernel = self._kernels.new()  # KernelStartError too when no user id is free for it
                await kernel.start()
                await kernel.load_workspace(self.settings.workspace)
                return kernel
            except KernelStartError as exc:
                if kernel is not None:
                    await self._kernels.retire(kernel)
                if time.monotonic() + pause > give_up:
                    raise KernelStartError(
                        f"no kernel started in {waits.start_give_up:.0f} s; the last: {exc}"
                    ) from exc
                log.error("kernel failed to start, trying again in %.0f s: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, waits.start_retry_max)
            except BaseException:  # cancelled while starting (a discarded standby): leave no process behind
                if kernel is not None:
                    await asyncio.shield(self._kernels.retire(kernel))
                raise

    async def _discard_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is None:
            return
        standby.cancel()
        with contextlib.suppress(BaseException):
            await self._kernels.retire(await standby)

    async def _take_kernel(self) -> KernelSession:
        """The standby kernel (waiting for it if it is still starting), else a fresh one.

        A standby that died, or that loaded a workspace which has changed since, is discarded.
        """
        standby, self._standby = self._standby, None
        if standby is not None:
            try:
                kernel = await standby
            except Exception as exc:  # it could not start: a fresh kernel will say why
                log.warning("the standby kernel failed: %s", exc)
            else:
                current = workspace_signature(self.settings.workspace)
                if (
                    await kernel.is_alive()
                    and kernel.workspace_signature == current
                    and not self._kernels.shared(kernel)
                ):
                    log.info("swapped in the standby kernel %s", kernel.name)
                    return kernel
                log.info(
                    "the standby kernel is stale (dead, the workspace changed, or its user id shared); starting afresh"
                )
                await self._kernels.retire(kernel)
        return await self._fresh_kernel()

    def serving(self) -> None:
        """The HTTP server is up: the standby kernel may start now.

        Not before: until then the standby's start would take CPU from the server's own start-up
        and the first kernel's, and under a CPU quota delay readiness by seconds (issue #5).
        """
        self._serving = True
        if self._active is not None:
            self._refill_standby()

    def _refill_standby(self) -> None:
        if self.settings.standby_kernel and self._standby is None and not self._closed and self._serving:
            self._standby = asyncio.create_task(self._start_standby())

    async def _start_standby(self) -> KernelSession:
        kernel = await self._fresh_kernel()
        log.info("standby kernel ready")
        return kernel

    async def _replace_kernel(self, reason: str, *, retiring: KernelSession | None = None, first: bool = False) -> None:
        """Make a new kernel active, retiring the current one. Readiness follows.

        With ``retiring``, nothing happens unless that kernel is still the active one, so that
        a death noticed twice (by the run and by the watchdog) replaces the kernel once.
        """
        async with self._lifecycle_lock:
            if retiring is not None and self._active is not retiring:
                return
            self._not_ready(reason)
            old, self._active = self._active, None
            if old is not None:
                await self._kernels.retire(old)
            if first:
                self._reason = "loading_code"
            try:
                self._active = await self._take_kernel()
            except KernelStartError as exc:
                log.critical("%s: the executor stops, to be started afresh", exc)
                self._not_ready("failed")
                self.failed.set()
                return
            self._reason = None
            self._kernel_ready.set()
            log.info("kernel ready (%s)", reason)
            self._refill_standby()

    def _recover(self, kernel: KernelSession) -> None:
        """Mark the session not ready at once and replace ``kernel`` in the background."""
        if kernel is self._active:
            self._not_ready("recovering")
            self._spawn(self._replace_kernel("recovering", retiring=kernel))

    async def _watch(self) -> None:
        """Notice an idle kernel that died (e.g. killed from outside) and replace it (CRASH-2)."""
        interval = self.settings.timeouts.watchdog_interval
        while not self._closed:
            await asyncio.sleep(interval)
            kernel = self._active
            if kernel is None or kernel is self._running or self._lifecycle_lock.locked():
                continue
            if not await kernel.is_alive() and kernel is self._active and kernel is not self._running:
                log.error("the idle kernel died (exit code %s); replacing it", await kernel.exit_code())
                self._recover(kernel)

    async def _wait_for_kernel(self, bound: float) -> KernelSession:
        try:
            await asyncio.wait_for(self._kernel_ready.wait(), timeout=bound)
        except TimeoutError:
            raise NotReadyError(f"the session is not ready ({self.readiness.reason})") from None
        if self._active is None:
            raise NotReadyError("the session is not ready (restarting)")
        return self._active

    # -- requests -----------------------------------------------------------------------
    async def restart(self) -> str:
        """Replace the kernel: all user state goes, the workspace is loaded again (RESTART-1..4).

        A running execution is ended (it answers ``crashed``); executions waiting for their turn,
        and those that come before the new session is ready, are refused (``SessionEndedError``),
        never run in the new session (ISO-7). The restart finishes before this returns, so the
        answer is always ``ok``.
        """
        self._session_number += 1  # calls of the old session that still wait are refused, not run
        self._restarts_under_way += 1  # and calls that come meanwhile too: they were sent to no session
        self._not_ready("restarting")
        try:
            await self._replace_kernel("restarting")
        finally:
            self._restarts_under_way -= 1
        if self.failed.is_set():
            raise NotReadyError("no kernel could start: the executor is stopping")
        return "ok"

    async def execute(
        self, code: str, timeout: float | None = None, *, abandoned: Callable[[], Awaitable[bool]] | None = None
    ) -> ExecuteResult:
        """Run ``code`` in the session. Raises ``NotReadyError`` if no kernel comes up in time.

        ``abandoned``: asked once the call's turn has come; if it says the caller has gone, the
        code is not run (``ClientGoneError``).
        """
        timeout = self.settings.timeouts.execution if timeout is None else timeout
        session = self._session_number
        if self._restarts_under_way:
            raise SessionEndedError("a restart is under way: this call was not run; send it once /ready is true")
        async with self._run_lock:
            kernel = await self._wait_for_kernel(self.settings.timeouts.kernel_start)
            if abandoned is not None and await abandoned():
                raise ClientGoneError("the client went away while the call waited for its turn")
            if session != self._session_number or self._restarts_under_way:
                raise SessionEndedError("the session was restarted while this call waited for its turn: it was not run")
            started = time.monotonic()
            self._running = kernel
            try:
                result = await kernel.run(code, deadline=started + timeout)
            finally:
                self._running = None
            duration_ms = round((time.monotonic() - started) * 1000, 3)
            outcome = result.outcome
            if outcome is RunOutcome.DIED:
                if kernel is self._active:
                    log.error("the kernel died during an execution (exit code %s)", result.exit_code)
                self._recover(kernel)
                return ExecuteResult("crashed", result.outputs, None, duration_ms, result.truncated, True)
            restarted = outcome is RunOutcome.TIMEOUT_UNRESPONSIVE
            if restarted:
                log.warning("the code ignored the interrupt; replacing the kernel")
                self._recover(kernel)
            status = "timeout" if outcome in (RunOutcome.TIMEOUT, RunOutcome.TIMEOUT_UNRESPONSIVE) else outcome.value
            return ExecuteResult(
                status, result.outputs, result.execution_count, duration_ms, result.truncated, restarted
            )
