"""Who the worker runs as, and the clean-up between two workers (contract 1.1, ISO-1 to ISO-6).

A server running as root claims one throwaway user id (a lock file held for its life, so that no
other executor on the host takes it) and runs every worker as that id, in a fresh HOME. Before a
new worker starts, everything of the old one goes: every process of the id (``kill(-1)`` run as
the id reaches detached processes too) and every file it owns in the temporary folders. Not run
as root, the worker runs as the server's own user, and none of this is possible: the kit then
reports ISO-1 to ISO-5 as failed, rightly.

Standard library only, and no code shared with the reference executor.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import itertools
import os
import resource
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The ids a worker may run as (none of them with a passwd entry is used), claimed from a random
#: one on: containers of one image cannot see each other's claims, yet a user id's process count
#: (RLIMIT_NPROC) is the host's; a wide range keeps two of them apart.
WORKER_UIDS = range(2_000_000, 3_000_000)
LOCK_FOLDER = Path("/run/subprocess-executor")
TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
#: SysV IPC (ISO-8): each table of /proc/sysvipc and the columns of the owner's and creator's uid.
SYSV_TABLES = {"shm": (7, 9), "msg": (7, 9), "sem": (4, 6)}
_libc = ctypes.CDLL(None, use_errno=True)
#: What every worker gets of the server's environment, besides what SESSION_ENV names (ISO-6).
BASE_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM")
BASE_PREFIXES = ("LC_", "PYTHON")
KILL_DEADLINE = 5.0
#: How deep the sweep looks into others' read-only folders for a world-writable one (the reference's
#: SWEEP_READ_ONLY_DEPTH): 3 levels below /tmp finds a checkout's shared folders, not its insides.
READ_ONLY_LEVELS = 3
#: Processes and threads the user id may have (RLIMIT_NPROC): a fork bomb stops there, well before
#: a container's pids limit, where the server could no longer start a thread to answer (ISO-10).
MAX_PROCESSES = 512
#: prctl(2): orphaned descendants go to the nearest ancestor that set this, not to the host's init.
PR_SET_CHILD_SUBREAPER = 36
#: How long removing a session's folders (rm, as its user id) may take.
REMOVE_DEADLINE = 60.0
#: Run as the user id: SIGKILL to all its processes at once (so that none can fork its way out).
_KILL_ALL = (
    "import os, signal\n"
    "for _ in range(3):\n    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        break\n"
)


def worker_environment(server: Mapping[str, str], passed_on: Iterable[str]) -> dict[str, str]:
    """The server's environment less what the operator did not name in SESSION_ENV."""
    names = set(passed_on)
    return {k: v for k, v in server.items() if k in names or k in BASE_VARIABLES or k.startswith(BASE_PREFIXES)}


