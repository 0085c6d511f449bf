"""Isolation of user code from the executor (SEC-1 to SEC-3), and of the executor from anyone but
its manager (SEC-4). Runs last: SEC-2 may kill a weak executor."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from conformance.catalogue import Need
from conformance.client import ExecutorClient
from conformance.outcomes import not_applicable
from conformance.targets import TargetError, TargetSpec


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


@pytest.mark.conformance_requirement("SEC-4")
@pytest.mark.conformance_needs(Need.SETTINGS)
def test_with_executor_token_set_only_its_bearer_is_served(executor: ExecutorClient, target_spec: TargetSpec) -> None:
    """A second executor, started with an EXECUTOR_TOKEN the kit made: /health and /ready answer
    anyone; /execute and /restart without the token, with another, or with the token not as a
    bearer get 401 with a JSON error, and what they asked for does not happen; with it, they are
    served."""
    token = secrets.token_urlsafe(24)
    sibling = replace(target_spec, env=(*target_spec.env, ("EXECUTOR_TOKEN", token))).target()
    try:
        try:
            sibling.start()
        except TargetError as exc:
            raise executor.fail("a second executor, started with EXECUTOR_TOKEN, to become ready", str(exc)) from None
        anyone = executor.of_sibling(sibling.base_url)
        bearer = executor.of_sibling(sibling.base_url, headers={"Authorization": f"Bearer {token}"})
        try:
            for path in ("/health", "/ready"):
                open_probe = anyone.request("GET", path)
                anyone.expect(
                    open_probe.status == 200,
                    f"HTTP 200 from {path} without the token",
                    open_probe.response_line,
                    open_probe,
                )
            marker = "conformance_sec4_ran"
            for shown, headers in (
                ("no Authorization", {}),
                ("another token", {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}),
                ("the token, not as a bearer", {"Authorization": token}),
            ):
                for method, path, body in (
                    ("POST", "/execute", {"code": anyone.code("define", name=marker, value="ran")}),
                    ("POST", "/restart", None),
                ):
                    refused = anyone.request(method, path, json_body=body, headers=headers)
                    anyone.expect(
                        refused.status == 401 and isinstance(refused.json, dict) and "detail" in refused.json,
                        f"HTTP 401 with a JSON error for {method} {path} with {shown}",
                        refused.response_line,
                        refused,
                    )
            body = bearer.run(bearer.code("read_undefined", name=marker))
            bearer.expect_status(body, "error")  # the refused code never ran
        finally:
            anyone.close()
            bearer.close()
    finally:
        sibling.stop()


@pytest.mark.conformance_requirement("SEC-2")
@pytest.mark.conformance_needs(Need.DESTRUCTIVE)
def test_user_code_cannot_kill_the_server(executor: ExecutorClient) -> None:
    """SIGKILL sent to the session's parent process leaves the executor serving."""
    executor.execute(executor.code("kill_parent"))
    health = executor.health()
    executor.expect(health.status == 200, "/health answering after the attempt", health.response_line, health)
    executor.wait_ready()
    executor.expect_status(executor.run(executor.code("value_of_text", text="still serving")), "ok")
