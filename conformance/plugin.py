"""The pytest plugin: targets, requirement markers, outcomes, reports and the verdict.

Registered as the ``executor_conformance`` pytest11 entry point. It stays inert unless the
collected tests carry ``requirement`` markers (that is, unless the suite is being run), so
installing the kit does not change anyone else's test runs.

- Options choose the target (``--executor-image``, ``--executor-url``, ``--executor-command``,
  or by default the bundled reference executor as a local process) and what it can be tested for.
- Collection fails on an unknown requirement ID or on a MUST that no test proves.
- Feature and capability skips are decided here, before a test runs, and each says why.
- Every test's outcome is recorded; at the end the report is folded, written and summarised.
"""

from __future__ import annotations

import datetime
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import catalogue
from .catalogue import FEATURES, Level
from .client import ExecutorClient
from .render import to_terminal, write_reports
from .results import Report, SkipKind, TestRecord, build_report, exit_code
from .targets import Capabilities, NeverReadyError, ProcessTarget, Target, TargetError, UrlTarget
from .timeouts import KitTimeouts
from .violations import Violation, cut

#: Areas in the order the suite runs them: harmless first, destructive last.
AREA_ORDER = (
    "health", "ready", "info", "code", "execute", "state", "errors", "input", "output", "concurrency",
    "timeout", "restart", "schema", "crash", "security",
)  # fmt: skip

#: Capabilities a test can need (``@pytest.mark.needs(...)``) and how to provide them.
NEEDS = {
    "workspace": "the executor was not started with the kit's sample workspace "
    "(export it with `executor-conformance workspace DIR`, start the executor with it, pass --workspace-mounted)",
    "destructive": "a destructive scenario (crash, killed process): pass --allow-destructive to run it",
    "memory_limit": "no memory limit is known to bound the executor: pass --memory-limited if one does",
}

FEATURES_FROM_INFO = "declared in GET /info"

_RUN_KEY = pytest.StashKey["ConformanceRun"]()
_SKIP_KIND = pytest.StashKey[SkipKind]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("executor-conformance", "executor conformance kit")
    add = group.addoption
    add("--executor-image", "--image", dest="executor_image", help="certify a local container image")
    add("--executor-url", "--url", dest="executor_url", help="certify an executor already running at URL")
    add("--executor-command", dest="executor_command", help="certify a local command ({port} is replaced)")
    add("--executor-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the executor")
    add("--workspace-mounted", action="store_true", help="(--url) the executor runs with the kit's workspace")
    add("--no-workspace", action="store_true", help="(--image, local) do not mount the kit's workspace")
    add("--workspace-folder", default="/code", help="(--image) where the image reads its workspace")
    add("--allow-destructive", action="store_true", help="(--url) run crash and kill scenarios")
    add("--memory-limited", action="store_true", help="(--url) a memory limit bounds the executor")
    add("--memory", default="256m", help="(--image) memory limit, or 'none' (default 256m)")
    add("--process-memory-limit", default="2g", help="(local) address-space limit of each process, or 'none'")
    add("--cpus", default="0.25", help="(--image) CPU limit, or 'none' (default 0.25)")
    add("--execution-timeout", type=float, default=None, help="EXECUTION_TIMEOUT of the executor, in seconds")
    add("--max-output-bytes", type=int, default=1024 * 1024, help="MAX_OUTPUT_BYTES of the executor")
    add("--max-request-bytes", type=int, default=1024 * 1024, help="MAX_REQUEST_BYTES of the executor")
    add("--skip-feature", action="append", default=[], choices=sorted(FEATURES), help="certify without a feature")
    add("--report-dir", default="results", help="where results.json, junit.xml and summary.md go")
    add("--conformance-strict", action="store_true", help="SHOULD failures also fail the run")
    add("--timeout-factor", type=float, default=1.0, help="multiply the kit's own waits (slow machines)")
    add("--startup-timeout", type=float, default=None, help="seconds for the executor to become ready")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): the contract requirement this test proves")
    config.addinivalue_line(
        "markers", "needs(capability): a target capability the test needs (workspace, destructive, memory_limit)"
    )


