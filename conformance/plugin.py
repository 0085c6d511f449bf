"""The pytest plugin: targets, requirement markers, outcomes, reports and the verdict.

Registered as the ``executor_conformance`` pytest11 entry point. It stays inert unless the
collected tests carry ``conformance_requirement`` markers (that is, unless the suite is being run), so
installing the kit does not change anyone else's test runs.

- Options choose the target (``--executor-image``, ``--executor-url``, ``--executor-command``,
  or by default the bundled reference executor as a local process) and what it can be tested for.
- Collection fails on an unknown requirement ID or on a MUST that no test proves.
- Feature and capability skips are decided here, before a test runs, and each says why.
- Every test's outcome is recorded; at the end the report is folded, written and summarised.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import __version__, catalogue
from .catalogue import Area, Level, Need
from .client import ExecutorClient
from .languages import MissingSnippetError
from .manager import Manager
from .options import RUN_OPTIONS, OptionError, add_target_options, kind_from, spec_from
from .outcomes import (
    INCONCLUSIVE_ON,
    NEEDS_MARK,
    REQUIREMENT_MARK,
    SETUP_SECONDS,
    SKIP_KIND,
    deferred,
    needs,
    not_run,
    requirement_ids,
    violation_in,
)
from .recording import CiPage, Recorder
from .render import check_writable, to_github_annotations, to_terminal
from .results import Exit, SkipKind, TestRecord
from .session import FEATURES_FROM_INFO, TargetSession
from .settings import env_value, settings_report
from .targets import Capabilities, Target, TargetSpec
from .targets.spec import KINDS
from .timeouts import KitTimeouts
from .violations import Inconclusive

#: Below this verbosity (pytest.ini's -q and one more), the live lines leave out what passed.
QUIET = -1
#: Areas in the order the suite runs them: harmless first, destructive last.
_CERTIFICATION_KEY = pytest.StashKey["Certification"]()
_CI_PAGE_KEY = pytest.StashKey[CiPage]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Only the prefixed names (``--executor-...``, ``--conformance-...``): a user's own suite keeps its own."""
    group = parser.getgroup("executor-conformance", "executor conformance kit")
    add_target_options(group.addoption, canonical_only=True)
    for option in RUN_OPTIONS:
        group.addoption(option.canonical, **option.kwargs)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The start header of a certification (shown under the kit's own -q too); under GitHub
    Actions, workflow commands stopped first (``CiPage``)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    header = _header(session.config)
    if header:
        page = session.config.stash[_CI_PAGE_KEY] = CiPage.from_env(os.environ)
        header = [page.stop, *header] if page.annotations else header
    if reporter is not None:
        for line in header:
            reporter.write_line(line)


def _header(config: pytest.Config) -> list[str]:
    """The kit and contract versions, the target, the settings; none for a user's own pytest run."""
    suite = Path(__file__).with_name("suite")
    target_given = any(config.getoption(kind.option) for kind in KINDS.values())
    if config.rootpath != suite and not target_given:
        return []  # a user's own pytest run, not a certification
    try:
        spec = spec_from(config.getoption)
    except OptionError:
        return []  # said when the run starts
    subject = " ".join(spec.subject) if isinstance(spec.subject, tuple) else spec.subject or "the reference executor"
    if config.getoption("profile") == catalogue.Profile.POOL:
        return [
            f"executor-conformance {__version__}, pool contract {catalogue.POOL_CONTRACT_VERSION}",
            f"target: the pool whose manager is at {subject}",
        ]
    rows = settings_report(spec.settings, spec.source)
    settings = ", ".join(
        f"{row['variable']}={env_value(row['value'])}"
        for row in rows
        if row["value"] is not None and row["variable"] not in ("PORT", "WORKSPACE_FOLDER")  # chosen at start
    )
    return [
        f"executor-conformance {__version__}, contract {catalogue.CONTRACT_VERSION}",
        f"target: {spec.kind.value} {subject}",
        f"settings ({spec.source.label}): {settings}",
    ]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REQUIREMENT_MARK}(id): the contract requirement this test proves")
    config.addinivalue_line("markers", f"{NEEDS_MARK}(need): what the test needs of the target ({', '.join(Need)})")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    suite = [item for item in items if item.get_closest_marker(REQUIREMENT_MARK)]
    if not suite:
        return
    proven: set[str] = set()
    for item in suite:
        for rid in requirement_ids(item):
            try:
                catalogue.get(rid)
            except catalogue.UnknownRequirementError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc.args[0]}") from None
            proven.add(rid)
        try:
            needs(item)
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}; valid needs: {', '.join(Need)}") from None
    unproven = [r.id for r in catalogue.REQUIREMENTS.values() if r.level is Level.MUST and r.id not in proven]
    if unproven:
        raise pytest.UsageError(f"no test proves these MUST requirements: {', '.join(unproven)}")

    def order(item: pytest.Item) -> int:
        ids = requirement_ids(item)
        return catalogue.get(ids[0]).area.order if ids else len(Area)

    items.sort(key=order)  # stable: within an area, the file's order
    # Every test of each requirement, before any selection: one that does not run leaves its requirement not run.
    cases: dict[str, list[str]] = {}
    for item in suite:
        for rid in requirement_ids(item):
            cases.setdefault(rid, []).append(item.nodeid)
    selection = _select_requirements(config, items)
    try:
        kind = kind_from(config.getoption)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("profile") == catalogue.Profile.POOL and kind.started_by_kit:
        raise pytest.UsageError(
            "a pool is certified through its manager: executor-conformance pool --manager URL --token TOKEN"
        )
    report_dir = Path(config.getoption("report_dir"))
    try:
        check_writable(report_dir)
    except OSError as exc:
        raise pytest.UsageError(f"--report-dir {report_dir} cannot be written: {exc.strerror or exc}") from None
    recorder = Recorder(cases, selection, ci_page=config.stash.get(_CI_PAGE_KEY, CiPage()))
    certification = config.stash[_CERTIFICATION_KEY] = Certification(config, recorder)
    config.pluginmanager.register(certification, "executor-conformance-certification")
    _interrupt_on_sigterm(config)


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a CI job's timeout, ``timeout``, ``docker stop``) ends the run as Ctrl-C does: the
    reports are written with the verdict ``interrupted`` and the executor is stopped (before, the
    process died with no report, and the executor's container ran on). Restored when pytest ends."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals go to the main thread only: an embedding caller keeps its own handling
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: the reports and the executor's stop are not cut short
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def _select_requirements(config: pytest.Config, items: list[pytest.Item]) -> frozenset[str] | None:
    """Keep the tests of the requirements of ``--profile`` that ``--requirement`` names (all,
    without it), less those of ``--skip-requirement``; a test of several requirements goes if any
    of them is skipped. Returns the requirements the run judges (None: the whole profile)."""
    try:
        selection = catalogue.Selection.of(
            config.getoption("requirement"), config.getoption("skip_requirement"), config.getoption("profile")
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not selection:
        return None

    def wanted(item: pytest.Item) -> bool:
        ids = requirement_ids(item)
        return not ids or selection.keeps(ids)  # no IDs: not a test of the suite, the user's own

    kept = [item for item in items if wanted(item)]
    dropped = [item for item in items if not wanted(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    return selection.members()


class Certification:
    """The plugin of one certification: registered when the suite is collected (``pytest_collection_
    modifyitems``), so its hooks run only then. It holds the target (``TargetSession``) and the
    outcomes (``Recorder``), and hands each what the other knows."""

    def __init__(self, config: pytest.Config, recorder: Recorder) -> None:
        self.config = config
        self.session = TargetSession(config)
        self.recorder = recorder

    # Innermost (trylast): registered after pytest's own plugins, these would otherwise wrap them, and a
    # skip before the yield would cut the set-up of theirs (the logging plugin's) that its teardown needs.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        """Before the fixtures: a test the target cannot run is skipped, saying why."""
        if item.get_closest_marker(REQUIREMENT_MARK):
            reason = self.session.skip_reason(item)
            if reason is not None:
                item.stash[SKIP_KIND] = reason[0]
                pytest.skip(reason[1])
        with _not_run_without_a_snippet():
            return (yield)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        later = deferred(item)
        try:
            with _not_run_without_a_snippet(), _skipped_when_inconclusive(item):
                result = yield
            if later:
                violation = later[0]  # the test's own checks passed: the first other one it saw
                violation.after_own_checks = True
                raise violation
            return result
        finally:
            later.clear()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        violation = violation_in(call.excinfo.value) if report.failed and call.excinfo is not None else None
        if violation is not None:
            report.longrepr = violation.message  # the evidence, not the kit's traceback
        if not item.get_closest_marker(REQUIREMENT_MARK):
            return report
        if report.when == "setup" and report.passed:
            item.stash[SETUP_SECONDS] = report.duration
        elif report.when == "call" or not report.passed:
            record = self.recorder.record(item, call, report, self.session.log_tail)
            if report.when != "teardown":
                self._live_line(item, record)
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        """Suite tests print no dots: ``_live_line`` writes one line each."""
        records = self.recorder.records
        if report.nodeid not in records or report.when == "teardown":
            return None
        return records[report.nodeid].outcome, "", ""

    def _live_line(self, item: pytest.Item, record: TestRecord) -> None:
        """Progress: an area heading when the area changes, then the test's outcome."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        # The suite's pytest.ini is -q already: a -q of the user's (the kit's own, or pytest's after --)
        # prints what did not pass, only.
        if reporter is None or (record.outcome == "passed" and self.config.get_verbosity() < QUIET):
            return
        area = catalogue.get(record.requirements[0]).area
        if area != self.recorder.current_area:
            self.recorder.current_area = area
            reporter.write_line(f"-- {area} --")
        labels = ", ".join(catalogue.get(rid).label for rid in record.requirements)
        other = record.failed_requirement if record.outcome == "failed" else None
        if other is not None and other not in record.requirements:  # failed on another requirement
            own = "its own checks passed" if record.own_passed else "its own not reached"
            labels = f"{catalogue.get(other).label} (in a test of {labels}: {own})"
        word = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[record.outcome]
        line = f"  {word:<4} {labels} {item.name} ({record.duration_s:.2f} s)"
        if record.outcome == "skipped":
            line += f": {record.reason}"
        elif record.outcome == "failed":
            line += f": {(record.reason or '').splitlines()[0]}"
        # Colour only on a terminal, and none under NO_COLOR: pytest's terminal writer decides.
        colour = {"passed": "green", "failed": "red", "skipped": "yellow"}[record.outcome]
        reporter.write_line(line, **{colour: True})

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C, and ``pytest.exit``, which comes here too.

        The kit's own exit is said by the kit's summary, plainly: pytest's reporter, which has just
        kept it to show as a crash (``! _pytest.outcomes.Exit: ... !``), is told to forget it."""
        self.recorder.interrupted = excinfo.errisinstance(KeyboardInterrupt)
        # pytest reports an exit with no code, or with its own code for an interruption, as a crash
        # whatever its reporter holds: only the kit's coded exits are taken from it.
        codes = (None, pytest.ExitCode.INTERRUPTED)
        if excinfo.errisinstance(pytest.exit.Exception) and getattr(excinfo.value, "returncode", None) not in codes:
            self.recorder.exit_message = str(excinfo.value)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter._keyboardinterrupt_memo = None  # pytest < 9.2 (pinned): the memo it prints

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return
        target, recorder = self.session, self.recorder
        if target.startup_record is not None:
            recorder.records[target.startup_record.nodeid] = target.startup_record
        configuration = {
            "timeouts": target.timeouts.__dict__,
            "settings": target.settings_table(),
            "profile": target.profile.value,
            "language": target.spec.language.describe(),
        }
        try:
            session.exitstatus = recorder.finish(
                self.config,
                target=target.described(),
                configuration=configuration,
                features=target.features_report(),
                error=target.target_error,
                profile=target.profile,
            )
        finally:
            target.close()
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if recorder.exit_message and reporter is not None:  # pytest shows no summary for some exit codes: said here
            reporter.write_line(recorder.exit_message)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        recorder = self.recorder
        if recorder.report is None:
            return
        terminalreporter.section("executor conformance")
        if recorder.ci_page.annotations:  # workflow commands, read by GitHub Actions from the log
            terminalreporter.write(recorder.ci_page.annotated(to_github_annotations(recorder.report)))
        terminalreporter.write_line(to_terminal(recorder.report))
        for kind, path in recorder.report_paths.items():
            terminalreporter.write_line(f"{kind:>8}: {path}")


@contextlib.contextmanager
def _skipped_when_inconclusive(item: pytest.Item) -> Iterator[None]:
    """A time bound missed twice on a loaded machine: the test is skipped as inconclusive, on
    the requirement whose bound it was (``conformance.pace``)."""
    try:
        yield
    except Inconclusive as exc:
        item.stash[SKIP_KIND] = SkipKind.INCONCLUSIVE
        item.stash[INCONCLUSIVE_ON] = exc.requirement.id
        pytest.skip(f"{exc.requirement.label} {exc.message}")


@contextlib.contextmanager
def _not_run_without_a_snippet() -> Iterator[None]:
    """Code the language pack does not give: the test is not run, saying which snippet is missing."""
    try:
        yield
    except MissingSnippetError as exc:
        not_run(str(exc))


# -- fixtures ---------------------------------------------------------------------------------


def _session(request: pytest.FixtureRequest) -> TargetSession:
    """The certification's target, for a fixture of the suite."""
    certification = request.config.stash.get(_CERTIFICATION_KEY, None)
    if certification is None:
        raise pytest.UsageError("the executor fixtures belong to tests marked with a requirement")
    return certification.session


@pytest.fixture(scope="session")
def executor_target(request: pytest.FixtureRequest) -> Target:
    """The executor under test (started on first use, stopped at the end of the run)."""
    return _session(request).ensure_target()


@pytest.fixture(scope="session")
def target_spec(request: pytest.FixtureRequest) -> TargetSpec:
    """The executor under test as the options describe it (to start a second one like it)."""
    return _session(request).spec


@pytest.fixture(scope="session")
def capabilities(executor_target: Target) -> Capabilities:
    return executor_target.capabilities


@pytest.fixture(scope="session")
def kit_timeouts(request: pytest.FixtureRequest) -> KitTimeouts:
    return _session(request).timeouts


@pytest.fixture(scope="session")
def session_client(request: pytest.FixtureRequest, executor_target: Target) -> ExecutorClient:
    """The run's client, bound to no requirement: for observations made before any test (bind it)."""
    return _session(request).client()


@pytest.fixture
def executor(request: pytest.FixtureRequest, executor_target: Target) -> ExecutorClient:
    """A client bound to the test's requirement, talking to a ready and usable executor.

    If an earlier test left the executor unusable (never ready again, or failing a trivial
    execute), a managed target is started afresh; an executor the kit did not start makes the
    test "not run" instead of blaming it.
    """
    session = _session(request)
    client = session.client().bound_to(requirement_ids(request.node)[0])
    if not client.usable():
        if not session.spec.started_by_kit:
            request.node.stash[SKIP_KIND] = SkipKind.BROKEN_BY_EARLIER
            pytest.skip("the executor was not usable before this test began (an earlier test left it so)")
        session.restart_target()
        client = session.client().bound_to(requirement_ids(request.node)[0])
    client.deferred = deferred(request.node)  # expect(later=True) keeps its violations for the plugin
    return client


@pytest.fixture(scope="session")
def pool_type(request: pytest.FixtureRequest) -> str:
    """The executor type whose sessions a pool's certification tries (``--pool-type``, or from GET
    /status: the language's name if the pool has that type, or its only type)."""
    session = _session(request)
    chosen: str | None = request.config.getoption("pool_type")
    if chosen:
        return chosen
    # Read, not judged: a /status that breaks the contract is POOL-4's to fail, not every test's.
    counts = session.pool_operator().request("GET", "/status").json
    counts = counts.get("available_by_type") if isinstance(counts, dict) else None
    language = session.spec.language.name
    if not isinstance(counts, dict) or not counts or language in counts:
        return language
    if len(counts) == 1:
        return str(next(iter(counts)))
    # The command line's to fix, found once the pool answered: the run ends as one whose executor
    # declares another language does (an error, no requirement judged).
    session.target_error = (
        f"the pool's types are {', '.join(map(str, counts))}, none named {language!r} (the language's): "
        "name the type to certify with --pool-type, and its language with --language"
    )
    pytest.exit(f"executor-conformance: {session.target_error}", returncode=Exit.ERROR)


@pytest.fixture
def manager(request: pytest.FixtureRequest, pool_type: str) -> Iterator[Manager]:
    """A pool's manager, as its operator, for a test of the pool contract; whatever executor the
    test was handed and did not give back is deallocated when it ends, and must be taken back."""
    operator = _session(request).pool_operator().bound_to(requirement_ids(request.node)[0])
    operator.deferred = deferred(request.node)
    pool = Manager(operator, pool_type)
    try:
        yield pool
    finally:
        kept = pool.give_back()
        if kept:
            raise operator.fail(
                "every executor the kit was handed taken back by POST /deallocate/{id}",
                f"not taken back: {', '.join(kept)}",
                requirement="POOL-6",
            )


@pytest.fixture(scope="session")
def features_declared(request: pytest.FixtureRequest, executor_target: Target) -> bool:
    """True when the executor listed its features in GET /info (rather than their being assumed)."""
    return _session(request).feature_source == FEATURES_FROM_INFO


@pytest.fixture(scope="session")
def persistent_folders(request: pytest.FixtureRequest, executor_target: Target) -> tuple[str, ...]:
    """Folders that keep user files across sessions on purpose: from /info and --persistent-folder."""
    return tuple(_session(request).persistent_folders)


@pytest.fixture(scope="session")
def declared_features(request: pytest.FixtureRequest, executor_target: Target) -> frozenset[str]:
    """The optional features in force: declared in /info (or assumed), less --skip-feature."""
    return frozenset(_session(request).features)