class Sandbox:
    """One throwaway user id for the workers of this server (None from ``claim`` when not root)."""

    def __init__(self, uid: int, lock: int, keep: tuple[str, ...]) -> None:
        self.uid = uid
        self._lock = lock
        self._keep = keep
        self.home: str | None = None
        #: Where the user id's files are looked for: the temporary folders and any other folder
        #: every user may write to (an image's /submission, say), found once.
        self.folders = sorted({*TEMP_FOLDERS, *world_writable_folders()})

    @classmethod
    def claim(cls, keep: Iterable[str] = ()) -> Sandbox | None:
        if os.geteuid() != 0:
            print("not root: the worker runs as the server's user; sessions are not isolated", file=sys.stderr)
            return None
        import pwd

        LOCK_FOLDER.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = secrets.randbelow(len(WORKER_UIDS))
        for uid in itertools.chain(WORKER_UIDS[start:], WORKER_UIDS[:start]):
            with contextlib.suppress(KeyError):
                pwd.getpwuid(uid)
                continue
            fd = os.open(LOCK_FOLDER / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            sandbox = cls(uid, fd, tuple(keep))
            # The workers' orphans come to this server, whose sweep reaps them (ISO-11).
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            sandbox.clean()  # whatever a crashed earlier holder left
            return sandbox
        raise RuntimeError(f"every worker user id in {WORKER_UIDS.start}-{WORKER_UIDS.stop - 1} is taken")

    def spawn_options(self) -> dict[str, Any]:
        """Popen options for a new worker: this user id, a fresh HOME as its working directory."""
        self.home = tempfile.mkdtemp(prefix="worker-home-")
        os.chown(self.home, self.uid, self.uid)
        cap = functools.partial(resource.setrlimit, resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
        return {"user": self.uid, "group": self.uid, "extra_groups": [], "cwd": self.home, "preexec_fn": cap}

    def clean(self) -> None:
        """Kill every process of the user id, then remove its files; the worker must be gone already."""
        self.kill_all()
        self._remove_ipc()
        trees = [self.home] if self.home is not None else []
        self.home = None
        for folder in self.folders:
            self._remove_files(folder, trees)
        self._remove_trees(trees)

    def _remove_trees(self, trees: list[str]) -> None:
        """Remove whole folders of the user id, however deep (a recursive walk dies of the recursion
        limit): coreutils' rm, run as the user id, which can then reach nothing that is not its own."""
        if not trees:
            return
        as_user = {"user": self.uid, "group": self.uid, "extra_groups": []} if os.geteuid() != self.uid else {}
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["rm", "-rf", "--one-file-system", "--", *trees], cwd="/", env={}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=REMOVE_DEADLINE, check=False, **as_user,
            )  # fmt: skip

    def _remove_ipc(self) -> None:
        """SysV shared memory, message queues and semaphores of the user id (owner or creator):
        removed by util-linux's ipcrm run as the user id, since root without CAP_SYS_ADMIN (in a
        container) may not remove another user's."""
        flags = {"shm": "-m", "msg": "-q", "sem": "-s"}
        arguments = []
        for kind, columns in SYSV_TABLES.items():
            with contextlib.suppress(OSError), open(f"/proc/sysvipc/{kind}", encoding="ascii") as file:
                rows = [line.split() for line in file.readlines()[1:]]
            for row in rows:
                if len(row) > max(columns) and self.uid in (int(row[c]) for c in columns):
                    arguments += [flags[kind], row[1]]
        if arguments:
            as_user = {"user": self.uid, "group": self.uid, "extra_groups": []} if os.geteuid() != self.uid else {}
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["ipcrm", *arguments], cwd="/", env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, timeout=KILL_DEADLINE, check=False, **as_user,
                )  # fmt: skip
        self._remove_mqueues()

    def _remove_mqueues(self) -> None:
        """POSIX message queues of the user id: files of the mqueue file system, mounted for the
        moment where it is mounted nowhere (a host), so that no mount outlives a killed server."""
        with open("/proc/self/mounts", encoding="utf-8") as file:
            mounts = [fields[1] for fields in (line.split() for line in file) if fields[2:3] == ["mqueue"]]
        folder = mounts[0] if mounts else str(LOCK_FOLDER / f"mqueue-{os.getpid()}")
        try:
            if not mounts:
                os.makedirs(folder, mode=0o700, exist_ok=True)
                if _libc.mount(b"mqueue", folder.encode(), b"mqueue", 0, None) != 0:
                    return
        except OSError:  # not root: no mount, and no queue of another user to remove anyway
            return
        try:
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid == self.uid:
                        os.unlink(entry.path)
        finally:
            if not mounts:
                _libc.umount2(folder.encode(), 2)  # MNT_DETACH
                os.rmdir(folder)

    def kill_all(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [sys.executable, "-S", "-I", "-c", _KILL_ALL], user=self.uid, group=self.uid, extra_groups=[],
                cwd="/", env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=KILL_DEADLINE, check=False,
            )  # fmt: skip
        deadline = time.monotonic() + KILL_DEADLINE
        while (left := self._living()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def _living(self) -> list[int]:
        """Processes of the user id that are not yet dead (zombies of ours are reaped on the way)."""
        living = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{name}/status", encoding="utf-8") as file:
                fields = dict(line.split(":", 1) for line in file if ":" in line)
                if self.uid not in [int(x) for x in fields.get("Uid", "").split()[:3]]:
                    continue
                if fields.get("State", "").split()[:1] == ["Z"]:
                    if fields.get("PPid", "").strip() == str(os.getpid()):
                        os.waitpid(int(name), os.WNOHANG)
                    continue
                living.append(int(name))
        return living

    def _remove_files(self, folder: str, trees: list[str], depth: int = 0, read_only: int = 0) -> None:
        """Remove the user id's files under ``folder``; its folders go into ``trees``, for later.

        Folders any user may write to are looked into to the bottom; others' read-only folders
        (``read_only`` deep since the last writable one) only READ_ONLY_LEVELS deep, for a
        world-writable one below: a checkout in /tmp, with its virtualenvs, would otherwise be
        walked whole at every restart."""
        with contextlib.suppress(OSError):
            for entry in list(os.scandir(folder)):
                if any(entry.path == k or entry.path.startswith(k.rstrip("/") + "/") for k in self._keep):
                    continue
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_uid == self.uid:
                        if stat.S_ISDIR(info.st_mode):
                            trees.append(entry.path)
                        else:
                            os.unlink(entry.path)
                    elif stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IXOTH and depth < 32:
                        writable = info.st_mode & stat.S_IWOTH
                        if writable or read_only < READ_ONLY_LEVELS:
                            self._remove_files(entry.path, trees, depth + 1, 0 if writable else read_only + 1)


def world_writable_folders(top: str = "/", levels: int = 3) -> list[str]:
    """Folders any user may write to, ``levels`` below ``top`` at most (not under /proc or /sys)."""
    found, pending = [], [(top, 0)]
    while pending:
        folder, depth = pending.pop()
        with contextlib.suppress(OSError):
            for entry in list(os.scandir(folder)):
                with contextlib.suppress(OSError):
                    if entry.path in ("/proc", "/sys") or not entry.is_dir(follow_symlinks=False):
                        continue
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if mode & stat.S_IWOTH:
                        found.append(entry.path)
                    elif mode & stat.S_IXOTH and depth + 1 < levels:
                        pending.append((entry.path, depth + 1))
    return found