def _requirement_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers("requirement")]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    suite = [item for item in items if item.get_closest_marker("requirement")]
    if not suite:
        return
    proven: set[str] = set()
    for item in suite:
        for rid in _requirement_ids(item):
            try:
                catalogue.get(rid)
            except catalogue.UnknownRequirementError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc.args[0]}") from None
            proven.add(rid)
        for mark in item.iter_markers("needs"):
            if mark.args[0] not in NEEDS:
                raise pytest.UsageError(f"{item.nodeid}: unknown need {mark.args[0]!r}; valid: {', '.join(NEEDS)}")
    unproven = [r.id for r in catalogue.REQUIREMENTS.values() if r.level is Level.MUST and r.id not in proven]
    if unproven:
        raise pytest.UsageError(f"no test proves these MUST requirements: {', '.join(unproven)}")

    def order(item: pytest.Item) -> int:
        ids = _requirement_ids(item)
        area = catalogue.get(ids[0]).area if ids else ""
        return AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)

    items.sort(key=order)  # stable: within an area, the file's order
    config.stash[_RUN_KEY] = ConformanceRun(config)


def _run(config: pytest.Config) -> ConformanceRun | None:
    return config.stash.get(_RUN_KEY, None)


# -- the run ----------------------------------------------------------------------------------


def _limit(value: str) -> str | None:
    return None if value.strip().lower() in ("none", "0", "") else value


def _bytes(value: str) -> int | None:
    """'512m', '2g', '1048576' or 'none' as a number of bytes (None for no limit)."""
    text = _limit(value)
    if text is None:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    try:
        return int(float(text[:-1]) * units[text[-1].lower()]) if text[-1].lower() in units else int(text)
    except ValueError:
        raise pytest.UsageError(f"--process-memory-limit {value!r}: use a size such as 512m or 2g, or none") from None


