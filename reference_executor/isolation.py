"""Who runs user code, and the clean-up that keeps one session from reaching the next (ISO-1 to ISO-6).

A server running as root runs its kernels as throwaway user ids of its own (numeric, no passwd
entry needed), claimed a pair at a time for its whole life with a lock file, and only where no
process on the host already runs as them, so that no other executor uses them. The kernel being
served and the standby kernel never share an id: user code can neither signal the standby nor
read its connection file. When a kernel retires, everything its id owns goes before the id
serves again, found by ownership, never by a list of places or states: every process whose real,
effective or saved id it is, whatever its state (frozen with SIGSTOP, then killed, so that none
can fork its way out), its SysV IPC objects and POSIX message queues (``kernel_objects``), and
its files (``file_sweep``), within deadlines. An id whose sweep did not finish is held back and
swept again in the background; meanwhile the server claims another pair. The environment a
kernel starts with is the server's, less what the operator did not name in ``SESSION_ENV``.

Standard library only: the first kernel is launched before the server imports anything heavy.
This module must never import FastAPI or jupyter_client.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import importlib.util
import itertools
import logging
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import SWEEP_MAX_DEPTH, SWEEP_READ_ONLY_DEPTH, Timeouts
from .file_sweep import SweepError, remove_owned, remove_tree, world_writable_folders
from .kernel_objects import ipc_left_of, remove_ipc_of, remove_mqueues_of

__all__ = [
    "TEMP_FOLDERS",
    "IsolationError",
    "KernelUser",
    "KernelUsers",
    "claim_kernel_users",
    "kernel_environment",
    "shared_with_another_executor",
    "sweep",
]

log = logging.getLogger("reference_executor.isolation")

#: Where any user may write on any Linux: swept of a retiring kernel user's files, with every
#: other world-writable folder found at start (``file_sweep.world_writable_folders``: the image's
#: /submission, say, unless SUBMISSION_DIR declares it). The kernel's own folder, its HOME and
#: working directory, is removed whole.
TEMP_FOLDERS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock"))
#: Where the lock files that claim kernel user ids live (root's own; the first that can be made).
LOCK_FOLDERS = (Path("/run/reference-executor"), Path("/var/lock/reference-executor"))
#: Variables every kernel gets from the server's environment, whatever SESSION_ENV says (ISO-6).
BASE_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "VIRTUAL_ENV")
BASE_PREFIXES = ("LC_", "PYTHON")
#: How many looks a retired user's process gets to stop before it is killed running.
STOP_ROUNDS = 20


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
    """The user ids this server's kernels run as, held until ``release``: a pair claimed at start,
    used alternately, and another pair claimed whenever none is free (an id held back until its
    sweep finishes, say)."""

    users: list[KernelUser]
    uid_range: range
    keep: tuple[Path, ...] = ()
    #: Where a retired user's files are looked for: every world-writable folder, found at start.
    folders: tuple[Path, ...] = ()
    _locks: list[int] = field(default_factory=list)
    _in_use: set[int] = field(default_factory=set)
    #: Ids found in use by another executor (a container that claimed them unseen): never used again.
    _foreign: set[int] = field(default_factory=set)

    @property
    def first(self) -> KernelUser:
        return self.users[0]

    def take(self) -> KernelUser:
        """A user id no live kernel of this server has (claiming another pair if need be);
        IsolationError when the range has no free pair left."""
        free = [user for user in self.users if user.uid not in self._in_use and user.uid not in self._foreign]
        for user in list(free):
            if shared_with_another_executor(user):
                log.warning("user id %d is in use by another executor on this host: it is not used again", user.uid)
                self._foreign.add(user.uid)
                free.remove(user)
        if not free:
            pair, lock = _claim_pair(self.uid_range)
            try:
                for user in pair:
                    sweep(user, keep=self.keep, folders=self.folders)  # whatever a crashed earlier holder left
            except BaseException:
                os.close(lock)
                raise
            self._locks.append(lock)
            self.users.extend(pair)
            log.info("kernels may also run as user ids %d and %d", pair[0].uid, pair[1].uid)
            free = list(pair)
        self._in_use.add(free[0].uid)
        return free[0]

    def give_back(self, user: KernelUser) -> None:
        """``user``'s kernel is gone and everything it owned is swept: it may serve again."""
        self._in_use.discard(user.uid)

    def release(self) -> None:
        """Let other executors claim these ids (the server is stopping)."""
        for lock in self._locks:
            os.close(lock)
        self._locks.clear()


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
    """Throwaway user ids for this server's kernels, from ``uid_range``; None when kernels run as
    the server's own user (KERNEL_USER=none, or a server not running as root).

    A pair is claimed with an exclusive lock file, held while the server lives; ids with a passwd
    entry, or that some process on the host runs as (another executor's, in a container say), are
    never used. Whatever files or IPC objects a crashed earlier holder left are swept first.
    """
    if setting == "none":
        return None
    if os.geteuid() != 0:
        log.warning("the server does not run as root: kernels run as its own user, and sessions are not isolated")
        return None
    pair, lock = _claim_pair(uid_range)
    folders = tuple(sorted({*TEMP_FOLDERS, *map(Path, world_writable_folders())}))
    users = KernelUsers(list(pair), uid_range, tuple(keep), folders, [lock])
    problem = _can_run_interpreter(users.first)
    if problem is not None:
        users.release()
        log.warning(
            "kernel user %d cannot run %s with ipykernel (is the interpreter under a private folder?): "
            "kernels run as root, and sessions are not isolated: %s",
            users.first.uid,
            sys.executable,
            problem,
        )
        return None
    _become_subreaper()
    for user in users.users:
        sweep(user, keep=keep, folders=folders)
    log.info("kernels run as user ids %d and %d, alternately", pair[0].uid, pair[1].uid)
    return users


