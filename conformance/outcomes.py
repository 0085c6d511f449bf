"""How a test of the suite ends, beyond pass and fail, and how the kit reads its markers.

A test ends *not applicable* (``not_applicable``: the situation never arose, an allowed choice) or
*not run* (``not_run``: the kit could not check it here, a gap); the plugin keeps why a test was
skipped on the item (``SKIP_KIND``), and the violations a test defers until its own checks pass
(``deferred``). The suite imports these, and nothing of the plugin's machinery.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

from .catalogue import Need
from .results import SkipKind
from .violations import Violation

__all__ = [
    "INCONCLUSIVE_ON",
    "NEEDS_MARK",
    "REQUIREMENT_MARK",
    "SETUP_SECONDS",
    "SKIP_KIND",
    "NotApplicable",
    "NotRun",
    "deferred",
    "describe",
    "needs",
    "not_applicable",
    "not_run",
    "requirement_ids",
    "skip_kind_of",
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


#: The suite's markers, named after the kit so that a user's own ``requirement`` or ``needs``
#: markers stay theirs: ``@pytest.mark.conformance_requirement("HEALTH-1")``,
#: ``@pytest.mark.conformance_needs(Need.WORKSPACE)``.
REQUIREMENT_MARK, NEEDS_MARK = "conformance_requirement", "conformance_needs"


def requirement_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers(REQUIREMENT_MARK)]


def needs(item: pytest.Item) -> list[Need]:
    """What ``item`` needs of the target (its ``conformance_needs`` marks); ValueError for an unknown need."""
    return [Need(mark.args[0]) for mark in item.iter_markers(NEEDS_MARK)]


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
