"""Who runs user code, and the clean-up that keeps one session from reaching the next (ISO-1 to ISO-6).

A server running as root runs its kernels as two throwaway user ids of its own (numeric, no
passwd entry needed), claimed for its whole life with a lock file, so that no other executor on
the host uses them. The kernel being served and the standby kernel never share an id: user code
can neither signal the standby nor read its connection file. When a kernel retires, everything
of its id goes before the id serves again: every process (``kill(-1, SIGKILL)`` run as that id,
which reaches detached processes too, then a check from ``/proc``) and every file it owns in the
temporary folders. The environment a kernel starts with is the server's, less what the operator
did not name in ``SESSION_ENV``.

Standard library only: the first kernel is launched before the server imports anything heavy.
This module must never import FastAPI or jupyter_client.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import SWEEP_MAX_DEPTH, Timeouts
from .kernel_objects import remove_ipc_of, remove_mqueues_of

__all__ = [
    "TEMP_FOLDERS",
    "IsolationError",
    "KernelUser",
    "KernelUsers",
    "claim_kernel_users",
    "kernel_environment",
    "sweep",
]

log = logging.getLogger("reference_executor.isolation")

#: Where any user may write (in the image, the only world-writable folders but /submission):
#: swept of a retiring kernel user's files. The kernel's own folder, its HOME and working
#: directory, is removed whole.
TEMP_FOLDERS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock"))
#: Where the lock files that claim kernel user ids live (root's own; the first that can be made).
LOCK_FOLDERS = (Path("/run/reference-executor"), Path("/var/lock/reference-executor"))
#: Variables every kernel gets from the server's environment, whatever SESSION_ENV says (ISO-6).
BASE_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "VIRTUAL_ENV")
BASE_PREFIXES = ("LC_", "PYTHON")

#: Run as the retiring user: SIGKILL to every process that user has (all at once, so that a
#: process cannot fork its way out; ``kill(-1)`` spares the caller).
_KILL_ALL = (
    "import os, signal\n"
    "for _ in range(3):\n    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        break\n"
)


class IsolationError(RuntimeError):
    """Kernel users could not be claimed, or a retired user's processes could not all be killed."""


@dataclass(frozen=True)
class KernelUser:
    """An unprivileged user kernels run as when the server runs as root (SEC-1, SEC-2, ISO-1)."""

    name: str
    uid: int
    gid: int


@dataclass
class KernelUsers:
    """The two user ids this server's kernels alternate between, held until ``release``."""

    users: tuple[KernelUser, KernelUser]
    _lock: int | None = None
    _in_use: set[int] = field(default_factory=set)

    @property
    def first(self) -> KernelUser:
        return self.users[0]

    def take(self) -> KernelUser:
        """A user id no live kernel of this server has; IsolationError if both are taken."""
        for user in self.users:
            if user.uid not in self._in_use:
                self._in_use.add(user.uid)
                return user
        raise IsolationError("both kernel user ids are in use: a third kernel would share one")

    def give_back(self, user: KernelUser) -> None:
        """``user``'s kernel is gone and its processes and files are swept: it may serve again."""
        self._in_use.discard(user.uid)

    def release(self) -> None:
        """Let other executors claim these ids (the server is stopping)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _lock_folder() -> Path:
    for folder in LOCK_FOLDERS:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = folder.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
                return folder
    raise IsolationError(f"no folder for the kernel user locks: tried {', '.join(map(str, LOCK_FOLDERS))}")


def _can_run_interpreter(user: KernelUser) -> str | None:
    """Why ``user`` cannot start this Python with ipykernel, or None if it can.

    Checked without importing ipykernel (-S, one file opened): a full import adds a quarter second.
    """
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
    except OSError as exc:
        return str(exc)
    return probe.stderr.decode(errors="replace")[-300:] if probe.returncode != 0 else None


def claim_kernel_users(setting: str, uid_range: range, *, keep: Iterable[Path] = ()) -> KernelUsers | None:
    """Two throwaway user ids for this server's kernels, from ``uid_range``; None when kernels
    run as the server's own user (KERNEL_USER=none, or a server not running as root).

    A pair is claimed with an exclusive lock file, held while the server lives; ids with a passwd
    entry are never used. Whatever a crashed earlier holder left is swept first.
    """
    if setting == "none":
        return None
    if os.geteuid() != 0:
        log.warning("the server does not run as root: kernels run as its own user, and sessions are not isolated")
        return None
    folder = _lock_folder()
    for first in range(uid_range.start - uid_range.start % 2, uid_range.stop - 1, 2):
        if any(_has_passwd_entry(uid) for uid in (first, first + 1)):
            continue
        fd = os.open(folder / f"uids-{first}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue
            raise
        pair = (KernelUser(f"u{first}", first, first), KernelUser(f"u{first + 1}", first + 1, first + 1))
        users = KernelUsers(pair, fd)
        problem = _can_run_interpreter(users.first)
        if problem is not None:
            users.release()
            log.warning(
                "kernel user %d cannot run %s with ipykernel (is the interpreter under a private folder?): "
                "kernels run as root, and sessions are not isolated: %s",
                first,
                sys.executable,
                problem,
            )
            return None
        for user in users.users:
            sweep(user, keep=keep)
        log.info("kernels run as user ids %d and %d, alternately", first, first + 1)
        return users
    raise IsolationError(f"every user id pair in {uid_range.start}-{uid_range.stop - 1} is taken (KERNEL_UIDS)")


def _has_passwd_entry(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# -- the sweep ------------------------------------------------------------------------------------


def _task_states(pid: str) -> list[str]:
    """The state of each task (thread) of ``pid``: its main thread may have exited, as a zombie,
    while another still runs, so the process's own state says nothing of whether it lives."""
    states = []
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError), open(f"{task.path}/stat", encoding="utf-8") as file:
                states.append(file.read().rsplit(")", 1)[1].split()[0])
    return states


