"""The kernel factory: every kernel of one server, from the first (prestarted) to the last.

It owns what the kernels of a server share: the throwaway users they alternate between
(``isolation``), the runtime folder their own folders go in, the environment user code gets
(``SESSION_ENV``), and the first kernel, launched before ``jupyter_client`` is imported. It
makes kernel sessions and retires them (shut down, their user swept), and knows nothing of
readiness or restart policy: that is the execution service's.

This module never imports ``jupyter_client`` at import time: ``__main__`` prestarts the first
kernel through it while ``jupyter_client`` and the HTTP stack are still being imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .isolation import (
    IsolationError,
    KernelUser,
    KernelUsers,
    claim_kernel_users,
    kernel_environment,
    shared_with_another_executor,
    sweep,
)
from .kernel_process import KernelFolder, KernelStartError, Prestarted, make_runtime_dir, prepare, prestart

if TYPE_CHECKING:
    from .kernel import KernelSession

__all__ = ["KernelFactory"]

log = logging.getLogger("reference_executor.kernels")


class KernelFactory:
    """Makes the kernels of one server: as which user, in which folder, with which environment."""

    def __init__(self, settings: Settings) -> None:
        """Claims the kernel users (IsolationError if isolation is asked for and impossible)."""
        self.settings = settings
        #: What the sweep of a retired kernel's user leaves alone: the workspace, the persistent folders.
        self._kept = (settings.workspace, *settings.persistent_folders)
        self._users: KernelUsers | None = claim_kernel_users(
            settings.kernel_user, settings.kernel_uids, keep=self._kept
        )
        self._owns_runtime_dir = settings.runtime_dir is None
        self.runtime_dir = make_runtime_dir(settings.runtime_dir)
        self._env = kernel_environment(os.environ, settings.session_env)
        self._prestarted: Prestarted | None = None
        #: Background sweeps of users held back after a sweep that did not finish.
        self._held_back: set[asyncio.Task[None]] = set()

    def prestart(self) -> None:
        """Launch the first kernel now, for the first session to adopt. If it cannot be launched,
        the first session starts one the ordinary way, which says why if it fails again."""
        folder = None
        try:
            folder = self._folder()
            self._prestarted = prestart(folder)
        except OSError as exc:
            log.warning("could not prestart the first kernel: %s", exc)
            if folder is not None:
                self._give_back(folder)

    def new(self) -> KernelSession:
        """A kernel session, not started: the prestarted kernel if there is one, else a new
        folder as a user no live kernel has."""
        from .kernel import KernelSession  # jupyter_client: imported by now, after the first kernel's launch

        prestarted, self._prestarted = self._prestarted, None
        launch: KernelFolder | Prestarted = prestarted if prestarted is not None else self._folder()
        return KernelSession(launch, timeouts=self.settings.timeouts, max_output_bytes=self.settings.max_output_bytes)

    def shared(self, kernel: KernelSession) -> bool:
        """Whether another executor on this host runs processes as ``kernel``'s user id (it claimed
        the id after this kernel started): such a kernel must not serve a new session."""
        return kernel.user is not None and shared_with_another_executor(kernel.user)

    async def retire(self, kernel: KernelSession) -> None:
        """Shut ``kernel`` down, and sweep everything its user owns before that user serves again.

        A sweep that does not finish within its deadlines (a fork bomb, a million files) holds the
        user back: it is swept again in the background until clean, and meanwhile other kernels
        run as other ids.
        """
        await kernel.shutdown()
        user = kernel.user
        if user is None or self._users is None:
            return
        if await asyncio.to_thread(self._sweep, user, kernel.folder_path):
            self._users.give_back(user)
            return
        task = asyncio.create_task(self._sweep_until_clean(user, kernel.folder_path))
        self._held_back.add(task)
        task.add_done_callback(self._held_back.discard)

    async def _sweep_until_clean(self, user: KernelUser, folder: Path) -> None:
        timeouts = self.settings.timeouts
        pause = timeouts.sweep_again
        while True:
            await asyncio.sleep(pause)
            pause = min(pause * 2, timeouts.sweep_again_max)  # each try holds a thread: fewer and fewer
            deadline = time.monotonic() + timeouts.sweep_background
            if await asyncio.to_thread(self._sweep, user, folder, deadline):
                log.info("user %d is clean again: it may serve", user.uid)
                if self._users is not None:
                    self._users.give_back(user)
                return

    async def close(self) -> None:
        """Discard a prestarted kernel never adopted, sweep both users (nothing of any session
        outlives the server), let other servers claim them, and remove the runtime folder."""
        if self._prestarted is not None:
            self._prestarted.discard()
            self._prestarted = None
        for task in list(self._held_back):
            task.cancel()
        if self._users is not None:
            for user in self._users.users:
                await asyncio.to_thread(
                    self._sweep, user, None, time.monotonic() + self.settings.timeouts.sweep_background
                )
            self._users.release()
        if self._owns_runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def _folder(self) -> KernelFolder:
        try:
            user = self._users.take() if self._users is not None else None
        except IsolationError as exc:  # no user id to run as: this kernel cannot start (retried)
            raise KernelStartError(str(exc)) from exc
        try:
            return prepare(
                self.runtime_dir,
                user=user,
                max_output_bytes=self.settings.max_output_bytes,
                max_processes=self.settings.session_max_processes,
                env=self._env,
            )
        except BaseException:
            if user is not None and self._users is not None:
                self._users.give_back(user)
            raise

    def _give_back(self, folder: KernelFolder) -> None:
        """A folder whose kernel never ran: removed, and its user free again."""
        shutil.rmtree(folder.path, ignore_errors=True)
        if folder.user is not None and self._users is not None:
            self._users.give_back(folder.user)

    def _sweep(self, user: KernelUser, folder: Path | None = None, deadline: float | None = None) -> bool:
        """Sweep ``user`` (and its kernel's ``folder``); whether nothing of it is left."""
        try:
            sweep(
                user,
                keep=self._kept,
                folders=self._users.folders if self._users is not None else (),
                remove=[folder] if folder is not None else [],
                deadline=deadline,
            )
        except IsolationError as exc:
            log.error("user %d is held back until a sweep finishes: %s", user.uid, exc)
            return False
        return True
