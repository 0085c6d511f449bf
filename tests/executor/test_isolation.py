"""Isolation between sessions in the reference executor: kernel users, the sweep, the environment.

Real processes and files, as root (only a server running as root can switch users): the kit's
ISO scenarios (conformance/suite/test_isolation.py) prove the same end to end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_executor.config import Settings
from reference_executor.isolation import (
    IsolationError,
    KernelUser,
    KernelUsers,
    claim_kernel_users,
    kernel_environment,
    sweep,
)
from reference_executor.service import ExecutionService
from tests.conftest import start_executor, stop_executor, until, wait_for

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only a server running as root switches users")


@pytest.fixture
def kernel_users() -> Iterator[KernelUsers]:
    """A pair of throwaway kernel user ids, claimed as a server claims them, released afterwards."""
    users = claim_kernel_users("auto", range(61500, 61600))
    assert users is not None
    try:
        yield users
    finally:
        users.release()


#: A process that detaches itself (double fork, new session), prints its PID and lives 30 s at most.
DETACHED = (
    "import os, sys, time\n"
    "if os.fork():\n    os._exit(0)\n"
    "os.setsid()\n"
    "if os.fork():\n    os._exit(0)\n"
    "sys.stdout.write(str(os.getpid()))\nsys.stdout.flush()\nos.close(1)\n"
    "end = time.monotonic() + 30\n"
    "while time.monotonic() < end:\n    time.sleep(0.1)\n"
    "os._exit(0)\n"
)


#: DETACHED, but its main thread exits while another thread runs: the process's own state reads
#: Z (zombie) while it lives on (issue #27).
HEADLESS = DETACHED.replace(
    "end = time.monotonic() + 30\n",
    "end = time.monotonic() + 30\n"
    "import ctypes, threading\n"
    "threading.Thread(target=lambda: [time.sleep(0.1) for _ in iter(lambda: time.monotonic() < end, False)]).start()\n"
    "ctypes.CDLL(None).pthread_exit(None)\n",
)


def _lives(pid: int) -> bool:
    """Whether a task (thread) of ``pid`` is not a zombie."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="utf-8") as file:
                if file.read().rsplit(")", 1)[1].split()[0] not in "ZX":
                    return True
        except OSError:
            continue
    return False


def _detach(code: str, user: KernelUser) -> int:
    """Run ``code`` (DETACHED or HEADLESS) as ``user``; the PID of the detached process it leaves."""
    detached = subprocess.run(
        [sys.executable, "-c", code], user=user.uid, group=user.gid, extra_groups=[], cwd="/",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30, check=True,
    )  # fmt: skip
    return int(detached.stdout)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_environment_holds_only_what_session_env_names() -> None:
    server = {"PATH": "/bin", "LC_ALL": "C", "PYTHONUNBUFFERED": "1", "API_KEY": "secret", "SHARED": "yes"}
    assert kernel_environment(server, ["SHARED"]) == {
        "PATH": "/bin",
        "LC_ALL": "C",
        "PYTHONUNBUFFERED": "1",
        "SHARED": "yes",
    }


@as_root
def test_two_servers_on_one_host_never_share_a_kernel_user() -> None:
    first = claim_kernel_users("auto", range(61500, 61600))
    second = claim_kernel_users("auto", range(61500, 61600))
    assert first is not None and second is not None
    try:
        assert {u.uid for u in first.users}.isdisjoint(u.uid for u in second.users)
    finally:
        first.release()
        second.release()


@as_root
def test_the_sweep_kills_detached_processes_and_removes_files_but_kept_ones(tmp_path: Path) -> None:
    users = claim_kernel_users("auto", range(61500, 61600))
    assert users is not None
    user = users.first
    kept = tmp_path / "submission"
    kept.mkdir()
    kept.chmod(0o777)
    tmp_path.chmod(0o1777)  # world-writable, as /tmp: where user code can leave files
    pid = 0
    try:
        pid = _detach(DETACHED, user)
        assert _running(pid)
        files = [Path("/tmp") / f"iso-test-{os.getpid()}", kept / "result.txt", tmp_path / "nested-owned"]
        for path in files:
            path.write_text("x")
            os.chown(path, user.uid, user.gid)
        sweep(user, keep=[kept], folders=[Path("/tmp"), tmp_path])
        assert not _running(pid)
        assert [path.exists() for path in files] == [False, True, False]
    finally:
        if _running(pid):
            os.kill(pid, 9)
        users.release()


