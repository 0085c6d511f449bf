"""Kernel objects that outlive their processes, found by owner and removed (ISO-8).

SysV shared memory segments, message queues and semaphore sets live until someone removes them,
whatever their permissions say about who may read them; POSIX message queues likewise, as files
of the ``mqueue`` file system. A retired kernel user's are found by ownership (owner or creator),
never by name or by a list of keys, and removed as root, or, where root may not (in a container,
without CAP_SYS_ADMIN), by a process run as that user.

Standard library only (ctypes for the IPC calls): imported by ``isolation`` before the server
loads anything heavy. This module must never import FastAPI or jupyter_client.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ipc_left_of", "remove_ipc_of", "remove_mqueues_of"]

log = logging.getLogger("reference_executor.kernel_objects")

#: The control command that removes a SysV object; umount2's flag for a lazy unmount.
IPC_RMID, MNT_DETACH = 0, 2
#: For each SysV kind: its /proc/sysvipc table and the columns of the owner's and the creator's uid.
SYSV_TABLES = {"shm": (7, 9), "msg": (7, 9), "sem": (4, 6)}

_libc = ctypes.CDLL(None, use_errno=True)


def _remove_sysv(kind: str, ident: int) -> bool:
    control = {"shm": _libc.shmctl, "msg": _libc.msgctl, "sem": _libc.semctl}[kind]
    arguments = (ident, 0, IPC_RMID, None) if kind == "sem" else (ident, IPC_RMID, None)
    return bool(control(*arguments) == 0)


#: Run as the user: remove the SysV objects given as KIND:ID arguments (their owner or creator may,
#: where root may not: in a container, without CAP_SYS_ADMIN).
_REMOVE_AS_OWNER = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None)\n"
    "for kind, ident in (argument.split(':') for argument in sys.argv[1:]):\n"
    "    control = {'shm': libc.shmctl, 'msg': libc.msgctl, 'sem': libc.semctl}[kind]\n"
    "    control(int(ident), *((0,) if kind == 'sem' else ()), 0, None)\n"
)


def _sysv_of(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of every SysV IPC object that ``uid`` owns or created."""
    found = []
    for kind, columns in SYSV_TABLES.items():
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            with contextlib.suppress(ValueError, IndexError):
                if uid in (int(fields[column]) for column in columns):
                    found.append((kind, int(fields[1])))
    return found


def ipc_left_of(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of the SysV IPC objects ``uid`` still owns or created: none once it is swept."""
    return _sysv_of(uid)


def remove_ipc_of(uid: int, gid: int, timeout: float) -> int:
    """Remove every SysV IPC object that ``uid`` owns or created; how many there were. Root removes
    them where it may; what is left, a process run as ``uid`` removes (``timeout`` s at most)."""
    found = _sysv_of(uid)
    left = [f"{kind}:{ident}" for kind, ident in found if not _remove_sysv(kind, ident)]
    if left:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [sys.executable, "-S", "-I", "-c", _REMOVE_AS_OWNER, *left], user=uid, group=gid, extra_groups=[],
                cwd="/", env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=timeout, check=False,
            )  # fmt: skip
    return len(found)


def _mqueue_mount() -> Path | None:
    """Where the mqueue file system is mounted (``/dev/mqueue`` in a container), if anywhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "mqueue":
                return Path(fields[1].replace("\\040", " "))
    return None


def remove_mqueues_of(uid: int, scratch: Path) -> int:
    """Remove every POSIX message queue ``uid`` owns; how many were removed.

    They show as files of the mqueue file system. Where it is mounted nowhere (a host), it is
    mounted at ``scratch`` (an empty folder of root's) for the moment of the sweep, and unmounted
    at once: a mount left for the server's life would outlive a server that is killed.
    """
    folder = _mqueue_mount()
    mounted = False
    if folder is None:
        with contextlib.suppress(OSError):
            scratch.mkdir(mode=0o700, exist_ok=True)
        if _libc.mount(b"mqueue", str(scratch).encode(), b"mqueue", 0, None) != 0:
            log.warning(
                "POSIX message queues cannot be swept: mounting mqueue failed (%s)", os.strerror(ctypes.get_errno())
            )
            return 0
        folder, mounted = scratch, True
    removed = 0
    try:
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    os.unlink(entry.path)
                    removed += 1
    finally:
        if mounted:
            _libc.umount2(str(folder).encode(), MNT_DETACH)
            with contextlib.suppress(OSError):
                folder.rmdir()
    return removed
