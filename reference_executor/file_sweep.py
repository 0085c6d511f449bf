"""Removing a retired user's files by ownership: iterative, with a few open folders at most, within a deadline.

A session can leave a folder tree thousands of levels deep, or hundreds of thousands of files:
a recursive walk (``shutil.rmtree`` on Python 3.11, a recursive scan) dies of the recursion
limit, and one open folder per level runs out of descriptors. Here every walk keeps a stack of
names, not of open folders, and works relative to one open folder at a time (``dir_fd``, never a
path that could be longer than PATH_MAX), never following a symbolic link. Every walk stops at
its deadline and says so, so that the caller can keep the user id out of service until a later
sweep finishes.

The sweep runs once the user's processes are all dead, so nothing changes the tree under it.
Standard library only; must never import FastAPI or jupyter_client.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable

__all__ = ["SweepDeadlineError", "remove_owned", "remove_tree", "world_writable_folders"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SweepDeadlineError(RuntimeError):
    """The deadline passed before everything was removed."""


def _open_folder(name: str, dir_fd: int | None = None) -> int:
    return os.open(name, _DIRECTORY, dir_fd=dir_fd)


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise SweepDeadlineError("the deadline passed")


def _empty_and_remove(parent: int, name: str, deadline: float) -> int:
    """Remove the folder ``name`` of ``parent`` and everything under it; how many entries went."""
    removed, names = 0, [name]  # the path from ``parent`` down to the folder being emptied
    current = _open_folder(name, parent)
    try:
        while names:
            _check(deadline)
            child = None
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=current)
                        removed += 1
            if child is not None:  # go down into it
                below = _open_folder(child, current)
                os.close(current)
                current = below
                names.append(child)
                continue
            done = names.pop()  # empty now: go up, and remove it
            above = _open_folder("..", current) if names else None
            os.close(current)
            current = above if above is not None else -1
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(done, dir_fd=current if names else parent)
                removed += 1
    finally:
        if current >= 0:
            os.close(current)
    return removed


def remove_tree(path: str, deadline: float) -> int:
    """Remove ``path`` (a file, a link or a whole folder tree, however deep); how many entries
    went. SweepDeadlineError past ``deadline`` (``time.monotonic()``)."""
    parent = _open_folder(os.path.dirname(path.rstrip("/")) or "/")
    try:
        name = os.path.basename(path.rstrip("/"))
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return 0
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(name, dir_fd=parent)
            return 1
        return _empty_and_remove(parent, name, deadline)
    finally:
        os.close(parent)


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def remove_owned(uid: int, folder: str, keep: tuple[str, ...], deadline: float, max_depth: int) -> int:
    """Remove what ``uid`` owns under ``folder`` (but under ``keep``); how many entries went.

    An entry of ``uid`` can only have been made in a folder that ``uid`` may write to: one it
    owns (removed whole) or a world-writable one. So entries are looked at in world-writable
    folders only, and only subfolders ``uid`` could enter are descended into, ``max_depth`` deep
    at most below ``folder``: a read-only tree (a virtualenv in /tmp, say) costs one look per
    folder, not one per file. SweepDeadlineError past ``deadline``.
    """
    removed = 0
    pending = [(folder, 0)]
    while pending:
        _check(deadline)
        current, depth = pending.pop()
        try:
            writable = bool(os.stat(current, follow_symlinks=False).st_mode & stat.S_IWOTH)
            entries = list(os.scandir(current))
        except OSError:
            continue
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
                with contextlib.suppress(OSError):
                    removed += remove_tree(entry.path, deadline)
            elif is_folder and info.st_mode & stat.S_IXOTH and depth < max_depth:
                pending.append((entry.path, depth + 1))
    return removed


#: Never looked into for world-writable folders: the kernel's own views, not storage.
PSEUDO_FOLDERS = ("/proc", "/sys")


def world_writable_folders(top: str = "/", max_depth: int = 3) -> list[str]:
    """Folders any user may write to, on a writable file system, ``max_depth`` levels below ``top``
    at most (``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run/lock``, ``/dev/mqueue``, and whatever else
    an image made so: the original deployment's ``/submission``). Found by their mode, not named:
    a session may have left files in any of them. Only folders every user may enter are looked into."""
    found, pending = [], [(top, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in PSEUDO_FOLDERS:
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
                if mode & stat.S_IWOTH and not os.statvfs(entry.path).f_flag & os.ST_RDONLY:
                    found.append(entry.path)
                elif mode & stat.S_IXOTH and depth + 1 < max_depth:
                    pending.append((entry.path, depth + 1))
            except OSError:
                continue
    return sorted(found)