@as_root
def test_the_sweep_kills_a_process_whose_main_thread_has_exited(kernel_users: KernelUsers) -> None:
    """Alone of its user, such a process reads as a zombie; the sweep kills it all the same."""
    user = kernel_users.first
    pid = 0
    try:
        pid = _detach(HEADLESS, user)
        wait_for(lambda: _lives(pid) and not _running(pid), 10, "its main thread a zombie, another running")
        sweep(user, folders=[])
        assert not _lives(pid)
    finally:
        if _lives(pid):
            os.kill(pid, 9)


#: Makes a folder tree DEPTH levels deep under the folder it is given (past Python 3.11's recursion
#: limit, and past PATH_MAX as a path), folder by folder through descriptors.
DEEP_TREE = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    os.mkdir('d', dir_fd=fd)\n"
    "    below = os.open('d', os.O_RDONLY, dir_fd=fd)\n"
    "    os.close(fd)\n"
    "    fd = below\n"
    "open('leaf', 'w', opener=lambda name, flags: os.open(name, flags, dir_fd=fd)).close()\n"
)
DEPTH = 3000


@as_root
def test_the_sweep_removes_a_tree_deeper_than_the_recursion_limit(kernel_users: KernelUsers) -> None:
    """#27 item 6: a 3,000-level tree made /restart answer 500 (RecursionError) and left the executor restarting."""
    user = kernel_users.first
    shared = Path(tempfile.mkdtemp(prefix="iso-deep-", dir="/tmp"))  # the user must reach it
    shared.chmod(0o1777)  # world-writable, as /tmp
    top = shared / "deep"
    top.mkdir()
    os.chown(top, user.uid, user.gid)
    try:
        subprocess.run(
            [sys.executable, "-c", DEEP_TREE, str(top), str(DEPTH)], user=user.uid, group=user.gid, extra_groups=[],
            cwd="/", timeout=60, check=True,
        )  # fmt: skip
        sweep(user, folders=[shared])
        assert not top.exists()
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)


@as_root
def test_every_world_writable_folder_is_swept_not_only_the_temporary_ones() -> None:
    """#27 item 3: /submission in the image, undeclared, carried one session's files to the next."""
    shared = Path(f"/iso-test-drop-{os.getpid()}")  # like /submission: world-writable, not a temp folder
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    users = claim_kernel_users("auto", range(61500, 61600))  # after the folder: claiming finds them
    try:
        assert users is not None and shared in users.folders
        left = shared / "from-the-last-session"
        left.write_text("x")
        os.chown(left, users.first.uid, users.first.gid)
        sweep(users.first, folders=users.folders)
        assert not left.exists()
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)
        if users is not None:
            users.release()


@as_root
def test_a_sweep_that_misses_its_deadline_says_so(kernel_users: KernelUsers, tmp_path: Path) -> None:
    """The caller is told, so that it holds the user id back instead of handing it to the next session."""
    user = kernel_users.first
    tmp_path.chmod(0o1777)
    left = tmp_path / "left"
    left.write_text("x")
    os.chown(left, user.uid, user.gid)
    with pytest.raises(IsolationError, match="not all removed"):
        sweep(user, folders=[tmp_path], deadline=time.monotonic() - 1)
    assert left.exists()


@as_root
def test_with_both_ids_busy_another_pair_is_claimed(kernel_users: KernelUsers) -> None:
    """An id held back after an unfinished sweep is not handed out: the server claims another pair."""
    first, second = kernel_users.take(), kernel_users.take()
    third = kernel_users.take()
    assert len({first.uid, second.uid, third.uid}) == 3 and len(kernel_users.users) == 4


@as_root
def test_with_the_range_used_up_taking_an_id_says_so() -> None:
    """The factory turns this into a kernel that cannot start (tried again), never a 500."""
    users = claim_kernel_users("auto", range(61590, 61592))  # one pair, and no other
    assert users is not None
    try:
        users.take(), users.take()
        with pytest.raises(IsolationError, match="taken"):
            users.take()
        assert len(users.users) == 2
    finally:
        users.release()


#: As a throwaway user under RLIMIT_NPROC (set by the test): every process forks for ever, each
#: child living 30 s at most: a bounded fork bomb.
FORK_BOMB = (
    "import os, time\n"
    "end = time.monotonic() + 30\n"
    "if os.fork():\n    os._exit(0)\n"
    "os.setsid()\n"
    "while time.monotonic() < end:\n"
    "    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    "os._exit(0)\n"
)
BOMB_PROCESSES = 120


@as_root
def test_the_sweep_outruns_a_bounded_fork_bomb(kernel_users: KernelUsers) -> None:
    """#27 item 4: every process is stopped before any is killed, so forking cannot outrun the sweep."""
    user = kernel_users.first

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (BOMB_PROCESSES, BOMB_PROCESSES))

    try:
        subprocess.run(
            [sys.executable, "-S", "-c", FORK_BOMB], user=user.uid, group=user.gid, extra_groups=[], cwd="/",
            preexec_fn=bounded, timeout=30, check=True,
        )  # fmt: skip
        wait_for(lambda: len(_pids_of(user.uid)) >= BOMB_PROCESSES // 2, 20, "the fork bomb at half its size")
        sweep(user, folders=[])
        assert _pids_of(user.uid) == []
    finally:
        for pid in _pids_of(user.uid):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)


