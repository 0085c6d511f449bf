"""The options that choose and shape the executor under test, shared by every front door.

The pytest plugin (``--executor-image`` ...) and the benchmark (``executor-conformance bench``)
register the same options from ``TARGET_OPTIONS`` and parse them once into a ``TargetSpec``
(``spec_from``), so an executor is started the same way whether it is certified or measured.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .image import PRODUCTION_CPUS, PRODUCTION_MEMORY, ImageTarget
from .settings import CONTRACT_DEFAULTS, KIT_SETTINGS, ExecutorSettings, SettingsSource
from .targets import Capabilities, ProcessTarget, Target, UrlTarget
from .timeouts import KitTimeouts

__all__ = [
    "TARGET_OPTIONS",
    "OptionError",
    "TargetKind",
    "TargetSpec",
    "add_target_options",
    "settings_from",
    "spec_from",
    "timeouts_from",
]

#: (flags, keyword arguments) in the form both argparse and pytest's ``addoption`` take.
TARGET_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--executor-image", "--image"), {"dest": "executor_image", "help": "a local container image"}),
    (("--executor-url", "--url"), {"dest": "executor_url", "help": "an executor already running at URL"}),
    (("--executor-command",), {"dest": "executor_command", "help": "a local command ({port} is replaced)"}),
    (
        ("--executor-env",),
        {"action": "append", "default": [], "metavar": "KEY=VALUE", "help": "extra environment for the executor"},
    ),
    (
        ("--header",),
        {
            "dest": "executor_header",
            "action": "append",
            "default": [],
            "metavar": "'NAME: VALUE'",
            "help": "(--url) a header sent with every request (a manager's session token, say)",
        },
    ),
    (("--workspace-mounted",), {"action": "store_true", "help": "(--url) the executor runs with the kit's workspace"}),
    (("--no-workspace",), {"action": "store_true", "help": "(--image, local) do not mount the kit's workspace"}),
    (
        ("--workspace-folder",),
        {
            "default": None,
            "help": f"(--image) where the kit mounts its workspace (default {KIT_SETTINGS.workspace_folder})",
        },
    ),
    (("--allow-destructive",), {"action": "store_true", "help": "(--url) run crash and kill scenarios"}),
    (("--memory-limited",), {"action": "store_true", "help": "(--url) a memory limit bounds the executor"}),
    (
        ("--memory",),
        {"default": PRODUCTION_MEMORY, "help": f"(--image) memory limit, or 'none' (default {PRODUCTION_MEMORY})"},
    ),
    (
        ("--process-memory-limit",),
        {"default": "2g", "help": "(local) address-space limit of each process, or 'none'"},
    ),
    (
        ("--cpus",),
        {"default": str(PRODUCTION_CPUS), "help": f"(--image) CPU limit, or 'none' (default {PRODUCTION_CPUS})"},
    ),
    (
        ("--execution-timeout",),
        {
            "type": float,
            "default": None,
            "help": f"EXECUTION_TIMEOUT in seconds (the kit's choice: {KIT_SETTINGS.execution_timeout:g}; "
            f"a URL's: {CONTRACT_DEFAULTS.execution_timeout:g})",
        },
    ),
    (
        ("--max-output-bytes",),
        {"type": int, "default": None, "help": f"MAX_OUTPUT_BYTES (the kit's choice: {KIT_SETTINGS.max_output_bytes})"},
    ),
    (
        ("--max-request-bytes",),
        {
            "type": int,
            "default": None,
            "help": f"MAX_REQUEST_BYTES (the kit's choice: {KIT_SETTINGS.max_request_bytes})",
        },
    ),
    (("--timeout-factor",), {"type": float, "default": 1.0, "help": "multiply the kit's own waits (slow machines)"}),
    (("--startup-timeout",), {"type": float, "default": None, "help": "seconds for the executor to become ready"}),
]


class OptionError(ValueError):
    """An option has a value the kit cannot use; the message says which and why."""


def add_target_options(add: Callable[..., Any]) -> None:
    """Register the target options with ``add`` (argparse's add_argument or pytest's addoption)."""
    for flags, kwargs in TARGET_OPTIONS:
        add(*flags, **kwargs)


def limit(value: str) -> str | None:
    """A limit option's value, or None for 'none' / '0' / ''."""
    return None if value.strip().lower() in ("none", "0", "") else value


def size_in_bytes(value: str, option: str) -> int | None:
    """'512m', '2g', '1048576' or 'none' as a number of bytes (None for no limit)."""
    text = limit(value)
    if text is None:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    try:
        return int(float(text[:-1]) * units[text[-1].lower()]) if text[-1].lower() in units else int(text)
    except ValueError:
        raise OptionError(f"{option} {value!r}: use a size such as 512m or 2g, or none") from None


def headers_from(values: list[str]) -> dict[str, str]:
    """'Name: value' options as a dict of headers, or OptionError saying which one is malformed."""
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise OptionError(f"--header {value!r}: use 'Name: value', e.g. 'Authorization: Bearer TOKEN'")
        headers[name.strip()] = text.strip()
    return headers


class TargetKind(enum.StrEnum):
    IMAGE = "image"  # a local container image the kit starts
    URL = "url"  # an executor already running: the kit neither starts nor stops it
    PROCESS = "process"  # a local command (by default the reference executor) the kit starts


