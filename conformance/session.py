"""The target of one certification: started once on first use (and again when a test left it
unusable), what it declares (its features, language, settings), the run's clients to it, and
which tests it cannot run. The plugin (``plugin.py``) holds one; the outcomes are ``recording``'s.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from . import catalogue
from .catalogue import FEATURES, Profile
from .client import ExecutorClient, Stalls
from .options import OptionError, spec_from
from .outcomes import needs, requirement_ids
from .results import Exit, SkipKind, TestRecord
from .settings import CHOSEN, DECLARABLE, declared_settings, env_value, settings_report
from .targets import NeverReadyError, Target, TargetError, TargetSpec
from .timeouts import KitTimeouts

__all__ = ["FEATURES_FROM_INFO", "TargetSession"]

FEATURES_FROM_INFO = "declared in GET /info"


@dataclass(eq=False)
class TargetSession:
    """The executor under test for one run, and what the kit learnt of it."""

    config: pytest.Config
    target: Target | None = None
    #: Why the target could not be used: the run ends in error, with this said.
    target_error: str | None = None
    #: The target as the reports name it, kept when it failed to start (READY-1).
    target_description: dict[str, Any] | None = None
    #: READY-1's failure, when the executor answered HTTP but never said ready.
    startup_record: TestRecord | None = None
    features: set[str] = field(default_factory=set)
    feature_source: str = ""
    #: Folders the operator keeps across sessions (ISO-2): /info's and --persistent-folder's.
    persistent_folders: list[str] = field(default_factory=list)
    #: The session language the executor declares in GET /info, if it does.
    declared_language: str | None = None
    #: The settings (ExecutorSettings fields) whose values an executor at a URL declared in GET /info.
    declared_settings: frozenset[str] = frozenset()
    restarts_by_kit: int = 0
    #: Hangs seen so far, shared by every client of the run (a restarted target keeps them).
    stalls: Stalls = field(default_factory=Stalls)
    _client: ExecutorClient | None = None
    _operator: ExecutorClient | None = None

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

    def say(self, text: str) -> None:
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
        target = self.spec.target()
        target.say = self.say
        for problem in target.problems():
            self.say(f"warning: {problem}")
        try:
            target.start()
        except NeverReadyError as exc:
            # The executor serves HTTP but never says ready: READY-1 fails, nothing else can run.
            self.startup_record = TestRecord(
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
            self.say(
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
            self._client = ExecutorClient.of_target(
                target, self.timeouts, stalls=self.stalls, profile=self.profile, language=self.spec.language
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
        given = {name for name, setting in CHOSEN.items() if setting.option and self.config.getoption(name) is not None}
        used = {name: value for name, value in values.items() if name not in given}
        if unusable:
            self.say(
                f"GET /info declares settings the kit does not use: {', '.join(unusable)}; it assumes the "
                "contract's defaults for them, unless an option gives them"
            )
        if used:
            target.capabilities.settings = target.capabilities.settings.with_values(**used)
            self.declared_settings = frozenset(used)
            shown = ", ".join(
                f"{setting.variable}={env_value(used[setting.field])}"
                for setting in DECLARABLE.values()
                if setting.field in used
            )
            self.say(f"settings declared by the executor in GET /info, used by the kit: {shown}")
        elif not values and not unusable:
            options = ", ".join(setting.flags[1] for setting in DECLARABLE.values() if setting.option)
            self.say(
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

    def log_tail(self) -> str | None:
        """The executor's last log lines, for a failure's evidence, when the kit started it."""
        return self.target.logs(40) if self.target is not None and self.spec.started_by_kit else None

    # -- what the reports say of the target ------------------------------------------------
    def described(self) -> dict[str, Any]:
        """The target as the report names it: as started, as it failed to start, or as the options say."""
        if self.target is None:
            return self.target_description or self.spec.describe()
        return {**self.target.describe(), "restarted_by_kit": self.restarts_by_kit}

    def settings_table(self) -> list[dict[str, Any]]:
        """The report's table of settings (none when no target ran)."""
        if self.target is None:
            return []
        capabilities = self.target.capabilities
        return settings_report(capabilities.settings, capabilities.settings_source, self.declared_settings)

    def features_report(self) -> dict[str, Any]:
        return {"active": sorted(self.features), "source": self.feature_source, "known": FEATURES}

    def close(self) -> None:
        """Close the run's clients and stop the target (safe to call twice)."""
        for client in (self._client, self._operator):
            if client is not None:
                client.close()
        self._client = self._operator = None
        if self.target is not None:
            self.target.stop()
