"""The kinds of target, in one registry (``KINDS``), and ``TargetSpec``: the executor to certify or
measure, parsed once from the options. The one place that knows which kinds there are: every
other module asks the spec, or the target it builds.

Adding a kind: a module beside ``process``, ``image`` and ``url`` with a class that implements
``base.Target``, an entry in ``KINDS`` here, and its option in ``options.TARGET_OPTIONS``
(docs/architecture.md).
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..languages import LanguagePack
from ..settings import CONTRACT_DEFAULTS, KIT_SETTINGS, ExecutorSettings, SettingsSource
from ..timeouts import KitTimeouts
from .base import Capabilities, Target
from .image import ImageTarget
from .process import ProcessTarget
from .url import UrlTarget
from .workspace import Workspace

__all__ = ["KINDS", "Kind", "KindError", "TargetKind", "TargetSpec", "kind_chosen"]


class TargetKind(enum.StrEnum):
    IMAGE = "image"  # a local container image the kit starts
    URL = "url"  # an executor already running: the kit neither starts nor stops it
    PROCESS = "process"  # a local command (by default the reference executor) the kit starts


#: What names a target: an image, a URL, or a command (split; None: the reference executor).
Subject = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Kind:
    """What the kit knows of one kind of target before it starts one, and how to build one."""

    kind: TargetKind
    #: The option (its dest in ``options.TARGET_OPTIONS``) whose value names the subject.
    option: str
    #: The key under which the reports name the subject.
    subject_key: str
    #: The subject, from the option's value (None: the option was not given).
    parse: Callable[[str | None], Subject]
    #: The kit starts and stops it: it chooses its settings, and can start a second one like it.
    #: Otherwise the settings are taken on trust, and the capabilities are what the user declares.
    started_by_kit: bool
    #: The settings it gets unless the options say otherwise.
    settings: ExecutorSettings
    #: The workspaces a second executor of this kind can be started with (CODE-5, CONFIG-2).
    sibling_workspaces: frozenset[Workspace]
    #: Requests carry the user's headers (``--header``: a manager's session token).
    takes_headers: bool
    #: A new, unstarted target as the spec describes it, with the capabilities the spec knows.
    build: Callable[[TargetSpec, Capabilities], Target]


def _image(spec: TargetSpec, capabilities: Capabilities) -> Target:
    assert isinstance(spec.subject, str)
    return ImageTarget(
        spec.subject,
        spec.timeouts,
        memory=spec.memory,
        cpus=spec.cpus,
        pids=spec.pids,
        settings=spec.settings,
        workspace=spec.workspace,
        workspace_source=spec.language.workspace,
        env=dict(spec.env),
        capabilities=capabilities,
    )


def _url(spec: TargetSpec, capabilities: Capabilities) -> Target:
    assert isinstance(spec.subject, str)
    return UrlTarget(spec.timeouts, base_url=spec.subject, capabilities=capabilities, headers=dict(spec.headers))


def _process(spec: TargetSpec, capabilities: Capabilities) -> Target:
    return ProcessTarget(
        spec.timeouts,
        command=list(spec.subject) if isinstance(spec.subject, tuple) else None,
        env=dict(spec.env),
        workspace=spec.workspace,
        workspace_source=spec.language.workspace,
        settings=spec.settings,
        memory_limit_bytes=spec.process_memory_limit,
        capabilities=capabilities,
    )


#: The kinds, in the order the options are looked at; the last is the default (no option given:
#: the bundled reference executor, as a local command).
KINDS: dict[TargetKind, Kind] = {
    TargetKind.IMAGE: Kind(
        TargetKind.IMAGE, "executor_image", "image", lambda value: value, started_by_kit=True,
        settings=KIT_SETTINGS, sibling_workspaces=frozenset(Workspace), takes_headers=False, build=_image,
    ),
    TargetKind.URL: Kind(
        # For a URL, MAX_EXECUTION_TIMEOUT is unknown: INPUT-5 then checks only a timeout above any maximum.
        TargetKind.URL, "executor_url", "base_url", lambda value: value, started_by_kit=False,
        settings=replace(CONTRACT_DEFAULTS, max_execution_timeout=None), sibling_workspaces=frozenset(),
        takes_headers=True, build=_url,
    ),
    TargetKind.PROCESS: Kind(
        # A command's workspace is already in a folder of the kit's choosing, which only WORKSPACE_FOLDER
        # names (no "elsewhere"), and PORT cannot be left unset on a shared host (no "defaults").
        TargetKind.PROCESS, "executor_command", "command", lambda value: tuple(shlex.split(value)) if value else None,
        started_by_kit=True, settings=KIT_SETTINGS,
        sibling_workspaces=frozenset((Workspace.KIT, Workspace.MISSING, Workspace.EMPTY)), takes_headers=False,
        build=_process,
    ),
}  # fmt: skip


class KindError(ValueError):
    """The options name more than one kind of target."""


def kind_chosen(option: Callable[[str], Any]) -> Kind:
    """The kind the options name, else the default (the last); KindError when they name several."""
    given = [kind for kind in KINDS.values() if option(kind.option)]
    if len(given) > 1:
        names = " and ".join(f"--{kind.option.removeprefix('executor_')}" for kind in given)
        raise KindError(f"{names} name two executors: certify one at a time")
    return given[0] if given else list(KINDS.values())[-1]


@dataclass(frozen=True)
class TargetSpec:
    """The executor to certify or measure, parsed once from the options and shared by every front door.

    Each default is written once: the executor's settings in ``settings.py``, the limits and the
    kit's waits in ``options.TARGET_OPTIONS`` and ``timeouts.py``. A target is built from it with
    ``target()``.
    """

    kind: TargetKind
    timeouts: KitTimeouts
    settings: ExecutorSettings
    #: The image, the URL or the command (split), by ``kind``; None for the reference executor.
    subject: Subject
    #: The code the scenarios send, and the sample workspace, in the session's language.
    language: LanguagePack
    #: What a target the kit starts finds as its workspace.
    workspace: Workspace = Workspace.KIT
    env: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: Container limits (an image) and the address-space cap of each process (a command).
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None
    process_memory_limit: int | None = None
    #: For a URL, what the user declares the kit may do; a target the kit starts can do all three.
    workspace_mounted: bool = False
    destructive: bool = False
    memory_limited: bool = False

    @property
    def started_by_kit(self) -> bool:
        return KINDS[self.kind].started_by_kit

    @property
    def source(self) -> SettingsSource:
        """Who chose the settings: the kit, for a target it starts; for a URL, taken on trust."""
        return SettingsSource.KIT if self.started_by_kit else SettingsSource.TRUSTED

    def describe(self) -> dict[str, Any]:
        """The target as the reports name it, before (or without) its start."""
        return {"kind": self.kind.value, KINDS[self.kind].subject_key: self.subject}

    def with_workspace(self, workspace: Workspace) -> TargetSpec:
        """The same target with another workspace (a URL's is its own: unchanged)."""
        return replace(self, workspace=workspace) if self.started_by_kit else self

    def sibling(self, workspace: Workspace, startup: float | None = None) -> Target | None:
        """A second executor like this one with another workspace, unstarted; None where the kit
        cannot start one (``Kind.sibling_workspaces``). ``startup``: how long it may take to become
        ready (default: the spec's start-up wait)."""
        if workspace not in KINDS[self.kind].sibling_workspaces:
            return None
        spec = self.with_workspace(workspace)
        if startup is not None:
            spec = replace(spec, timeouts=replace(spec.timeouts, startup=startup))
        return spec.target()

    def target(self) -> Target:
        """A new, unstarted target as this spec describes it.

        Its capabilities start from what the spec knows: the settings, and whether the kit chose
        them (a target it starts) or takes them on trust (a URL). A target the kit starts adds
        the rest as it starts; a URL's are what the user declared.
        """
        capabilities = Capabilities(
            workspace_mounted=self.workspace_mounted,
            destructive=self.destructive,
            memory_limited=self.memory_limited,
            settings=self.settings,
            settings_source=self.source,
        )
        return KINDS[self.kind].build(self, capabilities)
