"""Errors in user code (ERROR-1, ERROR-2)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import ExecutorClient, raised


def _error_item(executor: ExecutorClient, body: dict[str, Any], ename: str) -> dict[str, Any]:
    """The error item that names ``ename``: the test's own requirement; its fields are ERROR-1's
    (ERROR-2's SyntaxError in the wrong shape is ERROR-1's fault, not ERROR-2's)."""
    executor.expect_status(body, "error")
    errors = [item for item in body["outputs"] if item.get("type") == "error"]
    executor.expect(len(errors) >= 1 and raised(body, ename), f"an `error` output item naming {ename}", body["outputs"])
    item: dict[str, Any] = errors[0]
    executor.expect(
        item.get("ename") == ename
        and isinstance(item.get("evalue"), str)
        and isinstance(item.get("traceback"), list)
        and all(isinstance(line, str) for line in item["traceback"]),
        f"an error item with ename {ename!r}, a string evalue and a list of strings as traceback",
        item,
        requirement="ERROR-1",
        later=True,
    )
    return item


@pytest.mark.conformance_requirement("ERROR-1")
def test_exception_is_reported_as_an_error_item(executor: ExecutorClient) -> None:
    """An exception gives HTTP 200, `status: error` and an error item; never a 5xx."""
    body = executor.run(executor.code("raises_in_a_function"))
    item = _error_item(executor, body, executor.language.error_name("raises_in_a_function"))
    executor.expect("boom 17" in item["evalue"], "evalue 'boom 17'", item["evalue"])


@pytest.mark.conformance_requirement("ERROR-2")
def test_syntax_error_is_reported_the_same_way_and_state_survives(executor: ExecutorClient) -> None:
    """A SyntaxError is an error item too, and state defined before any error survives."""
    executor.expect_status(executor.run(executor.code("define", name="survivor", value="still here")), "ok")
    for snippet in ("invalid_assignment", "runtime_error"):
        _error_item(executor, executor.run(executor.code(snippet)), executor.language.error_name(snippet))
    value = executor.evaluate(executor.code("variable_value", name="survivor"))
    executor.expect(value == "still here", "'still here' after the errors", value)
