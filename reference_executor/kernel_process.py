"""A kernel's folder and launch, which need nothing of ``jupyter_client``.

Each kernel gets a folder of its own (its kernel spec, a copy of ``kernel_launcher.py``, its
HOME, its connection file and IPC sockets), owned by the kernel's user and closed to every other
(ISO-1: user code cannot read another kernel's connection file), and runs as that user. ``KernelSession``
prepares it here and has ``jupyter_client`` launch it. The first kernel of a server is launched
from here instead (``prestart``), before the server imports ``jupyter_client``: that import takes
0.2-0.3 s, which the kernel's own start then overlaps (issue #5: start to ready). The kernel
session adopts that process as if ``jupyter_client`` had launched it.

Standard library only: importing this module must stay cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .isolation import KernelUser

__all__ = [
    "KERNEL_LOG",
    "KERNEL_NAME",
    "KERNEL_PROVISIONER",
    "KernelFolder",
    "KernelStartError",
    "Prestarted",
    "make_runtime_dir",
    "prepare",
    "prestart",
]

log = logging.getLogger("reference_executor.kernel")

KERNEL_NAME = "reference-python"
#: The jupyter_client provisioner of the kernel spec: the local one, able to adopt a prestarted kernel.
KERNEL_PROVISIONER = "reference-executor-local"
#: The kernel's standard output and error, in its own folder (never the server's log: ISO-9).
KERNEL_LOG = "kernel.log"

#: What the kernel process runs (see that module): copied into each kernel's folder, never imported here.
_LAUNCHER_SOURCE = Path(__file__).with_name("kernel_launcher.py").read_text(encoding="utf-8")

#: Options that make the kernel answer faster without changing what user code sees.
KERNEL_OPTIONS = (
    "--HistoryManager.enabled=False",  # no sqlite write per execution
    "--IPKernelApp.quiet=True",
    "--InteractiveShell.colors=nocolor",
    # A 0.5 ms sleep before each reply, for clients that read the reply before the outputs;
    # this one reads outputs until the kernel says idle, which comes after them all.
    "--IPythonKernel._execute_sleep=0",
)

#: The channels of a kernel, in the order ``jupyter_client`` numbers their IPC sockets.
_CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


class KernelStartError(RuntimeError):
    """The kernel process could not be started or did not answer in time."""


@dataclass(frozen=True)
class KernelFolder:
    """A kernel's own folder, and what its process is launched with."""

    path: Path
    user: KernelUser | None
    #: The kernel spec's command, ``{connection_file}`` still to be filled in.
    spec_argv: tuple[str, ...]
    #: Keyword arguments for the launch (``env``, ``cwd``, and the user to run as).
    launch: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kernels(self) -> Path:
        """The folder of kernel specs that holds this kernel's own."""
        return self.path / "kernels"

    @property
    def connection_file(self) -> Path:
        return self.path / "connection.json"

    @property
    def ipc(self) -> Path:
        """The prefix of the kernel's IPC socket paths."""
        return self.path / "ipc"

    def argv(self) -> list[str]:
        """The command of the kernel spec, with its connection file filled in."""
        return [arg.replace("{connection_file}", str(self.connection_file)) for arg in self.spec_argv]


def make_runtime_dir(configured: Path | None) -> Path:
    """The folder the kernels' folders go in: ``configured``, or a new temporary one."""
    path = Path(tempfile.mkdtemp(prefix="executor-")) if configured is None else configured
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o711)  # kernels of another user must reach their own folder inside
    return path


def prepare(
    runtime_dir: Path,
    *,
    user: KernelUser | None,
    max_output_bytes: int,
    max_processes: int = 0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> KernelFolder:
    """Make a kernel's folder under ``runtime_dir``: its spec, its launcher and its HOME.

    ``max_processes``: the RLIMIT_NPROC of a kernel run as ``user`` (0: none; never for the
    server's own user, whose every process it would count)."""
    path = Path(tempfile.mkdtemp(prefix="kernel-", dir=runtime_dir))
    spec_dir = path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    # One character more than the cap still comes through, so the collector sees, cuts and
    # marks the overflow (OUTPUT-2).
    limit = str(max_output_bytes + 1)
    launcher = path / "kernel_launcher.py"
    launcher.write_text(_LAUNCHER_SOURCE, encoding="utf-8")
    processes = str(max_processes if user is not None else 0)
    log = str(path / KERNEL_LOG)
    argv = [sys.executable, str(launcher), limit, processes, log, "-f", "{connection_file}", *KERNEL_OPTIONS]
    spec = {
        "argv": argv,
        "display_name": "Python (reference executor)",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": KERNEL_PROVISIONER}},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    home = path / "home"
    home.mkdir()
    if user is not None:
        for folder in (path, home):
            os.chown(folder, user.uid, user.gid)
    path.chmod(0o700)
    kernel_env = dict(os.environ if env is None else env)
    kernel_env.update(
        {
            "HOME": str(home),
            "IPYTHONDIR": str(home / ".ipython"),
            "JUPYTER_RUNTIME_DIR": str(home / ".runtime"),
            "MPLCONFIGDIR": str(home / ".matplotlib"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    launch: dict[str, Any] = {"env": kernel_env, "cwd": str(cwd or home)}
    if user is not None:
        kernel_env["USER"] = kernel_env["LOGNAME"] = user.name
        launch.update(user=user.uid, group=user.gid, extra_groups=[])
    return KernelFolder(path, user, tuple(argv), launch)


@dataclass(frozen=True)
class Prestarted:
    """A kernel launched by ``prestart``, for a kernel session to adopt."""

    folder: KernelFolder
    process: subprocess.Popen[bytes]
    #: What the connection file says (read from here: the kernel rewrites the file as it starts).
    connection_info: dict[str, Any]

    def discard(self) -> None:
        """Kill the kernel (if it still runs) and remove its folder: it is not to be adopted."""
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder.path, ignore_errors=True)


def prestart(folder: KernelFolder) -> Prestarted:
    """Launch the kernel of ``folder`` now, as ``jupyter_client`` would, for a session to adopt.

    The connection file is the one ``jupyter_client`` writes for an IPC kernel in a new folder
    (sockets numbered 1 to 5, a random key, HMAC-SHA256); the process is launched as its
    ``launch_kernel`` does on POSIX: stdin closed, a session of its own (so that an interrupt
    reaches the whole group), and the server's PID for ipykernel's parent poller.
    """
    info: dict[str, Any] = {f"{channel}_port": number for number, channel in enumerate(_CHANNELS, start=1)}
    info.update(
        ip=str(folder.ipc),
        key=str(uuid.uuid4()),
        transport="ipc",
        signature_scheme="hmac-sha256",
        kernel_name=KERNEL_NAME,
    )
    descriptor = os.open(folder.connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(info, file, indent=1)
    if folder.user is not None:
        os.chown(folder.connection_file, folder.user.uid, folder.user.gid)
    env = dict(folder.launch["env"], JPY_PARENT_PID=str(os.getpid()))
    env.pop("PYTHONEXECUTABLE", None)  # as jupyter_client does for Python kernels
    launch = {**folder.launch, "env": env}
    process = subprocess.Popen(folder.argv(), stdin=subprocess.PIPE, start_new_session=True, **launch)
    assert process.stdin is not None
    process.stdin.close()
    return Prestarted(folder, process, info)
