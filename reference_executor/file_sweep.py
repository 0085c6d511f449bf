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

__all__ = [
    "SweepDeadlineError",
    "SweepError",
    "SweepMovedError",
    "remove_owned",
    "remove_tree",
    "world_writable_folders",
]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SweepError(RuntimeError):
    """Something of the user could not be removed; the user id must not serve until a sweep finishes."""


class SweepDeadlineError(SweepError):
    """The deadline passed before everything was removed."""


class SweepMovedError(SweepError):
    """A folder moved while it was being emptied: the walk stops rather than climb out of its tree."""


#: How many entries between two looks at the clock, inside one folder.
CHECK_EVERY = 256


def _open_folder(name: str, dir_fd: int | None = None) -> int:
    return os.open(name, _DIRECTORY, dir_fd=dir_fd)


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise SweepDeadlineError("the deadline passed")


def _empty_and_remove(parent: int, name: str, deadline: float) -> int:
    """Remove the folder ``name`` of ``parent`` and everything under it; how many entries went.

    Down by name, never following a link; up by "..", checked against the folder it came down
    from (device and inode), so that a folder moved meanwhile cannot lead the walk out of its tree.
    """
    removed = 0
    current = _open_folder(name, parent)
    levels = [(name, _identity(parent))]  # each folder's name, and its parent's identity
    try:
        while levels:
            child = None
            with os.scandir(current) as entries:
                for count, entry in enumerate(entries):
                    if count % CHECK_EVERY == 0:
                        _check(deadline)
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=current)
                        removed += 1
            if child is not None:  # go down into it
                below = _open_folder(child, current)
                levels.append((child, _identity(current)))
                os.close(current)
                current = below
                continue
            done, expected_parent = levels.pop()  # empty now: go up, and remove it
            above = _open_folder("..", current) if levels else os.dup(parent)
            os.close(current)
            current = above
            if _identity(current) != expected_parent:
                raise SweepMovedError(f"a folder moved while it was being emptied ({done!r})")
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(done, dir_fd=current)
                removed += 1
    finally:
        os.close(current)
    return removed


def remove_tree(path: str, deadline: float) -> int:
    """Remove ``path`` (a file, a link or a whole folder tree, however deep); how many entries
    went. SweepError past ``deadline`` (``time.monotonic()``) or if a folder moves meanwhile.
    The folders above ``path`` must be out of reach of whoever made what is below it."""
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


def remove_owned(
    uid: int, folder: str, keep: tuple[str, ...], deadline: float, max_depth: int, read_only_depth: int
) -> int:
    """Remove what ``uid`` owns under ``folder`` (but under ``keep``); how many entries went.

    An entry of ``uid`` can only have been made in a folder that ``uid`` may write to: one it
    owns (removed whole) or a world-writable one. So entries are looked at in world-writable
    folders only; world-writable subfolders are descended into ``max_depth`` deep, and others'
    folders that are not world-writable only ``read_only_depth`` levels below the nearest
    world-writable one (where a world-writable folder could still sit): a read-only tree (a
    checkout with its virtualenvs in /tmp, say) costs a few looks, not one per folder of it.
    Each folder is opened relative to its parent, never through a link (depth first, so
    ``max_depth`` + 1 open at most), and every entry is removed relative to its folder, never by
    a path that could be redirected. SweepError past ``deadline``.
    """
    try:
        top = _open_folder(folder)
    except OSError:
        return 0
    removed = 0
    # An open folder, its path, how many levels since the last world-writable one, and its
    # subfolders still to visit, each with whether it is world-writable.
    stack: list[tuple[int, str, int, list[tuple[str, bool]]]] = []
    try:
        count, below = _visit(uid, top, folder, keep, deadline)
        removed += count
        stack.append((top, folder, 0, below))
        while stack:
            current, path, read_only, below = stack[-1]
            if not below or len(stack) > max_depth:
                os.close(current)
                stack.pop()
                continue
            name, writable = below.pop()
            levels = 0 if writable else read_only + 1
            if levels > read_only_depth:
                continue
            try:
                child = _open_folder(name, current)
            except OSError:
                continue
            child_path = os.path.join(path, name)
            try:
                count, child_below = _visit(uid, child, child_path, keep, deadline)
            except BaseException:
                os.close(child)
                raise
            removed += count
            stack.append((child, child_path, levels, child_below))
    finally:
        for current, _, _, _ in stack:
            os.close(current)
    return removed


def _visit(
    uid: int, current: int, path: str, keep: tuple[str, ...], deadline: float
) -> tuple[int, list[tuple[str, bool]]]:
    """In the open folder ``current`` (at ``path``): remove ``uid``'s entries if any user may write
    there; how many went, and the subfolders of others that any user may enter, each with whether
    any user may write there (to look into next)."""
    writable = bool(os.fstat(current).st_mode & stat.S_IWOTH)
    removed, below = 0, []
    with os.scandir(current) as entries:
        for count, entry in enumerate(entries):
            if count % CHECK_EVERY == 0:
                _check(deadline)
            with contextlib.suppress(OSError):
                is_folder = entry.is_dir(follow_symlinks=False)
                if not (writable or is_folder) or _inside(os.path.join(path, entry.name), keep):
                    continue
                info = entry.stat(follow_symlinks=False)
                if info.st_uid == uid:  # a file only in a world-writable folder; a folder anywhere
                    if is_folder:
                        removed += _empty_and_remove(current, entry.name, deadline)
                    else:
                        os.unlink(entry.name, dir_fd=current)
                        removed += 1
                elif is_folder and info.st_mode & stat.S_IXOTH:
                    below.append((entry.name, bool(info.st_mode & stat.S_IWOTH)))
    return removed, below


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