@dataclass(frozen=True)
class TargetSpec:
    """The executor to certify or measure, parsed once from the options and shared by every front door.

    Each default is written once: the executor's settings in ``settings.py``, the limits and the
    kit's waits in ``TARGET_OPTIONS`` and ``timeouts.py``. A target is built from it with ``target()``.
    """

    kind: TargetKind
    timeouts: KitTimeouts
    settings: ExecutorSettings
    #: The image, the URL or the command (split), by ``kind``; None for the reference executor.
    subject: str | tuple[str, ...] | None
    #: One of ``targets.WORKSPACE_KINDS`` for a target the kit starts.
    workspace: str = "kit"
    env: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: Container limits (an image) and the address-space cap of each process (a command).
    memory: str | None = None
    cpus: float | None = None
    process_memory_limit: int | None = None
    #: For a URL, what the user declares the kit may do; a target the kit starts can do all three.
    workspace_mounted: bool = False
    destructive: bool = False
    memory_limited: bool = False

    @property
    def started_by_kit(self) -> bool:
        return self.kind is not TargetKind.URL

    def with_workspace(self, workspace: str) -> TargetSpec:
        """The same target with another workspace (a URL's is its own: unchanged)."""
        return replace(self, workspace=workspace) if self.started_by_kit else self

    def describe(self) -> dict[str, Any]:
        """The target as the reports name it, before (or without) its start."""
        key = {TargetKind.IMAGE: "image", TargetKind.URL: "base_url", TargetKind.PROCESS: "command"}[self.kind]
        return {"kind": self.kind.value, key: self.subject}

    def sibling(self, workspace: str) -> Target | None:
        """A second executor like this one with another workspace (``WORKSPACE_KINDS``), unstarted;
        None where the kit cannot start one: a URL; a command with every setting unset ("defaults":
        PORT cannot be left unset on a shared host) or "elsewhere" (a command's workspace is
        already in a folder of the kit's choosing, which only WORKSPACE_FOLDER names)."""
        if not self.started_by_kit or (self.kind is TargetKind.PROCESS and workspace in ("defaults", "elsewhere")):
            return None
        return self.with_workspace(workspace).target()

    def target(self) -> Target:
        """A new, unstarted target as this spec describes it.

        Its capabilities start from what the spec knows: the settings, and whether the kit chose
        them (a target it starts) or takes them on trust (a URL). A target the kit starts adds
        the rest as it starts; a URL's are what the user declared.
        """
        env = dict(self.env)
        capabilities = Capabilities(
            workspace_mounted=self.workspace_mounted,
            destructive=self.destructive,
            memory_limited=self.memory_limited,
            settings=self.settings,
            settings_source=SettingsSource.KIT if self.started_by_kit else SettingsSource.TRUSTED,
        )
        if self.kind is TargetKind.IMAGE:
            assert isinstance(self.subject, str)
            return ImageTarget(
                self.subject,
                self.timeouts,
                memory=self.memory,
                cpus=self.cpus,
                settings=self.settings,
                workspace=self.workspace,
                env=env,
                capabilities=capabilities,
            )
        if self.kind is TargetKind.URL:
            assert isinstance(self.subject, str)
            return UrlTarget(self.subject, self.timeouts, capabilities, headers=dict(self.headers))
        return ProcessTarget(
            self.timeouts,
            command=list(self.subject) if isinstance(self.subject, tuple) else None,
            env=env,
            workspace=self.workspace,
            settings=self.settings,
            memory_limit_bytes=self.process_memory_limit,
            capabilities=capabilities,
        )


def spec_from(option: Callable[[str], Any]) -> TargetSpec:
    """The target the options describe, parsed and checked once; OptionError says what is wrong."""
    headers = headers_from(option("executor_header"))
    if option("executor_image"):
        kind, subject = TargetKind.IMAGE, option("executor_image")
    elif option("executor_url"):
        kind, subject = TargetKind.URL, option("executor_url")
    else:
        command = option("executor_command")
        kind, subject = TargetKind.PROCESS, tuple(shlex.split(command)) if command else None
    if headers and kind is not TargetKind.URL:
        raise OptionError("--header goes with --url: the kit starts other targets itself")
    cpus = limit(option("cpus"))
    return TargetSpec(
        kind=kind,
        timeouts=timeouts_from(option),
        settings=settings_from(option),
        subject=subject,
        workspace="missing" if option("no_workspace") else "kit",
        env=tuple((key, value) for key, _, value in (p.partition("=") for p in option("executor_env")) if key and _),
        headers=tuple(headers.items()),
        memory=limit(option("memory")),
        cpus=float(cpus) if cpus else None,
        process_memory_limit=size_in_bytes(option("process_memory_limit"), "--process-memory-limit"),
        workspace_mounted=option("workspace_mounted"),
        destructive=option("allow_destructive"),
        memory_limited=option("memory_limited"),
    )


def timeouts_from(option: Callable[[str], Any]) -> KitTimeouts:
    """The kit's waits, scaled and overridden as the options say."""
    timeouts = KitTimeouts().scaled(option("timeout_factor"))
    if option("startup_timeout"):
        timeouts = KitTimeouts(**{**timeouts.__dict__, "startup": option("startup_timeout")})
    return timeouts


def settings_from(option: Callable[[str], Any]) -> ExecutorSettings:
    """The executor's settings: the kit's choice for a target it starts, else the contract's defaults,
    with what the options say in either case (for a URL, what the user declares it runs with)."""
    # For a URL, MAX_EXECUTION_TIMEOUT is unknown: INPUT-5 then checks only a timeout above any maximum.
    base = replace(CONTRACT_DEFAULTS, max_execution_timeout=None) if option("executor_url") else KIT_SETTINGS
    return base.with_values(
        execution_timeout=option("execution_timeout"),
        max_output_bytes=option("max_output_bytes"),
        max_request_bytes=option("max_request_bytes"),
        workspace_folder=option("workspace_folder"),
    )
