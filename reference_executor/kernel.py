"""The kernel session: one IPython kernel process and the client that talks to it.

Wraps ``jupyter_client``'s async API: start a kernel (optionally as an unprivileged user), or
adopt one launched before ``jupyter_client`` was imported (``kernel_process.prestart``), load
the mounted workspace into it, run code against a deadline, interrupt, and tell whether the
process still lives. It knows nothing of HTTP, locking or restart policy; the execution
service above it decides what to do when a run times out or the kernel dies.
This module must never import FastAPI, Starlette or anything of ``reference_executor.app``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Container
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from . import workspace_loader
from .config import Timeouts
from .file_sweep import SweepError, remove_tree
from .isolation import KernelUser
from .kernel_process import (
    KERNEL_LOG,
    KERNEL_NAME,
    KERNEL_PROVISIONER,
    KernelFolder,
    KernelStartError,
    Prestarted,
)
from .outputs import OutputCollector
from .workspace_loader import python_files

__all__ = [
    "KernelSession",
    "KernelStartError",
    "KernelUser",
    "Prestarted",
    "RunOutcome",
    "RunResult",
    "workspace_signature",
]

log = logging.getLogger("reference_executor.kernel")

#: While a kernel starts: how long to wait for a kernel_info reply before asking again, and for
#: an IOPub status once the reply came (jupyter_client waits 1 s and 0.2 s). The status is
#: missed when the IOPub subscription has not (re)connected yet: zmq retries every 0.1 s, so
#: asking again soon beats waiting long.
_LOADER_SOURCE = Path(workspace_loader.__file__).read_text(encoding="utf-8")


def message_bytes_cap(max_output_bytes: int) -> int:
    """The largest message the server takes from a kernel: room for the whole output cap in
    UTF-8's widest characters, and the message's envelope. A larger one is user code's doing
    (the launcher cuts stream writes at the cap); zmq drops it unread, so that it never takes
    the server's memory."""
    return 4 * max_output_bytes + 1024 * 1024