def _processes_of(uid: int) -> dict[int, bool]:
    """pid -> whether it still lives (a task that is not a zombie), for every process whose real,
    effective or saved user id is ``uid``, whatever its state."""
    found: dict[int, bool] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        ids: tuple[int, ...] = ()
        path = f"/proc/{entry.name}/status"
        with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("Uid:"):
                    ids = tuple(int(part) for part in line.split()[1:4])
                    break
        if uid in ids:
            found[int(entry.name)] = any(state not in "ZX" for state in _task_states(entry.name))
    return found


def _reap_orphans(zombies: Iterable[int]) -> None:
    """Reap dead processes left to this server (as PID 1 of a container, orphans come to it)."""
    me = str(os.getpid())
    for pid in zombies:
        with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat", encoding="utf-8") as file:
            if file.read().rsplit(")", 1)[1].split()[1] == me:
                os.waitpid(pid, os.WNOHANG)


def _kill_everything_of(user: KernelUser) -> int:
    """Kill every process of ``user``, whatever its state; how many lived. IsolationError if some
    outlive the deadline. Zombies of the user left to this server are reaped."""
    processes = _processes_of(user.uid)
    found = {pid for pid, living in processes.items() if living}
    if found:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [sys.executable, "-S", "-I", "-c", _KILL_ALL],
                user=user.uid,
                group=user.gid,
                extra_groups=[],
                cwd="/",
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=Timeouts.sweep_kill,
                check=False,
            )
        processes = _processes_of(user.uid)
    deadline = time.monotonic() + Timeouts.sweep_kill
    while True:  # whatever the helper could not reach (it could not start, say): killed from here
        _reap_orphans(pid for pid, living in processes.items() if not living)
        living = [pid for pid, alive in processes.items() if alive]
        if not living:
            return len(found)
        if time.monotonic() >= deadline:
            raise IsolationError(
                f"processes of user {user.uid} outlived {Timeouts.sweep_kill:.0f} s of SIGKILL: {living}"
            )
        for pid in living:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
        processes = _processes_of(user.uid)


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _remove_files_of(uid: int, folder: str, keep: tuple[str, ...], depth: int = 0) -> int:
    """Remove what ``uid`` owns under ``folder``, looking only where ``uid`` could have written.

    An entry of ``uid`` can only have been made in a folder that ``uid`` may write to (it owns
    none here but its own, which go whole): a world-writable one. Elsewhere only the subfolders
    are looked at, and only those ``uid`` could enter; a read-only tree (a virtualenv in /tmp,
    say) costs one look per folder, not per file.
    """
    try:
        writable = bool(os.stat(folder).st_mode & stat.S_IWOTH)
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        if _inside(entry.path, keep):
            continue
        try:
            is_folder = entry.is_dir(follow_symlinks=False)
            if not (writable or is_folder):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid == uid:
            if is_folder:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed += 1
        elif is_folder and info.st_mode & stat.S_IXOTH and depth < SWEEP_MAX_DEPTH:
            removed += _remove_files_of(uid, entry.path, keep, depth + 1)
    return removed


def sweep(user: KernelUser, *, keep: Iterable[Path] = (), folders: Iterable[Path] = TEMP_FOLDERS) -> None:
    """Kill every process of ``user``, then remove its IPC objects, and its files from ``folders``
    (but those in ``keep``)."""
    started = time.monotonic()
    killed = _kill_everything_of(user)
    objects = remove_ipc_of(user.uid) + remove_mqueues_of(user.uid, _lock_folder() / f"mqueue-{os.getpid()}")
    kept = tuple(str(path) for path in keep)
    removed = sum(_remove_files_of(user.uid, str(folder), kept) for folder in folders)
    if killed or objects or removed:
        log.info(
            "swept user %d: %d processes killed, %d IPC objects and %d files removed (%.0f ms)",
            user.uid,
            killed,
            objects,
            removed,
            (time.monotonic() - started) * 1000,
        )


def kernel_environment(server: Mapping[str, str], passed_on: Iterable[str]) -> dict[str, str]:
    """What a kernel's environment starts from: the server's, less what SESSION_ENV does not name."""
    names = set(passed_on)
    return {
        key: value
        for key, value in server.items()
        if key in names or key in BASE_VARIABLES or key.startswith(BASE_PREFIXES)
    }
