"""Fixtures shared by the suite's modules (the target and client fixtures are in the plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

import pytest

from conformance.certification import requirement_ids
from conformance.targets import Capabilities, Target

T = TypeVar("T")

#: A default EXECUTION_TIMEOUT longer than this is not waited for when a per-request one works.
LONGEST_DEFAULT_TO_WAIT = 30.0


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


@pytest.fixture(scope="session", autouse=True)
def sibling_starts(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Target | None]]]:
    """CODE-5's second executors, started in the background as soon as the run begins.

    A container at a quarter of a CPU takes seconds to start; started early, the two are ready
    when CODE-5 needs them instead of each being waited for there. A target the kit cannot start
    again (a URL) gives None. Each is stopped at the end of the run, if CODE-5 did not already.
    """
    workspaces = {
        item.callspec.params["workspace"]
        for item in request.session.items
        if "CODE-5" in requirement_ids(item) and hasattr(item, "callspec")
    }
    target: Target = request.getfixturevalue("executor_target")
    if not workspaces or not target.capabilities.workspace_mounted:
        yield {}
        return
    siblings = {workspace: target.sibling(workspace) for workspace in sorted(workspaces)}

    def start(sibling: Target | None) -> Target | None:
        if sibling is not None:
            sibling.start()
        return sibling

    with ThreadPoolExecutor(len(siblings), thread_name_prefix="sibling") as pool:
        futures = {workspace: pool.submit(start, sibling) for workspace, sibling in siblings.items()}
        try:
            yield futures
        finally:
            wait(futures.values())
            for sibling in siblings.values():
                if sibling is not None:
                    sibling.stop()  # safe when already stopped
