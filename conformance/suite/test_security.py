"""Isolation of user code from the executor (SEC-1 to SEC-3). Runs last: SEC-2 may kill a weak executor."""

from __future__ import annotations

import pytest

from conformance.catalogue import Need
from conformance.certification import not_applicable
from conformance.client import ExecutorClient


@pytest.mark.conformance_requirement("SEC-1")
def test_user_code_does_not_run_as_root(executor: ExecutorClient) -> None:
    """User code runs as a non-root user."""
    uid = executor.evaluate(executor.code("user_id"))
    executor.expect(uid != 0, "an effective user id other than 0", f"uid {uid}")


@pytest.mark.conformance_requirement("SEC-3")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_mounted_code_folder_is_read_only_to_user_code(executor: ExecutorClient) -> None:
    """User code cannot write into the mounted code folder."""
    body = executor.run(executor.code("write_workspace"))
    text = "".join(item.get("text", "") for item in body["outputs"])
    if text.startswith("not found"):
        not_applicable("the workspace folder is not on sys.path, so user code cannot find it to write")
    executor.expect(text.startswith("refused"), "writing into the workspace refused", text)


@pytest.mark.conformance_requirement("SEC-2")
@pytest.mark.conformance_needs(Need.DESTRUCTIVE)
def test_user_code_cannot_kill_the_server(executor: ExecutorClient) -> None:
    """SIGKILL sent to the session's parent process leaves the executor serving."""
    executor.execute(executor.code("kill_parent"))
    health = executor.health()
    executor.expect(health.status == 200, "/health answering after the attempt", health.response_line, health)
    executor.wait_ready()
    executor.expect_status(executor.run(executor.code("value_of_text", text="still serving")), "ok")