#: prctl(2): orphaned descendants go to the nearest ancestor that set this, not to the host's init.
PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of the kernels' processes come to this server, whose sweep reaps them (ISO-11), not
    to an init outside the executor that may never reap them (as PID 1 of a container, it is init)."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("could not become the reaper of the kernels' orphans: %s", os.strerror(ctypes.get_errno()))


def _claim_pair(uid_range: range) -> tuple[tuple[KernelUser, KernelUser], int]:
    """A free pair of ``uid_range`` and the descriptor of the lock file that holds it."""
    folder = _lock_folder()
    busy = _uids_in_use()
    for first in _from_anywhere(range(uid_range.start - uid_range.start % 2, uid_range.stop - 1, 2)):
        if any(uid in busy or _has_passwd_entry(uid) for uid in (first, first + 1)):
            continue
        fd = os.open(folder / f"uids-{first}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue
            raise
        return (KernelUser(f"u{first}", first, first), KernelUser(f"u{first + 1}", first + 1, first + 1)), fd
    raise IsolationError(f"every user id pair in {uid_range.start}-{uid_range.stop - 1} is taken (KERNEL_UIDS)")


def _from_anywhere(candidates: range) -> Iterator[int]:
    """``candidates``, from a random one on, round the range: executors in containers of one image
    cannot see each other's claims, yet a user id's process count (RLIMIT_NPROC) is the host's, so
    one session's fork bomb would leave another container's no process to start were they all to
    begin with the range's first id. Executors on one host still avoid each other by the lock."""
    start = secrets.randbelow(len(candidates)) if candidates else 0
    return itertools.chain(candidates[start:], candidates[:start])


def _uids_in_use() -> set[int]:
    """Every real, effective or saved user id of a process this server can see."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found.update(_ids_of(entry.name))
    return found


def _has_passwd_entry(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# -- the sweep ------------------------------------------------------------------------------------


def _ids_of(pid: str) -> tuple[int, ...]:
    """The real, effective and saved user ids of ``pid`` (none if it is gone)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith("Uid:"):
                return tuple(int(part) for part in line.split()[1:4])
    return ()


def _task_states(pid: int) -> list[str]:
    """The state of each task (thread) of ``pid`` that has not exited: its main thread may be a
    zombie while another runs, so the process's own state says nothing of whether it lives."""
    states = []
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError), open(f"{task.path}/stat", encoding="utf-8") as file:
                state = file.read().rsplit(")", 1)[1].split()[0]
                if state not in "ZX":
                    states.append(state)
    return states


def _in_another_cgroup(pid: str, own: str) -> bool:
    """Whether ``pid`` is in a control group other than ``own`` (this server's), as its living
    threads say: an exited main thread no longer tells (it reads the root group). A zombie is ours."""
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError):
                with open(f"{task.path}/stat", encoding="utf-8") as file:
                    if file.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        continue
                with open(f"{task.path}/cgroup", encoding="utf-8") as file:
                    return file.read() != own
    return False


def _own_cgroup() -> str:
    """This server's control groups, as /proc says."""
    with open("/proc/self/cgroup", encoding="utf-8") as file:
        return file.read()