def _pids_of(uid: int) -> list[int]:
    """The living processes of ``uid``."""
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _owner(pid) == uid and _lives(pid)]


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


#: Makes, open to every user, a SysV shared memory segment, message queue and semaphore set and a
#: POSIX message queue; prints their ids and the queue's name.
IPC_OBJECTS = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None)\n"
    "ids = [libc.shmget(0, 4096, 0o1666), libc.msgget(0, 0o1666), libc.semget(0, 1, 0o1666)]\n"
    "name = f'/iso-test-{os.getpid()}'\n"
    "libc.mq_close(libc.mq_open(name.encode(), os.O_CREAT | os.O_RDWR, 0o666, None))\n"
    "print(*ids, name)\n"
)


def _sysv_ids(kind: str) -> set[int]:
    lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    return {int(line.split()[1]) for line in lines if line.strip()}


def _queue_exists(name: str) -> bool:
    libc = ctypes.CDLL(None)
    queue = libc.mq_open(name.encode(), os.O_RDONLY, 0, None)
    if queue < 0:
        return False
    libc.mq_close(queue)
    return True


@as_root
def test_the_sweep_removes_the_ipc_objects_of_the_user(kernel_users: KernelUsers) -> None:
    """ISO-8: SysV objects and POSIX queues outlive their processes; the sweep finds them by owner."""
    user = kernel_users.first
    made = subprocess.run(
        [sys.executable, "-c", IPC_OBJECTS], user=user.uid, group=user.gid, extra_groups=[], cwd="/",
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    shm, msg, sem, queue = int(made[0]), int(made[1]), int(made[2]), made[3]
    try:
        assert shm in _sysv_ids("shm") and msg in _sysv_ids("msg") and sem in _sysv_ids("sem")
        assert _queue_exists(queue)
        mounts = Path("/proc/self/mounts").read_text()
        sweep(user, folders=[])
        assert (shm in _sysv_ids("shm"), msg in _sysv_ids("msg"), sem in _sysv_ids("sem")) == (False, False, False)
        assert not _queue_exists(queue)
        assert Path("/proc/self/mounts").read_text() == mounts  # a mount made for the sweep is undone
    finally:
        subprocess.run(["ipcrm", "-m", str(shm), "-q", str(msg), "-s", str(sem)], capture_output=True, check=False)
        ctypes.CDLL(None).mq_unlink(queue.encode())


@as_root
@pytest.mark.anyio
async def test_the_standby_never_runs_as_the_user_being_served(tmp_path: Path) -> None:
    """Active and standby kernels alternate between two user ids; a restart swaps them."""
    settings = Settings.from_env({"WORKSPACE_FOLDER": str(tmp_path / "none")})  # its own runtime folder
    service = ExecutionService(settings)
    await service.start()
    try:
        assert await until(lambda: service.readiness.ready, 60)
        service.serving()
        assert await until(lambda: service._standby is not None and service._standby.done(), 60)
        active, standby = service._active, service._standby.result()  # type: ignore[union-attr]
        assert active is not None and active.user is not None and standby.user is not None
        assert active.user.uid != standby.user.uid
        served_before = active.user.uid
        await service.restart()
        assert service._active is standby
        assert await until(lambda: service._standby is not None and service._standby.done(), 60)
        assert service._standby.result().user.uid == served_before  # type: ignore[union-attr]
    finally:
        await service.close()


@as_root
def test_nothing_of_the_last_session_outlives_the_server(tmp_path: Path) -> None:
    """A stopped (SIGSTOP) detached process of user code is gone once the server stopped on SIGTERM."""
    running = start_executor(
        [sys.executable, "-m", "reference_executor"], {"WORKSPACE_FOLDER": str(tmp_path)}, tmp_path / "log"
    )
    pid = 0
    try:
        code = (
            "import os, signal, subprocess, sys\n"
            f"beat = int(subprocess.run([sys.executable, '-c', {DETACHED!r}], stdout=subprocess.PIPE).stdout)\n"
            "os.kill(beat, signal.SIGSTOP)\n"
            "print(beat)"
        )
        pid = int(running.execute(code)["outputs"][0]["text"])
        assert _running(pid)
    finally:
        stop_executor(running)  # SIGTERM, as docker stop
        left = _running(pid)
        if left:
            os.kill(pid, 9)
    assert not left
