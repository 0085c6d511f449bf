"""The execution service: one session's policy over kernel sessions.

It serialises executions (one lock), tracks readiness, replaces a kernel that died or ignored
an interrupt, restarts on request, keeps an optional standby kernel (started in the
background with the workspace loaded, never used by anyone before it is swapped in), and
watches the idle kernel so that a death is noticed within about a second. Every kernel that
goes is retired the same way (``_retire``): shut down, then its user's processes and files swept
before that user id serves again, so that nothing of one session reaches the next (ISO-1..5).
No HTTP types here: the routes in ``app.py`` translate its results and exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .isolation import IsolationError, KernelUser, KernelUsers, claim_kernel_users, kernel_environment, sweep
from .kernel import KernelSession, KernelStartError, RunOutcome, workspace_signature
from .kernel_process import Prestarted, make_runtime_dir

__all__ = ["ClientGoneError", "ExecuteResult", "ExecutionService", "NotReadyError", "Readiness"]

log = logging.getLogger("reference_executor.service")

#: How long to wait before trying again after a kernel failed to start.


class NotReadyError(RuntimeError):
    """No kernel became available within the bound; the HTTP layer answers 503."""


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

    def __init__(
        self,
        settings: Settings,
        *,
        prestarted: Prestarted | None = None,
        kernel_users: KernelUsers | None = None,
    ) -> None:
        """``prestarted``: the first kernel, launched already in the service's runtime folder, as
        one of ``kernel_users`` (claimed by the caller; claimed here when neither is given)."""
        self.settings = settings
        self._owns_runtime_dir = settings.runtime_dir is None
        #: What the sweep of a retired kernel's user leaves alone: the workspace, the persistent folders.
        self._kept = (settings.workspace, *settings.persistent_folders)
        self._kernel_env = kernel_environment(os.environ, settings.session_env)
        if prestarted is None and kernel_users is None:
            kernel_users = claim_kernel_users(settings.kernel_user, settings.kernel_uids, keep=self._kept)
        self._users = kernel_users
        if prestarted is not None:
            self._runtime_dir = prestarted.folder.path.parent
            if kernel_users is not None and prestarted.folder.user is not None:
                kernel_users.take_this(prestarted.folder.user)
        else:
            self._runtime_dir = make_runtime_dir(settings.runtime_dir)
        self._prestarted = prestarted
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
        if self._prestarted is not None:  # closed before the first kernel was taken up
            self._prestarted.discard()
            self._prestarted = None
        if self._active is not None:
            await self._retire(self._active)
            self._active = None
        if self._users is not None:  # nothing of any session outlives the server
            for user in self._users.users:
                await asyncio.to_thread(self._sweep, user)
            self._users.release()
        if self._owns_runtime_dir:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _new_kernel(self) -> KernelSession:
        """A kernel session (not started), as a user id that no live kernel has."""
        prestarted, self._prestarted = self._prestarted, None  # the first kernel, if it was prestarted
        user = None
        if prestarted is None and self._users is not None:
            user = self._users.take()
        return KernelSession(
            timeouts=self.settings.timeouts,
            max_output_bytes=self.settings.max_output_bytes,
            runtime_dir=self._runtime_dir,
            user=user,
            env=self._kernel_env,
            prestarted=prestarted,
        )

    def _sweep(self, user: KernelUser) -> None:
        try:
            sweep(user, keep=self._kept)
        except IsolationError as exc:
            log.error("isolation between sessions may be broken: %s", exc)

    async def _retire(self, kernel: KernelSession) -> None:
        """Shut ``kernel`` down, and sweep its user's processes and files before that user serves again."""
        await kernel.shutdown()
        user = kernel.user
        if user is not None and self._users is not None:
            await asyncio.to_thread(self._sweep, user)
            self._users.give_back(user)

    async def _fresh_kernel(self) -> KernelSession:
        """Start a kernel and load the workspace into it, trying again until one comes up."""
        while True:
            kernel = self._new_kernel()
            try:
                await kernel.start()
                await kernel.load_workspace(self.settings.workspace)
                return kernel
            except KernelStartError as exc:
                log.error("kernel failed to start, trying again in %.0f s: %s", self.settings.timeouts.start_retry, exc)
                await self._retire(kernel)
                await asyncio.sleep(self.settings.timeouts.start_retry)
            except BaseException:  # cancelled while starting (a discarded standby): leave no process behind
                await asyncio.shield(self._retire(kernel))
                raise

    async def _discard_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is None:
            return
        standby.cancel()
        with contextlib.suppress(BaseException):
            await self._retire(await standby)

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
                if await kernel.is_alive() and kernel.workspace_signature == current:
                    log.info("swapped in the standby kernel %s", kernel.name)
                    return kernel
                log.info("the standby kernel is stale (dead, or the workspace changed); starting afresh")
                await self._retire(kernel)
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
                await self._retire(old)
            if first:
                self._reason = "loading_code"
            self._active = await self._take_kernel()
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

        A running execution is ended (it answers ``crashed``). The restart finishes before
        this returns, so the answer is always ``ok``.
        """
        self._not_ready("restarting")  # executes accepted from now on wait for the new kernel
        await self._replace_kernel("restarting")
        return "ok"

    async def execute(
        self, code: str, timeout: float | None = None, *, abandoned: Callable[[], Awaitable[bool]] | None = None
    ) -> ExecuteResult:
        """Run ``code`` in the session. Raises ``NotReadyError`` if no kernel comes up in time.

        ``abandoned``: asked once the call's turn has come; if it says the caller has gone, the
        code is not run (``ClientGoneError``).
        """
        timeout = self.settings.timeouts.execution if timeout is None else timeout
        async with self._run_lock:
            kernel = await self._wait_for_kernel(self.settings.timeouts.kernel_start)
            if abandoned is not None and await abandoned():
                raise ClientGoneError("the client went away while the call waited for its turn")
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
