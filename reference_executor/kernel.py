"""The kernel session: one IPython kernel process and the client that talks to it.

Wraps ``jupyter_client``'s async API: start a kernel (optionally as an unprivileged user),
load the mounted workspace into it, run code against a deadline, interrupt, and tell whether
the process still lives. It knows nothing of HTTP, locking or restart policy; the execution
service above it decides what to do when a run times out or the kernel dies.
This module must never import FastAPI, Starlette or anything of ``reference_executor.app``.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from . import workspace_loader
from .config import Timeouts
from .outputs import OutputCollector
from .workspace_loader import python_files

__all__ = ["KernelSession", "KernelStartError", "KernelUser", "RunOutcome", "RunResult", "resolve_kernel_user"]

log = logging.getLogger("reference_executor.kernel")

KERNEL_NAME = "reference-python"

#: What the kernel process runs (see that module): copied into each kernel's folder, never imported here.
_LAUNCHER_SOURCE = Path(__file__).with_name("kernel_launcher.py").read_text(encoding="utf-8")
#: While a kernel starts: how long to wait for a kernel_info reply before asking again, and for
#: an IOPub status once the reply came (jupyter_client waits 1 s and 0.2 s). The status is
#: missed when the IOPub subscription has not (re)connected yet: zmq retries every 0.1 s, so
#: asking again soon beats waiting long.
_KERNEL_INFO_RETRY = 1.0
_IOPUB_CHECK = 0.05
_LOADER_SOURCE = Path(workspace_loader.__file__).read_text(encoding="utf-8")

#: Options that make the kernel answer faster without changing what user code sees.
KERNEL_OPTIONS = (
    "--HistoryManager.enabled=False",  # no sqlite write per execution
    "--IPKernelApp.quiet=True",
    "--InteractiveShell.colors=nocolor",
    # A 0.5 ms sleep before each reply, for clients that read the reply before the outputs;
    # this one reads outputs until the kernel says idle, which comes after them all.
    "--IPythonKernel._execute_sleep=0",
)


class KernelStartError(RuntimeError):
    """The kernel process could not be started or did not answer in time."""


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


@dataclass(frozen=True)
class KernelUser:
    """The unprivileged user kernels run as when the server runs as root (SEC-1, SEC-2)."""

    name: str
    uid: int
    gid: int


#: KERNEL_USER values that mean "run kernels as the server's own user".
NO_KERNEL_USER = {"", "-", "none", "root"}


def resolve_kernel_user(name: str) -> KernelUser | None:
    """The user to run kernels as, from KERNEL_USER ("auto": nobody, where that works).

    Only a server running as root can switch users. An explicit user that cannot run this
    Python raises; "auto" falls back to the server's user with a warning.
    """
    if name.strip().lower() in NO_KERNEL_USER:
        return None
    explicit = name != "auto"
    if os.geteuid() != 0:
        if explicit:
            log.warning("KERNEL_USER=%s ignored: the server does not run as root", name)
        return None
    try:
        entry = pwd.getpwnam("nobody" if name == "auto" else name)
    except KeyError:
        if explicit:
            raise KernelStartError(f"KERNEL_USER={name!r} is not a user on this system") from None
        log.warning("no user 'nobody': kernels run as root")
        return None
    user = KernelUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    # Can the user start this interpreter and read ipykernel? Checked without importing it (-S,
    # one file opened): a full `import ipykernel` would add a quarter second to every start.
    spec = importlib.util.find_spec("ipykernel")
    package = spec.origin if spec and spec.origin else ""
    try:
        probe = subprocess.run(
            [sys.executable, "-S", "-c", "import sys; open(sys.argv[1], 'rb').close()", package],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
        )
        failure = probe.stderr.decode(errors="replace")[-300:] if probe.returncode != 0 else None
    except OSError as exc:
        failure = str(exc)
    if failure is not None:
        problem = f"user {user.name!r} cannot run {sys.executable} with ipykernel"
        if explicit:
            raise KernelStartError(f"KERNEL_USER={name!r}: {problem}: {failure}")
        log.warning("%s (is the interpreter under a private folder?): kernels run as root", problem)
        return None
    log.info("kernels run as user %s (uid %d)", user.name, user.uid)
    return user


class _Manager(AsyncKernelManager):
    """A kernel manager whose connection file is readable by the kernel's own user."""

    kernel_owner: tuple[int, int] | None = None

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.kernel_owner is not None:
            os.chown(self.connection_file, *self.kernel_owner)