@dataclass
class ConformanceRun:
    """State of one certification: the target, the declared features, the records."""

    config: pytest.Config
    records: dict[str, TestRecord] = field(default_factory=dict)
    target: Target | None = None
    target_error: str | None = None
    features: set[str] = field(default_factory=set)
    feature_source: str = ""
    started_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    started: float = field(default_factory=time.monotonic)
    report: Report | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    restarts_by_kit: int = 0
    target_description: dict[str, Any] | None = None
    _client: ExecutorClient | None = None
    current_area: str = ""

    @property
    def timeouts(self) -> KitTimeouts:
        option = self.config.getoption
        timeouts = KitTimeouts().scaled(option("timeout_factor"))
        if option("startup_timeout"):
            timeouts = KitTimeouts(**{**timeouts.__dict__, "startup": option("startup_timeout")})
        if option("execution_timeout") and not option("executor_url"):
            timeouts = KitTimeouts(**{**timeouts.__dict__, "execution_timeout": option("execution_timeout")})
        return timeouts

    def _make_target(self) -> Target:
        option = self.config.getoption
        timeouts = self.timeouts
        env = dict(pair.split("=", 1) for pair in option("executor_env") if "=" in pair)
        capabilities = Capabilities(
            max_output_bytes=option("max_output_bytes"), max_request_bytes=option("max_request_bytes")
        )
        if option("executor_image"):
            from .image import ImageTarget  # testcontainers is imported only when an image is certified

            return ImageTarget(
                option("executor_image"),
                timeouts,
                memory=_limit(option("memory")),
                cpus=float(c) if (c := _limit(option("cpus"))) else None,
                workspace_folder=option("workspace_folder"),
                workspace="missing" if option("no_workspace") else "kit",
                env=env,
                capabilities=capabilities,
            )
        if option("executor_url"):
            capabilities.workspace_mounted = option("workspace_mounted")
            capabilities.destructive = option("allow_destructive")
            capabilities.memory_limited = option("memory_limited")
            capabilities.execution_timeout = option("execution_timeout") or 3.0
            return UrlTarget(option("executor_url"), timeouts, capabilities)
        command = shlex.split(option("executor_command")) if option("executor_command") else None
        return ProcessTarget(
            timeouts,
            command=command,
            env=env,
            workspace="missing" if option("no_workspace") else "kit",
            capabilities=capabilities,
            memory_limit_bytes=_bytes(option("process_memory_limit")),
        )

    def ensure_target(self) -> Target:
        """Start the target on first use; a failure to start ends the run with the reason."""
        if self.target is not None:
            return self.target
        if self.target_error is not None:
            pytest.exit(self.target_error, returncode=3)
        target = self._make_target()
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
            pytest.exit(f"executor-conformance: {str(exc).splitlines()[0]}", returncode=1)
        except TargetError as exc:
            self.target_error = str(exc)
            pytest.exit(f"executor-conformance: {exc}", returncode=3)
        except Exception as exc:  # a fault of the kit or of its tools, not of the executor
            self.target_error = f"could not start the target: {type(exc).__name__}: {exc}"
            target.stop()
            pytest.exit(f"executor-conformance: {self.target_error}", returncode=3)
        self.target = target
        self._detect_features(target)
        return target

    def restart_target(self) -> None:
        """Start a managed target afresh after an earlier test left it unusable."""
        if self.target is None or self.target.kind == "url":
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
                target.base_url, self.timeouts, default_execution_timeout=target.capabilities.execution_timeout
            )
        return self._client

    def _detect_features(self, target: Target) -> None:
        try:
            response = httpx.get(f"{target.base_url}/info", timeout=self.timeouts.request)
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

    def skip_reason(self, item: pytest.Item) -> tuple[SkipKind, str] | None:
        """Why ``item`` must not run against this target, if it must not."""
        target = self.ensure_target()
        for rid in _requirement_ids(item):
            feature = catalogue.get(rid).feature
            if feature is not None and feature not in self.features:
                how = (
                    "switched off with --skip-feature"
                    if feature in self.config.getoption("skip_feature")
                    else "not declared by the executor"
                )
                return SkipKind.DECLARATION, f"feature `{feature}` {how}"
        capabilities = target.capabilities
        have = {
            "workspace": capabilities.workspace_mounted,
            "destructive": capabilities.destructive,
            "memory_limit": capabilities.memory_limited,
        }
        for mark in item.iter_markers("needs"):
            if not have[mark.args[0]]:
                return SkipKind.CAPABILITY, NEEDS[mark.args[0]]
        return None

    # -- recording ------------------------------------------------------------------------
    def record(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        ids = _requirement_ids(item)
        record = self.records.setdefault(item.nodeid, TestRecord(item.nodeid, ids, "passed"))
        record.duration_s = round(record.duration_s + report.duration, 3)
        if report.skipped:
            record.outcome = "skipped"
            record.skip_kind = item.stash.get(_SKIP_KIND, SkipKind.NOT_APPLICABLE)
            longrepr = report.longrepr
            record.reason = str(longrepr[2]).removeprefix("Skipped: ") if isinstance(longrepr, tuple) else str(longrepr)
        elif report.failed and record.outcome != "failed":
            record.outcome = "failed"
            error = call.excinfo.value if call.excinfo else None
            if isinstance(error, Violation):
                record.failed_requirement = error.requirement.id
                record.reason = error.message
                record.evidence = error.evidence()
            else:
                where = "while setting up" if report.when == "setup" else "in the test"
                text = _describe(call.excinfo.value) if call.excinfo else str(report.longrepr)
                record.reason = f"{where}: {cut(text, 3000)}"
                record.evidence = {}
            if self.target is not None and self.target.kind != "url":
                record.evidence["log_tail"] = self.target.logs(40)

    def finish(self, session: pytest.Session) -> None:
        option = self.config.getoption
        target = self.target.describe() if self.target else self.target_description or {"error": self.target_error}
        if self.target is not None:
            target["restarted_by_kit"] = self.restarts_by_kit
        configuration = {
            "timeouts": self.timeouts.__dict__,
            "skip_features": option("skip_feature"),
            "strict": option("conformance_strict"),
            "pytest_args": list(self.config.invocation_params.args),
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
        )
        self.report_paths = write_reports(self.report, Path(option("report_dir")))
        session.exitstatus = exit_code(self.report.verdict, option("conformance_strict"))
        if self._client is not None:
            self._client.close()
        if self.target is not None:
            self.target.stop()


def _describe(error: BaseException) -> str:
    """What went wrong, without the test's arguments: the leaves of an exception group, one each."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


# -- hooks ------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    run = _run(item.config)
    if run is None or not item.get_closest_marker("requirement"):
        return
    reason = run.skip_reason(item)
    if reason is not None:
        item.stash[_SKIP_KIND] = reason[0]
        pytest.skip(reason[1])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, Violation):
        report.longrepr = call.excinfo.value.message  # the evidence, not the kit's traceback
    run = _run(item.config)
    if run is not None and item.get_closest_marker("requirement") and (report.when == "call" or not report.passed):
        run.record(item, call, report)
        if report.when != "teardown":
            _live_line(run, item, run.records[item.nodeid])
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """Suite tests print no dots: ``pytest_runtest_logreport`` writes one live line each."""
    run = _run(config)
    if run is None or report.nodeid not in run.records or report.when == "teardown":
        return None
    return run.records[report.nodeid].outcome, "", ""


def _live_line(run: ConformanceRun, item: pytest.Item, record: TestRecord) -> None:
    """Progress: an area heading when the area changes, then the test's outcome."""
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    area = catalogue.get(record.requirements[0]).area
    if area != run.current_area:
        run.current_area = area
        reporter.write_line(f"-- {area} --")
    labels = ", ".join(catalogue.get(rid).label for rid in record.requirements)
    word = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[record.outcome]
    line = f"  {word:<4} {labels} {item.name} ({record.duration_s:.2f} s)"
    if record.outcome == "skipped":
        line += f": {record.reason}"
    elif record.outcome == "failed":
        line += f": {(record.reason or '').splitlines()[0]}"
    reporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = _run(session.config)
    if run is None or session.config.option.collectonly:
        return
    run.finish(session)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = _run(config)
    if run is None or run.report is None:
        return
    terminalreporter.section("executor conformance")
    terminalreporter.write_line(to_terminal(run.report))
    for kind, path in run.report_paths.items():
        terminalreporter.write_line(f"{kind:>8}: {path}")


# -- fixtures ---------------------------------------------------------------------------------


def _run_or_fail(request: pytest.FixtureRequest) -> ConformanceRun:
    run = _run(request.config)
    if run is None:
        raise pytest.UsageError("the executor fixtures belong to tests marked with a requirement")
    return run


@pytest.fixture(scope="session")
def executor_target(request: pytest.FixtureRequest) -> Target:
    """The executor under test (started on first use, stopped at the end of the run)."""
    return _run_or_fail(request).ensure_target()


@pytest.fixture(scope="session")
def capabilities(executor_target: Target) -> Capabilities:
    return executor_target.capabilities


@pytest.fixture(scope="session")
def kit_timeouts(request: pytest.FixtureRequest) -> KitTimeouts:
    return _run_or_fail(request).timeouts


@pytest.fixture
def executor(request: pytest.FixtureRequest, executor_target: Target) -> ExecutorClient:
    """A client bound to the test's requirement, talking to a ready and usable executor.

    If an earlier test left the executor unusable (never ready again, or failing a trivial
    execute), a managed target is started afresh; an executor the kit did not start makes the
    test "not run" instead of blaming it.
    """
    run = _run_or_fail(request)
    client = run.client().bound_to(_requirement_ids(request.node)[0])
    if not client.usable():
        if executor_target.kind == "url":
            request.node.stash[_SKIP_KIND] = SkipKind.BROKEN_BY_EARLIER
            pytest.skip("the executor was not usable before this test began (an earlier test left it so)")
        run.restart_target()
        client = run.client().bound_to(_requirement_ids(request.node)[0])
    return client


@pytest.fixture(scope="session")
def features_declared(request: pytest.FixtureRequest, executor_target: Target) -> bool:
    """True when the executor listed its features in GET /info (rather than their being assumed)."""
    return _run_or_fail(request).feature_source == FEATURES_FROM_INFO


@pytest.fixture(scope="session")
def declared_features(request: pytest.FixtureRequest, executor_target: Target) -> frozenset[str]:
    """The optional features in force: declared in /info (or assumed), less --skip-feature."""
    return frozenset(_run_or_fail(request).features)
