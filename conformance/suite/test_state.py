"""State: the session persists between executes (STATE-1)."""

from __future__ import annotations

import pytest

from conformance.client import ExecutorClient


@pytest.mark.conformance_requirement("STATE-1")
def test_variables_functions_and_imports_persist(executor: ExecutorClient) -> None:
    """What one execute defines, the next one sees."""
    body = executor.run("state_value = 41\ndef state_function(x):\n    return x + 1\nimport fractions as state_module")
    executor.expect_status(body, "ok")
    value = executor.evaluate("[state_function(state_value), str(state_module.Fraction(1, 2))]")
    executor.expect(value == [42, "1/2"], "[42, '1/2'] from the earlier definitions", value)
