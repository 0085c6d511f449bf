"""The workspaces a target is started with (``Workspace``), and the sample workspace's files
exported into a folder any user can read."""

from __future__ import annotations

import enum
import stat
from collections.abc import Iterable
from pathlib import Path

from .. import languages

__all__ = ["Workspace", "export_workspace", "prepare_workspace", "unreachable_by_other_users"]


class Workspace(enum.StrEnum):
    """What a target the kit starts finds as its workspace."""

    #: The kit's sample workspace, where the settings say.
    KIT = "kit"
    #: No folder at all.
    MISSING = "missing"
    #: An empty folder.
    EMPTY = "empty"
    #: The sample workspace in a folder other than the main target's, which WORKSPACE_FOLDER names (CODE-5).
    ELSEWHERE = "elsewhere"
    #: Every setting left unset, the sample workspace at the contract's default folder (CONFIG-2).
    DEFAULTS = "defaults"

    @property
    def has_code(self) -> bool:
        """Whether the sample workspace is there (the kinds differ in where it is, and what says so)."""
        return self in (Workspace.KIT, Workspace.ELSEWHERE, Workspace.DEFAULTS)


def export_workspace(folder: Path, source: Path | None = None) -> Path:
    """Copy a sample workspace (``source``; default: the default pack's) into ``folder`` (created),
    readable by any user."""
    folder.mkdir(parents=True, exist_ok=True)
    source = source or languages.load(languages.DEFAULT).workspace
    for entry in sorted(source.iterdir()):
        if entry.is_file():
            target = folder / entry.name
            target.write_bytes(entry.read_bytes())
            target.chmod(0o644)
    folder.chmod(0o755)
    return folder


def prepare_workspace(kind: Workspace, folder: Path, source: Path | None = None) -> Path:
    """The folder to give as WORKSPACE_FOLDER: the sample workspace (``source``), an empty folder, or none."""
    if kind.has_code:
        return export_workspace(folder, source)
    if kind is Workspace.EMPTY:
        folder.mkdir(parents=True)
        folder.chmod(0o755)
        return folder
    return folder.with_name("no-such-workspace")  # Workspace.MISSING


def unreachable_by_other_users(paths: Iterable[Path]) -> list[str]:
    """Those of ``paths`` (as given, and as their links resolve) that a user other than the owner
    cannot reach: a folder above them is not searchable by others, or they are not readable."""
    unreachable = []
    for path in paths:
        for candidate in dict.fromkeys((path.absolute(), path.resolve())):
            try:
                readable = candidate.stat().st_mode & stat.S_IROTH
                folders_open = all(folder.stat().st_mode & stat.S_IXOTH for folder in candidate.parents)
            except OSError:
                continue
            if not (readable and folders_open):
                unreachable.append(str(candidate))
    return list(dict.fromkeys(unreachable))
