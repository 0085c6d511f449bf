"""Fixtures shared by the suite's modules (the target and client fixtures are in the plugin)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from conformance.client import ExecutorClient, answer_said, has_status, status_of
from conformance.outcomes import not_run, requirement_ids
from conformance.pace import Timing
from conformance.targets import (
    Capabilities,
    StartupTimeout,
    Target,
    TargetError,
    TargetSpec,
    Workspace,
    start_to_ready,
)
from conformance.targets.readiness import say_on_stderr
from conformance.violations import Exchange

__all__ = [
    "LONGEST_DEFAULT_TO_WAIT",
    "Deadline",
    "Siblings",
    "StartUpLoading",
    "judge_default_timeout",
    "observed_once",
    "run_past_its_timeout",
    "started_sibling",
    "timed_out_in_time",
    "watch_workspace_load",
]

T = TypeVar("T")

#: A default EXECUTION_TIMEOUT longer than this is not waited for when a per-request one works.
LONGEST_DEFAULT_TO_WAIT = 30.0
#: Code that sleeps this many times the default timeout must be cut; this many times, not.
PAST_THE_DEFAULT, WITHIN_THE_DEFAULT = 1.3, 0.5
#: The behaviour every timeout scenario needs (a key of the run's stalls).
CUTS_CODE_AT_ITS_TIMEOUT = "code past its timeout is cut"


def run_past_its_timeout(
    executor: ExecutorClient, code: str, send: float | None, seconds: float
) -> tuple[dict[str, Any], float]:
    """Run ``code``, which outlives its timeout; the response body and the seconds it took.

    ``send``: the timeout sent (None: the default); ``seconds``: the one in force. The answer is
    waited for until the contract's bound (TIMEOUT-1: the timeout + 5 s) and a little grace.
    None by then is a hang, TIMEOUT-1's violation whichever test met it, and the evidence for
    every later scenario that needs timeouts to fire: each ends at once, TIMEOUT-1's own test
    failed with that evidence, any other *not run*, instead of waiting out the hang again.
    """
    stalled = executor.stalls.get(CUTS_CODE_AT_ITS_TIMEOUT)
    if stalled is not None:
        if executor.requirement == stalled.requirement.id:
            raise stalled
        not_run(f"the executor did not cut code past its timeout ({stalled.requirement.label}: {stalled.received})")
    bound = seconds + executor.timeouts.timeout_slack
    started = time.monotonic()
    exchange = executor.execute_when_free(code, send, client_timeout=bound + executor.timeouts.grace)
    elapsed = time.monotonic() - started
    if exchange.timed_out:
        hang = executor.fail(f'"status": "timeout" within {bound:.1f} s', exchange.response_line, exchange, "TIMEOUT-1")
        raise executor.stalls.record(CUTS_CODE_AT_ITS_TIMEOUT, hang)
    return executor.expect_execute_response(exchange), elapsed


def timed_out_in_time(
    executor: ExecutorClient,
    code: str,
    send: float | None,
    seconds: float,
    *,
    bound: float | None = None,
    requirement: str | None = None,
) -> tuple[dict[str, Any], float, Exchange | None]:
    """Run ``code``, which outlives its timeout (``send``, ``seconds``: see ``run_past_its_timeout``):
    it must end ``timeout``, and within ``bound`` (default: TIMEOUT-1's, the timeout + 5 s), a
    bound judged on the executor's time (``conformance.pace``: a late answer is observed again).
    The first observation's body, seconds and exchange."""
    bound = seconds + executor.timeouts.timeout_slack if bound is None else bound
    expected = f'"status": "timeout" within {bound:.1f} s'

    def observe() -> tuple[dict[str, Any], float, Exchange | None]:
        body, elapsed = run_past_its_timeout(executor, code, send, seconds)
        exchange = executor.last
        received = f"{answer_said(body)} after {elapsed:.1f} s"
        executor.expect(has_status(body, "timeout"), expected, received, exchange, requirement)
        return body, elapsed, exchange

    def timing(observed: tuple[dict[str, Any], float, Exchange | None]) -> Timing:
        return Timing(bound, expected).saw(observed[1], observed[2])

    first = observe()
    executor.judge_time(timing(first), lambda: timing(observe()), requirement=requirement)
    return first


def judge_default_timeout(executor: ExecutorClient, default: float) -> None:
    """Code sent without a `timeout` is cut at ``default`` seconds: not sooner, not later.

    Judged on status, not on wall time alone: code that sleeps 1.3x the default must end
    `timeout` and code that sleeps 0.5x must end `ok`, so an executor that uses another default
    (the contract's, when the kit set a shorter one) gives a different status.
    """
    body, elapsed, _ = timed_out_in_time(executor, executor.code("sleeps_forever"), None, default)
    executor.expect(
        default * 0.9 <= elapsed,
        f'"status": "timeout" after about the default timeout of {default:g} s',
        f"{answer_said(body)} after {elapsed:.1f} s",
    )
    if default > LONGEST_DEFAULT_TO_WAIT:
        return
    for factor, status in ((PAST_THE_DEFAULT, "timeout"), (WITHIN_THE_DEFAULT, "ok")):
        seconds = round(default * factor, 2)
        code = executor.code("sleep_then_value", seconds=seconds)
        body = run_past_its_timeout(executor, code, None, default)[0] if status == "timeout" else executor.run(code)
        executor.expect(
            status_of(body) == status,
            f'"status": "{status}" for code that sleeps {seconds:g} s ({factor}x the default timeout of {default:g} s)',
            answer_said(body),
        )


@dataclass(frozen=True)
class Deadline:
    """The timeout a timeout test sends (None: rely on the default) and the one in force."""

    send: float | None
    seconds: float


def observed_once(request: pytest.FixtureRequest, key: pytest.StashKey[T], observe: Callable[[], T]) -> T:
    """What ``observe`` saw, observed once per run for the tests that judge the same behaviour.

    Several requirements are often judged from one costly observation (a restart, a timeout).
    It is made by whichever of those tests runs first, inside that test, so that anything that
    goes wrong on the way fails a test; each test then judges only its own requirement. An
    observation that raised is not kept: the next test observes again.
    """
    stash = request.config.stash
    if key not in stash:
        stash[key] = observe()
    return stash[key]


@pytest.fixture
def deadline(capabilities: Capabilities, declared_features: frozenset[str]) -> Deadline:
    """A short timeout for timeout tests: the executor's default, or 2 s per request if the default is long."""
    default = capabilities.execution_timeout
    if default > LONGEST_DEFAULT_TO_WAIT and "timeout_override" in declared_features:
        return Deadline(2.0, 2.0)
    return Deadline(None, default)


@dataclass
class Siblings:
    """Second executors (CODE-5's, CONFIG-2's) by workspace, started in the background as soon as
    the run begins (``start``).

    Each has a short start-up wait (``KitTimeouts.sibling_startup``), so that one that never
    becomes ready is judged in seconds. One that neither exited nor became ready by then, while the
    kit's own path to the first executor was slow at that moment (``GET /health`` on a new
    connection past ``KitTimeouts.quiet_path``: a loaded machine), may have met the machine's delay,
    not its own: it is started again with the whole start-up wait the first executor had, and
    judged on that. Every one started is stopped at the end of the run, if its test did not.
    """

    spec: TargetSpec
    #: The first executor's URL: the kit's path to it says whether the machine is loaded.
    first: str
    #: Where the run's progress lines go (the first target's ``say``), past pytest's capture.
    say: Callable[[str], None] | None = None
    starts: dict[Workspace, Future[Target | None]] = field(default_factory=dict)
    started: list[Target] = field(default_factory=list)

    def start(self, pool: ThreadPoolExecutor, workspace: Workspace, startup: float) -> None:
        self.starts[workspace] = pool.submit(self._started, workspace, startup)

    def _started(self, workspace: Workspace, startup: float) -> Target | None:
        sibling = self.spec.sibling(workspace, startup)
        if sibling is None:
            return None
        self.started.append(sibling)
        try:
            sibling.start()
        except StartupTimeout:
            path = self._path_delay()
            if path <= self.spec.timeouts.quiet_path:
                raise
            (self.say or say_on_stderr)(
                f"A second executor ({workspace} workspace) was not ready within its short start-up wait, while "
                f"the kit's GET /health to the first took {path:.2f} s (a loaded machine): it is started again, "
                f"with the whole start-up wait ({self.spec.timeouts.startup:.0f} s)."
            )
            sibling = self.spec.sibling(workspace)  # the whole start-up wait
            if sibling is None:  # cannot be: one was started the first time
                raise
            sibling.say = self.say
            self.started.append(sibling)
            sibling.start()
        return sibling

    def _path_delay(self) -> float:
        """The round trip of GET /health to the first executor, on a new connection (none: infinite)."""
        began = time.monotonic()
        try:
            httpx.get(f"{self.first}/health", timeout=self.spec.timeouts.request)
        except httpx.HTTPError:
            return math.inf
        return time.monotonic() - began

    def get(self, executor: ExecutorClient, capabilities: Capabilities, workspace: Workspace) -> Target | None:
        """The second executor with ``workspace``, once started; None if the kit cannot start one.

        One that never became ready fails the calling test's requirement, unless the first
        executor was found on the default port instead of PORT: then every executor of this
        command listens there, the second cannot, and the fault is CONFIG-1's.
        """
        try:
            return self.starts[workspace].result()
        except TargetError as exc:
            requirement = "CONFIG-1" if capabilities.answered_on != capabilities.settings.port else None
            expected = f"a second executor ({workspace} workspace) to become ready"
            raise executor.fail(expected, str(exc), requirement=requirement) from None


@pytest.fixture(scope="session", autouse=True)
def sibling_starts(request: pytest.FixtureRequest) -> Iterator[Siblings | None]:
    """The run's second executors (``Siblings``), started in the background as soon as the run
    begins; None where none is asked for or none can be started.

    A test asks for one by its ``workspace`` parameter (``targets.Workspace``). A container
    at a quarter of a CPU takes seconds to start; started early, they are ready when the tests
    need them instead of each being waited for there. Each may take three times as long as the
    first executor took to become ready (at least 30 s: ``KitTimeouts.sibling_startup``), not the
    whole start-up wait, unless the machine was loaded (``Siblings``). A target the kit cannot
    start that way (a URL; a local command with every setting unset) gives None for its workspace.
    """
    workspaces = {
        Workspace(item.callspec.params["workspace"])
        for item in request.session.items
        if hasattr(item, "callspec") and "workspace" in item.callspec.params
    }
    if not workspaces:  # none asked for (a pool's certification starts no executor at all)
        yield None
        return
    target: Target = request.getfixturevalue("executor_target")
    if not target.capabilities.workspace_mounted:
        yield None
        return
    spec: TargetSpec = request.getfixturevalue("target_spec")
    startup = spec.timeouts.sibling_startup(start_to_ready(target))  # as long as the first took, and more
    siblings = Siblings(spec, target.base_url, target.say)
    with ThreadPoolExecutor(len(workspaces), thread_name_prefix="sibling") as pool:
        for workspace in sorted(workspaces):
            siblings.start(pool, workspace, startup)
        try:
            yield siblings
        finally:
            wait(siblings.starts.values())
            for sibling in siblings.started:
                sibling.stop()  # safe when already stopped


def started_sibling(
    executor: ExecutorClient, capabilities: Capabilities, siblings: Siblings | None, workspace: Workspace
) -> Target | None:
    """The second executor with ``workspace`` (``Siblings.get``); None if the kit cannot start one."""
    return None if siblings is None else siblings.get(executor, capabilities, workspace)


@dataclass(frozen=True)
class StartUpLoading:
    """How the first session's workspace loading looked, seen before any test could restart it (READY-4).

    ``ready_at``: when the kit saw /ready true at start-up; ``first_look``: whether the workspace
    was loaded when the kit first looked; ``loaded_at``: when loading ended, by the executor's clock
    (None: it never loaded while the kit watched); ``problem``: why nothing could be observed.
    """

    ready_at: float | None
    first_look: bool | None = None
    loaded_at: float | None = None
    problem: str | None = None


def watch_workspace_load(executor: ExecutorClient) -> tuple[bool, float | None]:
    """Whether the workspace was loaded at the first look, and when its loading ended (None: not
    loaded within ``timeouts.late_loading`` s of that look)."""
    deadline = time.monotonic() + executor.timeouts.late_loading
    loaded = first = executor.evaluate(executor.code("workspace_loaded")) is True
    while not loaded and time.monotonic() < deadline:
        time.sleep(executor.timeouts.poll_interval)
        loaded = executor.evaluate(executor.code("workspace_loaded")) is True
    if not loaded:
        return first, None
    loaded_at = executor.evaluate(executor.code("loaded_at"))
    return first, float(loaded_at) if isinstance(loaded_at, (int, float)) else None


@pytest.fixture(scope="session", autouse=True)
def start_up_loading(request: pytest.FixtureRequest) -> StartUpLoading | None:
    """The first session's loading, observed before the first test (none of which has restarted the
    session yet); None when no READY-4 test runs or no workspace is mounted."""
    if not any("READY-4" in requirement_ids(item) for item in request.session.items):
        return None
    target: Target = request.getfixturevalue("executor_target")
    if not target.capabilities.workspace_mounted:
        return None
    ready = [o for o in target.startup_observations if isinstance(o.body, dict) and o.body.get("ready") is True]
    if not ready:  # an executor the kit did not start (a URL): its start-up is over
        return StartUpLoading(None)
    client: ExecutorClient = request.getfixturevalue("session_client")
    try:
        first, loaded_at = watch_workspace_load(client.bound_to("READY-4"))
    except Exception as exc:  # judged by the READY-4 test that reads it, not by the first test of the run
        return StartUpLoading(ready[0].at, problem=str(exc).splitlines()[0])
    return StartUpLoading(ready[0].at, first, loaded_at)
