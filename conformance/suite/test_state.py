"""State: the session persists between executes (STATE-1)."""

from __future__ import annotations

import pytest

from conformance.client import ExecutorClient


@pytest.mark.conformance_requirement("STATE-1")
def test_variables_functions_and_imports_persist(executor: ExecutorClient) -> None:
    """What one execute defines, the next one sees."""
    body = executor.run(executor.code("defines_state"))
    executor.expect_status(body, "ok")
    value = executor.evaluate(executor.code("uses_state"))
    executor.expect(value == [42, "1/2"], "[42, '1/2'] from the earlier definitions", value)
