"""The process target: a local command (by default the bundled reference executor) on 127.0.0.1
and a free port, under an address-space cap. The kit never imports the reference executor; it
starts it as a process."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from ..settings import CONTRACT_DEFAULTS, KIT_SETTINGS, ExecutorSettings
from ..timeouts import KitTimeouts
from .base import Beside, ResourceUsage, TargetState
from .procfs import kill_until_gone, listening_ports, process_tree, process_tree_usage
from .readiness import ports_to_try, reach_started
from .workspace import Workspace, prepare_workspace, unreachable_by_other_users

__all__ = ["CAPPED_ALLOCATOR", "REFERENCE_COMMAND", "ProcessTarget"]

#: The bundled reference executor, started as a process: the command when none is given.
REFERENCE_COMMAND = (sys.executable, "-m", "reference_executor")


def _local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Under an address-space cap (RLIMIT_AS), glibc's malloc would reserve 64 MB of address space
#: per thread's arena, up to 8 per core: a threaded server exhausts a 512 MB cap with a few dozen
#: idle connections while using 25 MB of memory. Two arenas make the cap stop memory bombs, as
#: meant, rather than threads.
CAPPED_ALLOCATOR = {"MALLOC_ARENA_MAX": "2"}


def _memory_limit(bytes_: int) -> None:
    """In the child: cap every process of the executor's tree at ``bytes_`` of address space."""
    resource.setrlimit(resource.RLIMIT_AS, (bytes_, bytes_))


@dataclass
class ProcessTarget(TargetState):
    """A local executor process on 127.0.0.1 and a free port.

    With no ``command`` it is the bundled reference executor (``python -m reference_executor``).
    The command gets the kit's settings (``settings``, PORT a free port) and HOST in its
    environment; ``{port}`` in the command is replaced too.
    """

    kind: ClassVar[str] = "process"
    on_kit_host: ClassVar[bool] = True
    timeouts: KitTimeouts
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: What it finds as its workspace ("elsewhere": the sample workspace in a folder of its own).
    workspace: Workspace = Workspace.KIT
    #: The sample workspace's files (the language pack's; None: the default pack's).
    workspace_source: Path | None = None
    #: Address-space cap per process (RLIMIT_AS), so a memory bomb cannot eat the host.
    memory_limit_bytes: int | None = 2 * 1024**3
    #: The values the executor is started with (PORT and WORKSPACE_FOLDER are chosen at start).
    settings: ExecutorSettings = KIT_SETTINGS
    _process: subprocess.Popen[bytes] | None = None
    #: The run's folder (the workspace, the log), removed by stop().
    _dir: Path | None = None
    _log_path: Path | None = None
    #: The log's last lines, kept when the folder is removed.
    _kept_log: str = ""
    #: The command as it was started ({port} filled in).
    _launched: list[str] | None = None

    def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="conformance-"))
        self._dir.chmod(0o755)
        port = _free_port()
        folder = "elsewhere" if self.workspace is Workspace.ELSEWHERE else "workspace"
        workspace = prepare_workspace(self.workspace, self._dir / folder, self.workspace_source)
        settings = replace(self.settings, port=port, workspace_folder=str(workspace))
        command = self.command or list(REFERENCE_COMMAND)
        command = [part.replace("{port}", str(port)) for part in command]
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            **settings.environment(),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(CAPPED_ALLOCATOR if self.memory_limit_bytes else {}),
            **self.env,
        }
        self._log_path = self._dir / "executor.log"
        log_file = self._log_path.open("wb")
        limit = self.memory_limit_bytes
        self.launched_at = time.time()
        self._process = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so that stop() can end the whole process group
            preexec_fn=(lambda: _memory_limit(limit)) if limit else None,
        )
        log_file.close()
        self.capabilities.started_by_kit(
            workspace_mounted=self.workspace.has_code,
            memory_limited=limit is not None,
            settings=settings,
            signal_scope=self._process.pid,
        )
        self._launched = command
        try:
            reach_started(self, self.timeouts, lambda: self._ports(port), _local_url, self._exited)
        except BaseException:
            self.stop()
            raise

    def problems(self) -> list[str]:
        """Run as root, an executor may run user code as another user (the reference does), who must
        reach its interpreter and program: one in a private folder (under /root, say) fails its
        tests for this machine's reason, not its own."""
        if os.geteuid() != 0:
            return []
        command = self.command or list(REFERENCE_COMMAND)
        program = shutil.which(command[0])
        paths = [Path(program)] if program else []
        paths += [Path(part).absolute() for part in command[1:] if "/" in part and Path(part).exists()]
        private = unreachable_by_other_users(paths)
        if not private:
            return []
        return [
            f"the kit runs as root, and an executor that runs user code as another user (as the reference does) "
            f"needs other users to reach {', '.join(private)}: a folder above is private to its owner. "
            "Its tests would fail for this machine's reason. Let other users through (chmod o+x on each folder "
            "above, o+rX below), or work from a folder they can reach (not under /root)."
        ]

    def _ports(self, port: int) -> list[int]:
        """PORT, then the contract's default if this executor (and nothing else) listens there."""
        mine = listening_ports(self._process.pid) if self._process is not None else set()
        return ports_to_try(port, the_default_too=CONTRACT_DEFAULTS.port in mine)

    def _exited(self) -> str | None:
        code = self._process.poll() if self._process else None
        return None if code is None else f"exited with code {code}"

    def stop(self) -> None:
        """Stop the executor and every process it started, wherever it put them: its process group,
        then any descendant that outlived it (a kernel in a session of its own, stopped, say)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            tree = process_tree(process.pid)
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            left = kill_until_gone({pid: fields[19] for pid, fields in tree.items()})
            if left:  # checked, and said: the kit leaves nothing behind unsaid
                print(f"executor-conformance: processes of the executor outlived it: {left}", file=sys.stderr)
        if self._dir is not None:
            self._kept_log = self.logs(200)
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def resource_usage(self) -> ResourceUsage | None:
        return process_tree_usage(self._process.pid) if self._process is not None else None

    def logs(self, lines: int = 60) -> str:
        if self._dir is None or self._log_path is None:
            return self._kept_log
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "command": self._launched or self.command,
            "base_url": self.base_url,
            **asdict(self.capabilities),
        }

    def run_beside(
        self, script: Path, args: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> Beside | None:
        return None  # it runs on the kit's host: the caller runs the script there
