"""Removing a retired user's files (``reference_executor.file_sweep``), on real folders.

The races are made real at the one moment they matter: a folder is moved by another process
while the walk is inside it (the hook runs the rename, through the file system, at that moment).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reference_executor.file_sweep import SweepMovedError, remove_owned, remove_tree

#: Enough for any walk here.
DEADLINE_S = 30.0


def test_a_tree_deeper_than_path_max_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(2500):  # "d/" 2,500 times: past PATH_MAX, and past the recursion limit
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)
    assert remove_tree(str(top), time.monotonic() + DEADLINE_S) == 2501
    assert not top.exists()


def test_a_folder_moved_up_while_it_is_emptied_does_not_lead_the_walk_out_of_its_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#27 review: climbing back by ".." into a folder moved meanwhile emptied the folders above."""
    kernel = tmp_path / "runtime" / "kernel"
    big = kernel / "home" / "d1" / "d2" / "big"
    big.mkdir(parents=True)
    for number in range(3):
        (big / f"f{number}").write_text("x")
    neighbour = tmp_path / "runtime" / "another-kernel" / "connection.json"
    neighbour.parent.mkdir()
    neighbour.write_text("secret")
    real_unlink = os.unlink
    moved: list[bool] = []

    def unlink_then_move(path: str, *, dir_fd: int | None = None) -> None:
        real_unlink(path, dir_fd=dir_fd)
        if not moved:  # a process of the session moves the folder being emptied two levels up
            moved.append(True)
            os.rename(big, kernel / "home" / "big")

    monkeypatch.setattr(os, "unlink", unlink_then_move)  # the os module file_sweep calls
    with pytest.raises(SweepMovedError):
        remove_tree(str(kernel), time.monotonic() + DEADLINE_S)
    assert neighbour.read_text() == "secret"


def test_only_the_users_entries_go_and_a_link_is_never_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    others = tmp_path / "others"
    others.mkdir()
    (others / "keep.txt").write_text("x")
    mine = shared / "mine.txt"
    mine.write_text("x")
    (shared / "link").symlink_to(others)
    uid = os.geteuid()
    removed = remove_owned(uid, str(shared), (), time.monotonic() + DEADLINE_S, max_depth=4, read_only_depth=2)
    assert removed == 2 and not mine.exists() and not (shared / "link").is_symlink()  # the link itself went
    assert (others / "keep.txt").exists()  # not what it pointed at


def test_a_world_writable_folder_below_read_only_ones_is_swept(tmp_path: Path) -> None:
    """Others' read-only folders are looked into a few levels deep, for a world-writable one there."""
    shared = tmp_path / "shared"
    nested = shared / "read-only" / "also-read-only" / "writable"
    nested.mkdir(parents=True)
    for folder in (shared, nested):
        folder.chmod(0o1777)
    for folder in (shared / "read-only", nested.parent):
        folder.chmod(0o755)
    for folder in (shared / "read-only", nested.parent, nested):
        os.chown(folder, 65534, 65534)  # another user's: not removed whole
    mine = nested / "mine.txt"
    mine.write_text("x")
    removed = remove_owned(os.geteuid(), str(shared), (), time.monotonic() + DEADLINE_S, max_depth=8, read_only_depth=2)
    assert removed == 1 and not mine.exists()