class RunOutcome(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    #: The deadline passed and the interrupt stopped the code; the kernel is usable.
    TIMEOUT = "timeout"
    #: The deadline passed and the code ignored the interrupt; the kernel must be replaced.
    TIMEOUT_UNRESPONSIVE = "timeout_unresponsive"
    #: The kernel process died during the run.
    DIED = "died"


@dataclass
class RunResult:
    outcome: RunOutcome
    outputs: list[dict[str, Any]]
    execution_count: int | None
    truncated: bool
    exit_code: int | None = None


class _AdoptingProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, which adopts a kernel already launched by ``prestart``.

    Everything else (signals, polling, killing, clean-up) is the local provisioner's own.
    """

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        process = getattr(self.parent, "adopted", None)
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        if process.args != cmd:  # cannot happen unless the two ways of building the command part
            raise KernelStartError(f"the prestarted kernel ran {process.args!r}, not {cmd!r}")
        self.process = process
        self.pid = process.pid
        try:
            self.pgid = os.getpgid(process.pid)
        except OSError:  # it died already: the start notices
            self.pgid = None
        self.cwd = kwargs.get("cwd")
        return self.connection_info


def _register_provisioner() -> None:
    """Make the adopting provisioner known to jupyter_client by name (idempotent).

    Provisioners are found by name, normally through entry points; registered by the kernel
    layer before each kernel manager is made, it works from a source tree as well as from an
    installed package, and importing this module changes nothing of jupyter_client's.
    """
    KernelProvisionerFactory.instance().provisioners.setdefault(
        KERNEL_PROVISIONER,
        EntryPoint(
            KERNEL_PROVISIONER, f"{__name__}:{_AdoptingProvisioner.__name__}", KernelProvisionerFactory.GROUP_NAME
        ),
    )


class _Manager(AsyncKernelManager):
    """A kernel manager whose connection file is readable by the kernel's own user.

    With ``adopted`` set, the kernel was launched already (``prestart``) on the connection
    info loaded into this manager: the file is not written again (the kernel may be reading
    it), and ``_AdoptingProvisioner`` takes that process instead of launching one.
    """

    kernel_owner: tuple[int, int] | None = None
    adopted: Any = None

    def write_connection_file(self, **kwargs: Any) -> None:
        if self.adopted is not None:
            return
        super().write_connection_file(**kwargs)
        if self.kernel_owner is not None:
            os.chown(self.connection_file, *self.kernel_owner)


class KernelSession:
    """One kernel, from start to shutdown. Not safe for concurrent ``run`` calls."""

    def __init__(self, launch: KernelFolder | Prestarted, *, timeouts: Timeouts, max_output_bytes: int) -> None:
        """A session for the kernel to launch from ``launch``'s folder (``kernel_process.prepare``),
        or for the one already launched (``kernel_process.prestart``), to adopt."""
        self._timeouts = timeouts
        self._prestarted = launch if isinstance(launch, Prestarted) else None
        self._folder: KernelFolder = launch.folder if isinstance(launch, Prestarted) else launch
        self._dir = self._folder.path
        self._max_output_bytes = max_output_bytes
        self._km: _Manager | None = None
        self._kc: Any = None
        self._closing = False
        self._in_run = False
        #: Plain (not asyncio) views of the client's sockets, for reads that need no waiting.
        self._readers: dict[int, zmq.Socket[Any]] = {}
        self.workspace_signature: tuple[tuple[str, int, int], ...] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._folder.name

    @property
    def user(self) -> KernelUser | None:
        """Who the kernel runs as (None: the server's own user)."""
        return self._folder.user

    def _log_tail(self, characters: int = 2000) -> str:
        """The end of what the kernel wrote to its standard output and error (``KERNEL_LOG``)."""
        try:
            with open(self._dir / KERNEL_LOG, "rb") as file:
                file.seek(0, os.SEEK_END)
                file.seek(max(0, file.tell() - characters))
                return file.read().decode("utf-8", "replace").strip() or "(it wrote nothing)"
        except OSError:
            return "(it left no log)"

    @property
    def folder_path(self) -> Path:
        """The kernel's own folder (its HOME inside): gone once it is retired."""
        return self._dir

    @property
    def pid(self) -> int | None:
        provisioner = self._km.provisioner if self._km else None
        return getattr(provisioner, "pid", None)

    async def start(self) -> None:
        """Start the kernel process (or adopt the prestarted one) and wait until it answers."""
        folder = self._folder
        _register_provisioner()
        km = _Manager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder.kernels)]),
            transport="ipc",
            ip=str(folder.ipc),
            connection_file=str(folder.connection_file),
        )
        if folder.user is not None:
            km.kernel_owner = (folder.user.uid, folder.user.gid)
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:
            km.load_connection_info(prestarted.connection_info)  # type: ignore[arg-type]  # a TypedDict in stubs
            km.adopted = prestarted.process
        self._km = km
        try:
            await km.start_kernel(**folder.launch)
        except Exception as exc:
            if prestarted is not None:
                prestarted.discard()
            raise KernelStartError(f"could not start the kernel: {exc}") from exc
        finally:
            km.adopted = None
        self._raise_oom_score()
        kc = km.client()
        # Larger messages from the kernel are dropped by zmq before they are read whole (OUTPUT-3).
        kc.context.setsockopt(zmq.MAXMSGSIZE, message_bytes_cap(self._max_output_bytes))
        kc.start_channels()
        self._kc = kc
        try:
            await self._wait_for_ready(kc, time.monotonic() + self._timeouts.kernel_start)
        except KernelStartError:
            await self.shutdown()
            raise
        log.info("kernel %s started (pid %s)%s", self.name, self.pid, " (prestarted)" if prestarted else "")

    async def _wait_for_ready(self, kc: Any, deadline: float) -> None:
        """Ask for kernel_info until the kernel answers on shell and IOPub, or raise.

        jupyter_client's ``wait_for_ready`` does the same, then drains IOPub until it has been
        quiet for 0.2 s: a fifth of a kernel's whole start here (issue #5). Nothing needs that
        drain: ``run`` ignores every message but those of its own request. The IOPub check
        stays: the status the kernel publishes for the request proves the subscription is
        connected, so no output of the first execution can be lost.
        """
        asked: set[str] = set()
        while time.monotonic() < deadline:
            msg_id = kc.kernel_info()
            asked.add(msg_id)
            ask_again = min(deadline, time.monotonic() + self._timeouts.kernel_info_retry)
            answered = await self._receive_reply(kc.shell_channel, {msg_id}, ask_again)
            # The status of any request asked so far will do: under a CPU quota it can come late.
            if answered and await self._receive_reply(
                kc.iopub_channel, asked, time.monotonic() + self._timeouts.iopub_check
            ):
                return
            if not await self.is_alive():
                raise KernelStartError(
                    f"the kernel died before it answered (exit code {await self.exit_code()}): {self._log_tail()}"
                )
        raise KernelStartError(f"the kernel did not answer within {self._timeouts.kernel_start:.0f} s")

    def _raise_oom_score(self) -> None:
        """Make the kernel, not the server, what the OOM killer takes (CRASH-3)."""
        if self.pid is None:
            return
        try:
            Path(f"/proc/{self.pid}/oom_score_adj").write_text("1000")
        except OSError as exc:
            log.debug("could not set the kernel's oom_score_adj: %s", exc)

    async def is_alive(self) -> bool:
        return self._km is not None and await self._km.is_alive()

    async def exit_code(self) -> int | None:
        process = getattr(self._km.provisioner, "process", None) if self._km else None
        return process.poll() if process is not None else None

    async def interrupt(self) -> None:
        if self._km is not None:
            await self._km.interrupt_kernel()

    async def shutdown(self) -> None:
        """Kill the kernel at once and remove its files. Safe to call more than once.

        A ``run`` in progress notices within ``watchdog_interval`` and returns ``DIED``.
        """
        self._closing = True
        prestarted, self._prestarted = self._prestarted, None
        if prestarted is not None:  # never adopted
            prestarted.discard()
        km, self._km = self._km, None
        if km is not None:
            try:
                await km.shutdown_kernel(now=True)
            except Exception as exc:  # a kernel that is already gone is fine
                log.debug("kernel shutdown: %s", exc)
        if not self._in_run:
            self._close_channels()
        if self.user is not None:
            return  # the sweep removes the folder, once every process of the user is dead
        try:  # however deep or wide user code made its HOME
            await asyncio.to_thread(remove_tree, str(self._dir), time.monotonic() + self._timeouts.sweep_files)
        except (OSError, SweepError) as exc:
            log.warning("the kernel's folder %s was not all removed: %s", self._dir, exc)

    def _close_channels(self) -> None:
        kc, self._kc = self._kc, None
        self._readers.clear()
        if kc is not None:
            kc.stop_channels()

    # -- running code -------------------------------------------------------------------
    async def load_workspace(self, folder: Path) -> None:
        """Run the mounted code in the kernel's namespace; log what it prints (CODE-3)."""
        self.workspace_signature = workspace_signature(folder)
        # The loader's source goes to the kernel, so the kernel need not import this package.
        code = (
            "__loader = {'__name__': 'workspace_loader'}\n"
            f"exec(compile({_LOADER_SOURCE!r}, '<workspace_loader>', 'exec'), __loader)\n"
            f"__loader['load']({str(folder)!r}, globals())\n"
            "del __loader\n"
        )
        deadline = time.monotonic() + self._timeouts.code_loading
        result = await self.run(code, deadline=deadline, silent=True)
        for item in result.outputs:
            for line in item["text"].rstrip("\n").splitlines():
                log.info("[workspace] %s", line)
        if result.outcome not in (RunOutcome.OK, RunOutcome.ERROR):
            raise KernelStartError(f"loading the workspace ended with {result.outcome.value}")

    async def run(self, code: str, *, deadline: float, silent: bool = False) -> RunResult:
        """Run ``code`` until it finishes, the ``deadline`` (monotonic) passes, or the kernel dies.

        Past the deadline the kernel is interrupted; if the code has not stopped within
        ``interrupt_grace`` the outcome is ``TIMEOUT_UNRESPONSIVE`` and the kernel must go.
        """
        if self._kc is None or self._closing:
            return RunResult(RunOutcome.DIED, [], None, False)
        self._in_run = True
        try:
            return await self._run(self._kc, code, deadline, silent)
        finally:
            self._in_run = False
            if self._closing:
                self._close_channels()

    async def _run(self, kc: Any, code: str, deadline: float, silent: bool) -> RunResult:
        collector = OutputCollector(self._max_output_bytes)
        msg_id = kc.execute(code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False)
        interrupted_at: float | None = None
        execution_count: int | None = None
        reply_msg: dict[str, Any] | None = None
        replied_at: float | None = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and now >= deadline:
                await self.interrupt()
                interrupted_at = now
            limit = deadline if interrupted_at is None else interrupted_at + self._timeouts.interrupt_grace
            if interrupted_at is not None and now >= limit:
                return RunResult(
                    RunOutcome.TIMEOUT_UNRESPONSIVE, collector.items(), execution_count, collector.truncated
                )
            wait = max(0.0, min(limit - now, self._timeouts.watchdog_interval))
            msg = await self._receive(kc.iopub_channel, wait)
            if msg is None:
                if self._closing or not await self.is_alive():
                    return RunResult(
                        RunOutcome.DIED,
                        collector.items(),
                        execution_count,
                        collector.truncated,
                        exit_code=await self.exit_code(),
                    )
                # The kernel went idle without our hearing it: a message over the size cap made
                # zmq drop the IOPub connection, and what it sent until zmq reconnected is lost.
                if reply_msg is None:
                    reply_msg = await self._receive_reply(kc.shell_channel, {msg_id}, time.monotonic())
                    replied_at = None if reply_msg is None else now
                elif replied_at is not None and now - replied_at >= self._timeouts.idle_after_reply:
                    log.warning("kernel %s: output of %s lost (a message over the size cap)", self.name, msg_id)
                    collector.mark_truncated()
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            if msg_type == "status":
                if content.get("execution_state") == "idle":
                    break
            elif msg_type == "execute_input":  # not sent by kernel_launcher's kernels; the reply has the count
                execution_count = content.get("execution_count")
            elif interrupted_at is not None and msg_type == "error" and content.get("ename") == "KeyboardInterrupt":
                continue  # our own interrupt, not an error of the user's code
            else:
                collector.add(msg_type, content)
        # The execute_reply was sent before the kernel went idle.
        bound = self._timeouts.reply_after_idle
        if reply_msg is None:
            reply_msg = await self._receive_reply(kc.shell_channel, {msg_id}, time.monotonic() + bound)
        if reply_msg is None:
            log.warning("no execute_reply for %s within %.1f s", msg_id, bound)
        reply = None if reply_msg is None else reply_msg["content"]
        if reply is not None and execution_count is None:
            execution_count = reply.get("execution_count")
        # The code may have finished before our interrupt reached it (a timeout far below the
        # time a round trip takes, say): then it ran to its end, and says so with its result. A
        # result means the same (it is the cell's last act), even if the interrupt then hit the
        # kernel's own work after it.
        items = collector.items()
        kinds = {item["type"] for item in items}
        finished = (reply is not None and reply.get("status") == "ok") or "execute_result" in kinds
        # Our own interrupt, landing after the code finished, is no error of the code's.
        ours = interrupted_at is not None and (reply or {}).get("ename") == "KeyboardInterrupt"
        if interrupted_at is not None and not finished:
            outcome = RunOutcome.TIMEOUT
        elif "error" in kinds or ((reply or {}).get("status") == "error" and not ours):
            outcome = RunOutcome.ERROR
        else:
            outcome = RunOutcome.OK
        return RunResult(outcome, items, None if silent else execution_count, collector.truncated)

    async def _receive(self, channel: Any, timeout: float) -> dict[str, Any] | None:
        """The next message on ``channel`` within ``timeout`` seconds, or None if none came.

        A message already waiting is read at once, without the event loop; only an empty socket
        is polled. (jupyter_client's async ``get_msg`` polls, then receives: two trips through
        the event loop for each of the five messages of an execution, issue #5.)
        """
        reader = self._readers.get(id(channel))
        if reader is None:
            reader = self._readers[id(channel)] = zmq.Socket.shadow(channel.socket.underlying)
        deadline = time.monotonic() + timeout
        while True:
            try:
                frames = reader.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                left = deadline - time.monotonic()
                if left <= 0 or not await channel.socket.poll(left * 1000, zmq.POLLIN):
                    return None
                continue
            try:
                _, frames = channel.session.feed_identities(frames)
                message: dict[str, Any] = channel.session.deserialize(frames)
            except Exception as exc:  # user code can send anything on the kernel's sockets
                log.warning("dropped a malformed message from kernel %s: %s", self.name, exc)
                continue
            if isinstance(message.get("parent_header"), dict) and isinstance(message.get("content"), dict):
                return message
            log.warning("dropped a message of the wrong shape from kernel %s", self.name)

    async def _receive_reply(self, channel: Any, parents: Container[str], deadline: float) -> dict[str, Any] | None:
        """The next message on ``channel`` whose parent is one of ``parents``, before ``deadline``,
        or None. A message already waiting is found even when ``deadline`` has passed."""
        while True:
            msg = await self._receive(channel, max(deadline - time.monotonic(), 0.0))
            if msg is None:
                return None
            if msg["parent_header"].get("msg_id") in parents:
                return msg


def workspace_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What the workspace looks like now: name, size and mtime of each file that loading runs."""
    signature = []
    for path in python_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        signature.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)
