"""The options that choose and shape the executor under test, shared by every front door.

The pytest plugin (``--executor-image`` ...), the console command (``--image`` ...) and the
benchmark (``executor-conformance bench``) register the same options from ``TARGET_OPTIONS``
and parse them once into a ``TargetSpec`` (``spec_from``), so an executor is started the same
way whether it is certified or measured. ``RUN_OPTIONS`` are a certification's own.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from . import languages
from .catalogue import FEATURES, Profile
from .results import Exit
from .settings import CHOSEN, ExecutorSettings, Setting, env_value
from .targets.image import PRODUCTION_CPUS, PRODUCTION_MEMORY, PRODUCTION_PIDS
from .targets.spec import Kind, KindError, TargetSpec, kind_chosen
from .targets.workspace import Workspace
from .timeouts import KitTimeouts

__all__ = [
    "HEADER_FLAGS",
    "REPORTS",
    "RUN_OPTIONS",
    "SELECTION",
    "SETTINGS",
    "TARGET",
    "TARGET_OPTIONS",
    "WAITS",
    "KitParser",
    "Option",
    "OptionError",
    "add_target_options",
    "kind_from",
    "settings_from",
    "spec_from",
    "timeouts_from",
]


@dataclass(frozen=True)
class Option:
    """One option of the kit, as argparse's ``add_argument`` and pytest's ``addoption`` both take it.

    ``flags[0]`` is the canonical, prefixed name (``--executor-...`` for the target,
    ``--conformance-...`` for the kit): the only one the pytest plugin registers, so that it
    cannot collide with a user's own options. The console commands accept the short names too.
    """

    flags: tuple[str, ...]
    kwargs: dict[str, Any]
    group: str

    @property
    def canonical(self) -> str:
        return self.flags[0]


TARGET = "target"
SETTINGS = "the executor's settings (a target the kit starts gets these; a URL's are taken on trust)"
WAITS = "the kit's waits"
SELECTION = "selection"
REPORTS = "reports"


def _option(flags: tuple[str, ...], group: str, **kwargs: Any) -> Option:
    return Option(flags, kwargs, group)


def _setting_option(setting: Setting) -> Option:
    """The option that gives a setting (its dest: the ExecutorSettings field), from its row."""
    kit, default = env_value(setting.kit), env_value(setting.default)
    return _option(
        setting.flags, SETTINGS, dest=setting.field, type=setting.value_type, default=None, metavar=setting.metavar,
        help=f"{setting.variable} (the kit's choice: {kit}; a URL's: {default})",
    )  # fmt: skip


#: The options that choose and shape the executor under test: every front door has them.
TARGET_OPTIONS: list[Option] = [
    _option(("--executor-image", "--image"), TARGET, dest="executor_image", metavar="IMAGE",
            help="a local container image (never pulled)"),
    _option(("--executor-url", "--url"), TARGET, dest="executor_url", metavar="URL",
            help="an executor already running at URL (which may carry a path prefix)"),
    _option(("--executor-command", "--command"), TARGET, dest="executor_command", metavar="CMD",
            help="a local command ({port} is replaced); none of the three: the reference executor"),
    _option(("--executor-env", "--env"), TARGET, dest="executor_env", action="append", default=[],
            metavar="KEY=VALUE", help="extra environment for an executor the kit starts"),
    _option(("--executor-header", "--header"), TARGET, dest="executor_header", action="append", default=[],
            metavar="'NAME: VALUE'", help="(--url) a header sent with every request (a manager's session token)"),
    _option(("--executor-language", "--language"), TARGET, dest="language", default=languages.DEFAULT,
            metavar="NAME|FILE", help=f"the session's language: a built-in pack ({', '.join(languages.BUILT_IN)}) "
            "or a pack file (docs/language-packs.md)"),
    _option(("--executor-workspace-mounted", "--workspace-mounted"), TARGET, dest="workspace_mounted",
            action="store_true", help="(--url) the executor runs with the kit's workspace"),
    _option(("--executor-no-workspace", "--no-workspace"), TARGET, dest="no_workspace", action="store_true",
            help="(--image, local) do not mount the kit's workspace"),
    _option(("--executor-allow-destructive", "--allow-destructive"), TARGET, dest="allow_destructive",
            action="store_true", help="(--url) run crash and kill scenarios"),
    _option(("--executor-allow-host-planting", "--allow-host-planting"), TARGET, dest="allow_host_planting",
            action="store_true", help="(local) let ISO-3 plant start-up files in this host's Python folders "
            "when user code runs as root; the kit removes them after"),
    _option(("--executor-memory-limited", "--memory-limited"), TARGET, dest="memory_limited", action="store_true",
            help="(--url) a memory limit bounds the executor"),
    _option(("--executor-memory", "--memory"), TARGET, dest="memory", default=PRODUCTION_MEMORY, metavar="SIZE",
            help=f"(--image) memory limit, or 'none' (default {PRODUCTION_MEMORY})"),
    _option(("--executor-cpus", "--cpus"), TARGET, dest="cpus", default=str(PRODUCTION_CPUS), metavar="N",
            help=f"(--image) CPU limit, or 'none' (default {PRODUCTION_CPUS})"),
    _option(("--executor-pids", "--pids"), TARGET, dest="pids", default=str(PRODUCTION_PIDS), metavar="N",
            help=f"(--image) limit of processes and threads, or 'none' (default {PRODUCTION_PIDS})"),
    _option(("--executor-process-memory-limit", "--process-memory-limit"), TARGET, dest="process_memory_limit",
            default="2g", metavar="SIZE", help="(local) address-space limit of each process, or 'none' (default 2g)"),
    _option(("--executor-persistent-folder", "--persistent-folder"), TARGET, dest="persistent_folder",
            action="append", default=[], metavar="DIR",
            help="a folder the operator keeps across sessions (ISO-2); also read from GET /info"),
    *(_setting_option(setting) for setting in CHOSEN.values() if setting.option),
    _option(("--conformance-timeout-factor", "--timeout-factor"), WAITS, dest="timeout_factor", type=float,
            default=1.0, metavar="F", help="multiply the kit's own waits (slow machines); the contract's never change"),
    _option(("--conformance-startup-timeout", "--startup-timeout"), WAITS, dest="startup_timeout", type=float,
            default=None, metavar="S", help="seconds for the executor to become ready (default 120)"),
]  # fmt: skip

#: The header option's names (its values are tokens: the reports leave them out).
HEADER_FLAGS = next(option.flags for option in TARGET_OPTIONS if option.kwargs["dest"] == "executor_header")


#: The options of a certification (not of the benchmark): what to run, and the reports.
RUN_OPTIONS: list[Option] = [
    _option(("--conformance-requirement", "--requirement"), SELECTION, dest="requirement", action="append",
            default=[], metavar="IDS",
            help="run and judge only these requirements (repeatable; comma-separated IDs, READY-* globs, or areas)"),
    _option(("--conformance-skip-requirement", "--skip-requirement"), SELECTION, dest="skip_requirement",
            action="append", default=[], metavar="IDS", help="leave these requirements out (as above)"),
    _option(("--conformance-profile", "--profile"), SELECTION, dest="profile", default=Profile.FULL.value,
            choices=[p.value for p in Profile], metavar="PROFILE",
            help="what the verdict is for: core (what a manager needs), full (the whole executor contract; default) "
            "or pool (a pool through its manager: executor-conformance pool)"),
    _option(("--conformance-pool-type", "--pool-type"), SELECTION, dest="pool_type", default=None, metavar="TYPE",
            help="(a pool) the executor type whose sessions are tried (default: the language's name, if the pool has "
            "that type, or the pool's only type)"),
    _option(("--conformance-skip-feature", "--skip-feature"), SELECTION, dest="skip_feature", action="append",
            default=[], choices=sorted(FEATURES), metavar="FEATURE",
            help=f"certify without an optional feature ({', '.join(sorted(FEATURES))})"),
    _option(("--conformance-report-dir", "--report-dir"), REPORTS, dest="report_dir", default="results",
            metavar="DIR", help="where the reports go: results.json, junit.xml, summary.md, report.html, badge.json "
                 "(default results)"),
    _option(("--conformance-strict", "--strict"), REPORTS, dest="conformance_strict", action="store_true",
            help="SHOULD failures fail the run too (exit 1)"),
]  # fmt: skip


def add_target_options(add: Callable[..., Any], *, canonical_only: bool = False) -> None:
    """Register the target options with ``add`` (argparse's add_argument or pytest's addoption)."""
    for option in TARGET_OPTIONS:
        add(*(option.flags[:1] if canonical_only else option.flags), **option.kwargs)


class KitParser(argparse.ArgumentParser):
    """argparse, with the kit's exit code for a usage error (4, as pytest's own)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(Exit.USAGE, f"{self.prog}: error: {message}{self._did_you_mean(message)}\n")

    def _did_you_mean(self, message: str) -> str:
        """For "unrecognized arguments: --requirment X", the option meant (Python 3.11's argparse
        does not say)."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        known = [flag for action in self._actions for flag in action.option_strings]
        typed = [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("--")]
        close = [match for word in typed for match in difflib.get_close_matches(word, known, n=1)]
        return f" (did you mean {', '.join(close)}?)" if close else ""


class OptionError(ValueError):
    """An option has a value the kit cannot use; the message says which and why."""


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


def count_of(value: str, option: str) -> int | None:
    """'1024' or 'none' as a positive count (None for no limit)."""
    text = limit(value)
    if text is None:
        return None
    if not text.isdigit():
        raise OptionError(f"{option} {value!r}: use a whole number such as 1024, or none")
    return int(text)


def headers_from(values: list[str]) -> dict[str, str]:
    """'Name: value' options as a dict of headers, or OptionError saying which one is malformed."""
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise OptionError(f"--header {value!r}: use 'Name: value', e.g. 'Authorization: Bearer TOKEN'")
        headers[name.strip()] = text.strip()
    return headers


def kind_from(option: Callable[[str], Any]) -> Kind:
    """The kind of target the options name (``targets.spec.KINDS``); OptionError if they name several."""
    try:
        return kind_chosen(option)
    except KindError as exc:
        raise OptionError(str(exc)) from None


def spec_from(option: Callable[[str], Any]) -> TargetSpec:
    """The target the options describe, parsed and checked once; OptionError says what is wrong."""
    headers = headers_from(option("executor_header"))
    kind = kind_from(option)
    if headers and not kind.takes_headers:
        raise OptionError("--header goes with --url: the kit starts other targets itself")
    cpus = limit(option("cpus"))
    try:
        language = languages.load(option("language"))
    except languages.PackError as exc:
        raise OptionError(f"--language {exc}") from None
    return TargetSpec(
        kind=kind.kind,
        timeouts=timeouts_from(option),
        settings=settings_from(option),
        subject=kind.parse(option(kind.option)),
        workspace=Workspace.MISSING if option("no_workspace") else Workspace.KIT,
        env=tuple((key, value) for key, _, value in (p.partition("=") for p in option("executor_env")) if key and _),
        headers=tuple(headers.items()),
        memory=limit(option("memory")),
        cpus=float(cpus) if cpus else None,
        pids=count_of(option("pids"), "--pids"),
        process_memory_limit=size_in_bytes(option("process_memory_limit"), "--process-memory-limit"),
        workspace_mounted=option("workspace_mounted"),
        destructive=option("allow_destructive"),
        memory_limited=option("memory_limited"),
        language=language,
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
    given = {name: option(name) for name, setting in CHOSEN.items() if setting.option}  # option dest: the field
    return kind_from(option).settings.with_values(**given)
