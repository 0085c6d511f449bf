"""Fixtures shared by the suite's modules (the target and client fixtures are in the plugin)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.targets import Capabilities

#: A default EXECUTION_TIMEOUT longer than this is not waited for when a per-request one works.
LONGEST_DEFAULT_TO_WAIT = 30.0


@dataclass(frozen=True)
class Deadline:
    """The timeout a timeout test sends (None: rely on the default) and the one in force."""

    send: float | None
    seconds: float


@pytest.fixture
def deadline(capabilities: Capabilities, declared_features: frozenset[str]) -> Deadline:
    """A short timeout for timeout tests: the executor's default, or 2 s per request if the default is long."""
    default = capabilities.execution_timeout
    if default > LONGEST_DEFAULT_TO_WAIT and "timeout_override" in declared_features:
        return Deadline(2.0, 2.0)
    return Deadline(None, default)