def _processes_of(uid: int) -> dict[int, list[str]]:
    """pid -> the states of its living tasks (none: a zombie), for every process whose real,
    effective or saved user id is ``uid``, whatever its state, in this server's control group.

    User code cannot leave the control group its kernel started in (that takes root); a process
    of the same id in another one belongs to another executor (a container on this host, whose
    ids this server could not see when it claimed its own), and is never touched.
    """
    own = _own_cgroup()
    return {
        int(entry.name): _task_states(int(entry.name))
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and uid in _ids_of(entry.name) and not _in_another_cgroup(entry.name, own)
    }


def shared_with_another_executor(user: KernelUser) -> bool:
    """Whether a living process of ``user``'s id is in another control group than this server's:
    another executor's (a container on this host that claimed the same id without seeing ours).
    User code of one could then signal, or read the memory of, the other's kernels."""
    own = _own_cgroup()
    return any(
        entry.name.isdigit() and user.uid in _ids_of(entry.name) and _in_another_cgroup(entry.name, own)
        for entry in os.scandir("/proc")
    )


def _reap_orphans(zombies: Iterable[int]) -> None:
    """Reap dead processes left to this server (the kernels' orphans come to it: ``_become_subreaper``)."""
    me = str(os.getpid())
    for pid in zombies:
        with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat", encoding="utf-8") as file:
            if file.read().rsplit(")", 1)[1].split()[1] == me:
                os.waitpid(pid, os.WNOHANG)


def _kill_everything_of(user: KernelUser, deadline: float) -> int:
    """Kill every process of ``user``, whatever its state; how many were killed. IsolationError
    if some outlive ``deadline``. Zombies of the user left to this server are reaped.

    Every process is stopped (SIGSTOP), and killed once every task of it is stopped: a stopped
    process cannot fork, so a fork bomb cannot outrun the killing. One that does not stop within
    STOP_ROUNDS looks (a task in uninterruptible sleep, say) is killed all the same. Nothing is
    started for this: it works when the host or the container has no process left.
    """
    killed: set[int] = set()
    rounds = 0
    while True:
        processes = _processes_of(user.uid)
        _reap_orphans(pid for pid, tasks in processes.items() if not tasks)
        living = {pid: tasks for pid, tasks in processes.items() if tasks}
        if not living:
            return len(killed)
        if time.monotonic() >= deadline:
            raise IsolationError(
                f"processes of user {user.uid} outlived {Timeouts.sweep_kill:.0f} s of SIGSTOP and SIGKILL: "
                f"{sorted(living)[:20]}"
            )
        rounds += 1
        stopped = {pid for pid, tasks in living.items() if all(state in "Tt" for state in tasks)}
        for pid in living:  # a stopped process cannot fork: it can go at once
            with contextlib.suppress(OSError):
                if pid in stopped or rounds > STOP_ROUNDS:  # one that will not stop (in D state, say) goes anyway
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                else:
                    os.kill(pid, signal.SIGSTOP)
        time.sleep(Timeouts.sweep_poll)


def sweep(
    user: KernelUser,
    *,
    keep: Iterable[Path] = (),
    folders: Iterable[Path] = TEMP_FOLDERS,
    remove: Iterable[Path] = (),
    deadline: float | None = None,
) -> None:
    """Kill every process of ``user``, then remove its IPC objects, the paths in ``remove`` whole,
    and its files in ``folders`` (but those in ``keep``).

    IsolationError when something of the user is left at ``deadline`` (by default
    ``Timeouts.sweep_kill`` for the processes, ``Timeouts.sweep_files`` for the rest, from now):
    the caller must not let the user serve until a later sweep has finished.
    """
    started = time.monotonic()
    killed = _kill_everything_of(user, deadline or started + Timeouts.sweep_kill)
    objects = remove_ipc_of(user.uid, user.gid, Timeouts.sweep_kill)
    objects += remove_mqueues_of(user.uid, _lock_folder() / f"mqueue-{os.getpid()}")
    left = ipc_left_of(user.uid)
    if left:
        raise IsolationError(f"SysV IPC objects of user {user.uid} outlived their removal: {left}")
    kept = tuple(str(path) for path in keep)
    files_deadline = deadline or time.monotonic() + Timeouts.sweep_files
    try:
        removed = sum(remove_tree(str(path), files_deadline) for path in remove if path.exists())
        removed += sum(
            remove_owned(user.uid, str(folder), kept, files_deadline, SWEEP_MAX_DEPTH, SWEEP_READ_ONLY_DEPTH)
            for folder in folders
        )
    except SweepError as exc:
        raise IsolationError(f"files of user {user.uid} were not all removed: {exc}") from None
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
