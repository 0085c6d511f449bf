"""One certification: the target, the features in force, and what every test did.

The pytest plugin (``plugin.py``) keeps one ``ConformanceRun`` per session and calls it from its
hooks and fixtures; this module holds the state and the decisions (which target, which skips,
how an outcome is recorded), and never registers a hook itself.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from . import catalogue
from .catalogue import FEATURES, Need, Profile
from .client import ExecutorClient, Stalls
from .options import HEADER_FLAGS, SETTING_OPTIONS, OptionError, TargetSpec, short_flag, spec_from
from .render import write_reports
from .results import Exit, Report, SkipKind, TestRecord, build_report, exit_code
from .settings import DECLARABLE, declared_settings, env_value, settings_report
from .targets import NeverReadyError, Target, TargetError
from .timeouts import KitTimeouts
from .violations import Violation, cut

__all__ = [
    "FEATURES_FROM_INFO",
    "INCONCLUSIVE_ON",
    "NEEDS_MARK",
    "REQUIREMENT_MARK",
    "SETUP_SECONDS",
    "SKIP_KIND",
    "CiPage",
    "ConformanceRun",
    "NotApplicable",
    "NotRun",
    "deferred",
    "describe",
    "needs",
    "not_applicable",
    "not_run",
    "requirement_ids",
    "violation_in",
]

#: Why a test was skipped, set on the item by whoever skips it (read when the outcome is recorded).
SKIP_KIND = pytest.StashKey[SkipKind]()
#: Violations of other requirements than a test's own checks need, raised once those have passed.
DEFERRED = pytest.StashKey[list[Violation]]()
#: The requirement whose time bound a test found inconclusive (see ``conformance.pace``).
INCONCLUSIVE_ON = pytest.StashKey[str]()
#: How long a test's set-up took when it passed (waiting for a usable executor, say): part of its time.
SETUP_SECONDS = pytest.StashKey[float]()


class NotApplicable(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The situation the requirement is about never arose (an allowed choice): not a gap."""