class KernelSession:
    """One kernel, from start to shutdown. Not safe for concurrent ``run`` calls."""

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        max_output_bytes: int,
        runtime_dir: Path,
        user: KernelUser | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._timeouts = timeouts
        self._max_output_bytes = max_output_bytes
        self._user = user
        self._dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=runtime_dir))
        self._cwd = cwd
        self._env = env
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
        return self._dir.name

    @property
    def pid(self) -> int | None:
        provisioner = self._km.provisioner if self._km else None
        return getattr(provisioner, "pid", None)

    async def start(self) -> None:
        """Start the kernel process and wait until it answers, within ``kernel_start``."""
        spec_dir = self._dir / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        # One character more than the cap still comes through, so the collector sees, cuts and
        # marks the overflow (OUTPUT-2).
        limit = str(self._max_output_bytes + 1)
        launcher = self._dir / "kernel_launcher.py"
        launcher.write_text(_LAUNCHER_SOURCE, encoding="utf-8")
        argv = [sys.executable, str(launcher), limit, "-f", "{connection_file}", *KERNEL_OPTIONS]
        spec = {"argv": argv, "display_name": "Python (reference executor)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        home = self._dir / "home"
        home.mkdir()
        if self._user is not None:
            for path in (self._dir, home):
                os.chown(path, self._user.uid, self._user.gid)
        self._dir.chmod(0o711)

        km = _Manager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self._dir / "kernels")]),
            transport="ipc",
            ip=str(self._dir / "ipc"),
            connection_file=str(self._dir / "connection.json"),
        )
        if self._user is not None:
            km.kernel_owner = (self._user.uid, self._user.gid)
        self._km = km
        env = dict(os.environ if self._env is None else self._env)
        env.update(
            {
                "HOME": str(home),
                "IPYTHONDIR": str(home / ".ipython"),
                "JUPYTER_RUNTIME_DIR": str(home / ".runtime"),
                "MPLCONFIGDIR": str(home / ".matplotlib"),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        if self._user is not None:
            env["USER"] = env["LOGNAME"] = self._user.name
        launch: dict[str, Any] = {"env": env, "cwd": str(self._cwd or home)}
        if self._user is not None:
            launch.update(user=self._user.uid, group=self._user.gid, extra_groups=[])
        try:
            await km.start_kernel(**launch)
        except Exception as exc:
            raise KernelStartError(f"could not start the kernel: {exc}") from exc
        self._raise_oom_score()
        kc = km.client()
        kc.start_channels()
        self._kc = kc
        try:
            await self._wait_for_ready(kc, time.monotonic() + self._timeouts.kernel_start)
        except KernelStartError:
            await self.shutdown()
            raise
        log.info("kernel %s started (pid %s)", self.name, self.pid)

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
            ask_again = min(deadline, time.monotonic() + _KERNEL_INFO_RETRY)
            answered = await self._receive_reply(kc.shell_channel, {msg_id}, ask_again)
            # The status of any request asked so far will do: under a CPU quota it can come late.
            if answered and await self._receive_reply(kc.iopub_channel, asked, time.monotonic() + _IOPUB_CHECK):
                return
            if not await self.is_alive():
                raise KernelStartError(f"the kernel died before it answered (exit code {await self.exit_code()})")
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
        km, self._km = self._km, None
        if km is not None:
            try:
                await km.shutdown_kernel(now=True)
            except Exception as exc:  # a kernel that is already gone is fine
                log.debug("kernel shutdown: %s", exc)
        if not self._in_run:
            self._close_channels()
        shutil.rmtree(self._dir, ignore_errors=True)

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
        reply_msg = await self._receive_reply(kc.shell_channel, {msg_id}, time.monotonic() + bound)
        if reply_msg is None:
            log.warning("no execute_reply for %s within %.1f s", msg_id, bound)
        reply = None if reply_msg is None else reply_msg["content"]
        if reply is not None and execution_count is None:
            execution_count = reply.get("execution_count")
        if interrupted_at is not None:
            outcome = RunOutcome.TIMEOUT
        elif any(item["type"] == "error" for item in collector.items()) or (reply or {}).get("status") == "error":
            outcome = RunOutcome.ERROR
        else:
            outcome = RunOutcome.OK
        return RunResult(outcome, collector.items(), None if silent else execution_count, collector.truncated)

    async def _receive(self, channel: Any, timeout: float) -> dict[str, Any] | None:
        """The next message on ``channel`` within ``timeout`` seconds, or None if none came.

        A message already waiting is read at once, without the event loop; only an empty socket
        is polled. (jupyter_client's async ``get_msg`` polls, then receives: two trips through
        the event loop for each of the five messages of an execution, issue #5.)
        """
        reader = self._readers.get(id(channel))
        if reader is None:
            reader = self._readers[id(channel)] = zmq.Socket.shadow(channel.socket.underlying)
        try:
            frames = reader.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            if not await channel.socket.poll(timeout * 1000, zmq.POLLIN):
                return None
            try:
                frames = reader.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
        _, frames = channel.session.feed_identities(frames)
        return channel.session.deserialize(frames)

    async def _receive_reply(self, channel: Any, parents: Container[str], deadline: float) -> dict[str, Any] | None:
        """The next message on ``channel`` whose parent is one of ``parents``, before ``deadline``, or None."""
        while (remaining := deadline - time.monotonic()) > 0:
            msg = await self._receive(channel, remaining)
            if msg is None:
                return None
            if msg["parent_header"].get("msg_id") in parents:
                return msg
        return None


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