class NotRun(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The kit could not check the requirement on this target: a gap in the certification."""


def deferred(item: pytest.Item) -> list[Violation]:
    """The violations ``item`` keeps until its own checks have passed (the plugin raises the first
    then): those of a requirement its own checks do not need, a SHOULD beside a MUST, say."""
    return item.stash.setdefault(DEFERRED, [])


def not_applicable(reason: str) -> NoReturn:
    """End the test: nothing to check here. Alone, its requirement is *skipped*; beside a pass, passed."""
    raise NotApplicable(reason)


def not_run(reason: str) -> NoReturn:
    """End the test: the kit could not check it here. Its requirement is *not run*, never passed."""
    raise NotRun(reason)


def skip_kind_of(call: pytest.CallInfo[None]) -> SkipKind:
    """A skip raised inside a test: not applicable only when it says so; any other skip is not run."""
    error = call.excinfo.value if call.excinfo else None
    return SkipKind.NOT_APPLICABLE if isinstance(error, NotApplicable) else SkipKind.CAPABILITY


FEATURES_FROM_INFO = "declared in GET /info"

#: The suite's markers, named after the kit so that a user's own ``requirement`` or ``needs``
#: markers stay theirs: ``@pytest.mark.conformance_requirement("HEALTH-1")``,
#: ``@pytest.mark.conformance_needs(Need.WORKSPACE)``.
REQUIREMENT_MARK, NEEDS_MARK = "conformance_requirement", "conformance_needs"


def requirement_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers(REQUIREMENT_MARK)]


def needs(item: pytest.Item) -> list[Need]:
    """What ``item`` needs of the target (its ``conformance_needs`` marks); ValueError for an unknown need."""
    return [Need(mark.args[0]) for mark in item.iter_markers(NEEDS_MARK)]


@dataclass(frozen=True)
class CiPage:
    """Where a CI service shows the run, read once from its environment. Under GitHub Actions
    (GITHUB_ACTIONS=true): an annotation per failure in the log, and the summary on the job's
    page (GITHUB_STEP_SUMMARY)."""

    annotations: bool = False
    step_summary: Path | None = None
    #: The log carries the executor's own text (responses, reasons): GitHub would run a line of
    #: it that starts with ``::`` as a workflow command. So commands are stopped from the run's
    #: first line (``stop``) and resumed with this token for the kit's annotations alone.
    resume_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiPage:
        if env.get("GITHUB_ACTIONS") != "true":
            return cls()
        summary = env.get("GITHUB_STEP_SUMMARY")
        return cls(True, Path(summary) if summary else None, secrets.token_hex(16))

    @property
    def stop(self) -> str:
        """The workflow command that stops GitHub reading the log's commands until resumed."""
        return f"::stop-commands::{self.resume_token}"

    def annotated(self, annotations: str) -> str:
        """``annotations`` between a resume and a new stop: only they are read as commands."""
        return f"::{self.resume_token}::\n{annotations}{self.stop}\n"


@dataclass(eq=False)  # registered as a pytest plugin: hashed by identity
class ConformanceRun:
    """State of one certification: the target, the declared features, the records."""

    config: pytest.Config
    records: dict[str, TestRecord] = field(default_factory=dict)
    target: Target | None = None
    target_error: str | None = None
    features: set[str] = field(default_factory=set)
    feature_source: str = ""
    #: Folders the operator keeps across sessions (ISO-2): /info's and --persistent-folder's.
    persistent_folders: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    started: float = field(default_factory=time.monotonic)
    report: Report | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    restarts_by_kit: int = 0
    target_description: dict[str, Any] | None = None
    _client: ExecutorClient | None = None
    _operator: ExecutorClient | None = None
    current_area: str = ""
    #: Every test of each requirement, as collected before any selection (requirement ID -> node IDs).
    cases: dict[str, list[str]] = field(default_factory=dict)
    #: The requirements ``--requirement`` and ``--skip-requirement`` chose (None: the whole profile).
    selection: frozenset[str] | None = None
    #: Stopped by Ctrl-C: the verdict is ``interrupted``, whatever had run.
    interrupted: bool = False
    #: The session language the executor declares in GET /info, if it does.
    declared_language: str | None = None
    #: Hangs seen so far, shared by every client of the run (a restarted target keeps them).
    stalls: Stalls = field(default_factory=Stalls)
    ci_page: CiPage = field(default_factory=CiPage)
    #: The settings (ExecutorSettings fields) whose values an executor at a URL declared in GET /info.
    declared_settings: frozenset[str] = frozenset()

    #: Why the kit ended the run early (``pytest.exit``'s message), said in the kit's summary.
    exit_message: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """A hook (the run is registered as a plugin): Ctrl-C, not ``pytest.exit``, which comes here too.

        The kit's own exit is said by the kit's summary, plainly: pytest's reporter, which has just
        kept it to show as a crash (``! _pytest.outcomes.Exit: ... !``), is told to forget it."""
        self.interrupted = excinfo.errisinstance(KeyboardInterrupt)
        # pytest reports an exit with no code, or with its own code for an interruption, as a crash
        # whatever its reporter holds: only the kit's coded exits are taken from it.
        codes = (None, pytest.ExitCode.INTERRUPTED)
        if excinfo.errisinstance(pytest.exit.Exception) and getattr(excinfo.value, "returncode", None) not in codes:
            self.exit_message = str(excinfo.value)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter._keyboardinterrupt_memo = None  # pytest < 9.2 (pinned): the memo it prints

    @functools.cached_property
    def spec(self) -> TargetSpec:
        """The target the options describe, parsed once."""
        try:
            return spec_from(self.config.getoption)
        except OptionError as exc:
            raise pytest.UsageError(str(exc)) from None

    @functools.cached_property
    def profile(self) -> Profile:
        """The profile the verdict is for (``--profile``), which also sets how strictly responses are read."""
        return Profile(self.config.getoption("profile"))

    @property
    def timeouts(self) -> KitTimeouts:
        return self.spec.timeouts

    def _make_target(self) -> Target:
        target = self.spec.target()
        target.say = self._say
        return target

    def _say(self, text: str) -> None:
        """A progress line on the terminal, past pytest's output capture."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        # The target starts inside a test's set-up, whose output pytest captures: past it.
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(f"  {text}")

    def ensure_target(self) -> Target:
        """Start the target on first use; a failure to start ends the run with the reason."""
        if self.target is not None:
            return self.target
        if self.target_error is not None:
            pytest.exit(self.target_error, returncode=Exit.ERROR)
        target = self._make_target()
        for problem in target.problems():
            self._say(f"warning: {problem}")
        try:
            target.start()
        except NeverReadyError as exc:
            # The executor serves HTTP but never says ready: READY-1 fails, nothing else can run.
            self.records["<start-up>"] = TestRecord(
                "<start-up>",
                ["READY-1"],
                "failed",
                failed_requirement="READY-1",
                reason=(
                    '[MUST READY-1] /ready never answered 200 {"ready": true}. '
                    f"Received: HTTP {exc.last.status} {exc.last.body!r}"
                ),
                evidence={"log_tail": target.logs(40)},
            )
            self.target_description = target.describe()
            pytest.exit(f"executor-conformance: {str(exc).splitlines()[0]}", returncode=Exit.NON_CONFORMANT)
        except TargetError as exc:
            self.target_error = str(exc)
            pytest.exit(f"executor-conformance: {exc}", returncode=Exit.ERROR)
        except Exception as exc:  # a fault of the kit or of its tools, not of the executor
            self.target_error = f"could not start the target: {type(exc).__name__}: {exc}"
            target.stop()
            pytest.exit(f"executor-conformance: {self.target_error}", returncode=Exit.ERROR)
        self.target = target
        self._detect_features(target)
        if self.declared_language not in (None, self.spec.language.name):
            language = self.spec.language.name
            self.target_error = (
                f"the executor declares language {self.declared_language!r} in GET /info, and the kit's code "
                f"is {language}: certify with --language NAME (a built-in pack) or --language FILE (a pack)"
            )
            self.target = None
            target.stop()
            pytest.exit(f"executor-conformance: {self.target_error}", returncode=Exit.ERROR)
        self._say_if_user_code_runs_as_root()
        return target

    def _say_if_user_code_runs_as_root(self) -> None:
        """Said at the start: SEC-1 will fail, and what the isolation requirements check, root can undo.

        One request, outside the run's client (no retry, no record), bounded by the prompt answer's
        time: an executor that cannot answer it at once is judged by the tests, not here."""
        target, language = self.target, self.spec.language
        if target is None:
            return
        try:
            code = language.code("print_json", expression=language.code("user_id"))
            answer = httpx.post(
                f"{target.base_url}/execute", json={"code": code}, headers=target.headers, timeout=self.timeouts.prompt
            )
            printed = [o.get("text", "") for o in answer.json().get("outputs", []) if o.get("name") == "stdout"]
            uid = json.loads("".join(printed).strip().splitlines()[-1])
        except Exception:
            return
        if uid == 0:
            self._say(
                "warning: user code runs as root (user id 0) in this executor: SEC-1 will fail, and what the "
                "isolation requirements check, root can undo (a local command's ISO-3 is not run without "
                "--allow-host-planting). Run user code as an unprivileged user (the reference does so when "
                "started as root)."
            )

    def restart_target(self) -> None:
        """Start a managed target afresh after an earlier test left it unusable."""
        if self.target is None or not self.spec.started_by_kit:
            return
        self.target.stop()
        self.target.startup_observations.clear()
        self.target.start()
        self.restarts_by_kit += 1
        if self._client is not None:
            self._client.close()
            self._client = None

    def client(self) -> ExecutorClient:
        """The kit's client for the current target (a new one after the target was restarted)."""
        if self._client is None:
            target = self.ensure_target()
            self._client = ExecutorClient(
                target.base_url,
                self.timeouts,
                default_execution_timeout=target.capabilities.execution_timeout,
                headers=target.headers,
                stalls=self.stalls,
                profile=self.profile,
                language=self.spec.language,
            )
        return self._client

    def pool_operator(self) -> ExecutorClient:
        """The run's client of a pool's manager (``--url``, with the manager's token among the
        headers), as its operator; no executor target is started for a pool. The sessions behind
        it are read as the ``core`` profile reads an executor: what a manager needs of any."""
        if self._operator is None:
            self._operator = ExecutorClient(
                str(self.spec.subject),
                self.timeouts,
                headers=dict(self.spec.headers),
                stalls=self.stalls,
                profile=Profile.CORE,
                language=self.spec.language,
            )
        return self._operator

    def _detect_features(self, target: Target) -> None:
        try:
            response = httpx.get(f"{target.base_url}/info", timeout=self.timeouts.request, headers=target.headers)
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("features"), list):
            self.features = {str(f) for f in body["features"]} & set(FEATURES)
            self.feature_source = FEATURES_FROM_INFO
        else:
            self.features = set(FEATURES) - {"info"}
            self.feature_source = "no GET /info: every feature but `info` assumed"
        self.features -= set(self.config.getoption("skip_feature"))
        language = body.get("language") if isinstance(body, dict) else None
        self.declared_language = language if isinstance(language, str) else None
        declared = body.get("persistent_folders") if isinstance(body, dict) else None
        folders = [str(f) for f in declared] if isinstance(declared, list) else []
        self.persistent_folders = sorted({*folders, *self.config.getoption("persistent_folder")})
        if not self.spec.started_by_kit:
            self._use_declared_settings(target, body.get("settings") if isinstance(body, dict) else None)

    def _use_declared_settings(self, target: Target, declared: Any) -> None:
        """An executor the kit did not start is certified with the settings its GET /info declares
        (INFO-1), where no option gave a value; without them, the contract's defaults are assumed,
        and the run says which options would give the real values."""
        values, unusable = declared_settings(declared)
        given = {name for name, dest in SETTING_OPTIONS.items() if self.config.getoption(dest) is not None}
        used = {name: value for name, value in values.items() if name not in given}
        if unusable:
            self._say(
                f"GET /info declares settings the kit does not use: {', '.join(unusable)}; it assumes the "
                "contract's defaults for them, unless an option gives them"
            )
        if used:
            target.capabilities.settings = target.capabilities.settings.with_values(**used)
            self.declared_settings = frozenset(used)
            shown = ", ".join(f"{variable}={env_value(values[name])}" for variable, (name, *_) in DECLARABLE.items()
                              if name in used)  # fmt: skip
            self._say(f"settings declared by the executor in GET /info, used by the kit: {shown}")
        elif not values and not unusable:
            fields = {name for name, *_ in DECLARABLE.values()}
            options = ", ".join(short_flag(dest) for name, dest in SETTING_OPTIONS.items() if name in fields)
            self._say(
                "the executor declares no settings in GET /info: the kit assumes the contract's defaults "
                f"where no option says otherwise ({options})"
            )

    def skip_reason(self, item: pytest.Item) -> tuple[SkipKind, str] | None:
        """Why ``item`` must not run against this target, if it must not."""
        if self.profile is Profile.POOL:
            return None  # a pool: no executor target, no feature nor need
        target = self.ensure_target()
        for rid in requirement_ids(item):
            feature = catalogue.get(rid).feature
            if feature is not None and feature not in self.features:
                how = (
                    "switched off with --skip-feature"
                    if feature in self.config.getoption("skip_feature")
                    else "not declared by the executor"
                )
                return SkipKind.DECLARATION, f"feature `{feature}` {how}"
        for need in needs(item):
            if not target.capabilities.has(need):
                return (SkipKind.TRUSTED if need.taken_on_trust else SkipKind.CAPABILITY), need.missing
        return None

    # -- recording ------------------------------------------------------------------------
    def record(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        ids = requirement_ids(item)
        record = self.records.setdefault(item.nodeid, TestRecord(item.nodeid, ids, "passed"))
        setup = item.stash.get(SETUP_SECONDS, 0.0) if report.when == "call" else 0.0
        record.duration_s = round(record.duration_s + setup + report.duration, 3)
        if report.skipped:
            record.outcome = "skipped"
            record.skip_kind = item.stash.get(SKIP_KIND, None) or skip_kind_of(call)
            record.failed_requirement = item.stash.get(INCONCLUSIVE_ON, None)
            error = call.excinfo.value if call.excinfo else None
            longrepr = report.longrepr
            if isinstance(error, NotRun | NotApplicable):
                record.reason = str(error.msg)  # without the exception's name, which pytest puts first
            elif isinstance(longrepr, tuple):
                record.reason = str(longrepr[2]).removeprefix("Skipped: ")
            else:
                record.reason = str(longrepr)
        elif report.failed and record.outcome != "failed":
            record.outcome = "failed"
            error = violation_in(call.excinfo.value) if call.excinfo else None
            if error is not None:
                record.failed_requirement = error.requirement.id
                record.own_passed = error.after_own_checks
                record.reason = error.message
                record.evidence = error.evidence()
            else:
                where = "while setting up" if report.when == "setup" else "in the test"
                text = describe(call.excinfo.value) if call.excinfo else str(report.longrepr)
                record.reason = f"{where}: {cut(text, 3000)}"
                record.evidence = {}
            if self.target is not None and self.spec.started_by_kit:
                record.evidence["log_tail"] = self.target.logs(40)

    def finish(self, session: pytest.Session) -> None:
        option = self.config.getoption
        target = self.target.describe() if self.target else self.target_description or self.spec.describe()
        if self.target is not None:
            target["restarted_by_kit"] = self.restarts_by_kit
        configuration = {
            "timeouts": self.timeouts.__dict__,
            "settings": settings_report(
                self.target.capabilities.settings, self.target.capabilities.settings_source, self.declared_settings
            )
            if self.target is not None
            else [],
            "profile": self.profile.value,
            "language": self.spec.language.describe(),
            "skip_features": option("skip_feature"),
            "strict": option("conformance_strict"),
            "pytest_args": _without_secrets(self.config.invocation_params.args),
        }
        features = {"active": sorted(self.features), "source": self.feature_source, "known": FEATURES}
        self.report = build_report(
            list(self.records.values()),
            target=target,
            configuration=configuration,
            features=features,
            strict=option("conformance_strict"),
            started_at=self.started_at,
            duration_s=time.monotonic() - self.started,
            error=self.target_error,
            interrupted=self.interrupted,
            cases=self.cases,
            profile=self.profile,
            selection=self.selection,
        )
        self.report_paths = write_reports(self.report, Path(option("report_dir")), self.ci_page.step_summary)
        session.exitstatus = exit_code(self.report.verdict, option("conformance_strict"))
        for client in (self._client, self._operator):
            if client is not None:
                client.close()
        if self.target is not None:
            self.target.stop()


def _without_secrets(args: Iterable[str]) -> list[str]:
    """The run's arguments as the reports show them: each header's value (a token) left out."""
    shown, after_header = [], False
    for arg in map(str, args):
        flag, equals, value = arg.partition("=")
        if after_header:
            arg = _header_shown(arg)
        elif equals and flag in HEADER_FLAGS:
            arg = f"{flag}={_header_shown(value)}"
        after_header = not after_header and arg in HEADER_FLAGS
        shown.append(arg)
    return shown


def _header_shown(header: str) -> str:
    """A header as the reports show it: its name, never its value (nothing of one without a name)."""
    name, colon, _ = header.partition(":")
    return f"{name}: <not shown>" if colon else "<not shown>"


def violation_in(error: BaseException) -> Violation | None:
    """The violation ``error`` is, or that every leaf of its group is (one requirement), else None.

    Hypothesis wraps a failure it could not reproduce on replay (a live executor under load, say)
    in an exception group: the violation inside still names the requirement that failed.
    """
    if isinstance(error, Violation):
        return error
    if isinstance(error, BaseExceptionGroup):
        leaves = [violation_in(inner) for inner in error.exceptions]
        named = {leaf.requirement.id if leaf is not None else None for leaf in leaves}
        if len(named) == 1 and None not in named:
            return leaves[0]
    return None


def describe(error: BaseException) -> str:
    """What went wrong, without the test's arguments: the leaves of an exception group, one each."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"
