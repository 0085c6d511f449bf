"""The manager against real executor processes on 127.0.0.1 (the fast subprocess executor)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE_EXECUTOR, EXAMPLES, ROOT, RunningExecutor, start_executor, stop_executor


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[httpx.Client, list[RunningExecutor]]]:
    """Three executors (two "python", one "other") and a manager over them; yields (manager client, executors)."""
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "EXECUTION_TIMEOUT": "2"}
    executors = [start_executor(EXAMPLE_EXECUTOR, env, tmp_path / f"executor-{i}.log") for i in range(3)]
    config = {str(i): {"url": e.base_url, "type": "python" if i < 2 else "other"} for i, e in enumerate(executors)}
    (tmp_path / "container_config.json").write_text(json.dumps(config))
    manager = start_executor(
        [sys.executable, "-m", "manager", "--config", str(tmp_path / "container_config.json"), "--host", "127.0.0.1",
         "--port", "{port}"],
        {}, tmp_path / "manager.log", ready_path="/health",
    )  # fmt: skip
    try:
        yield manager.client, executors
    finally:
        stop_executor(manager)
        for executor in executors:
            stop_executor(executor)


def test_allocation_per_type_until_exhausted(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    first = manager.post("/allocate", params={"container_type": "python"}).json()
    second = manager.post("/allocate", params={"container_type": "python"}).json()
    assert {first["container_id"], second["container_id"]} == {"0", "1"} and first["type"] == "python"
    exhausted = manager.post("/allocate", params={"container_type": "python"})
    assert exhausted.status_code == 503 and "allocated" in exhausted.json()["detail"]
    assert manager.post("/allocate", params={"container_type": "gpu"}).status_code == 404
    status = manager.get("/status").json()
    assert status == {"available": 1, "allocated": 2, "total": 3, "available_by_type": {"python": 0, "other": 1},
                      "allocated_ids": ["0", "1"], "not_ready_ids": [], "needs_restart_ids": []}  # fmt: skip


def test_deallocation_restarts_the_executor_and_returns_it(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    allocated = manager.post("/allocate", params={"container_type": "other"}).json()["container_id"]
    assert manager.post(f"/session/{allocated}/execute", json={"code": "secret = 1"}).status_code == 200
    assert manager.post(f"/deallocate/{allocated}").json() == {"status": "deallocated", "container_id": allocated}
    body = manager.post(f"/session/{allocated}/execute", json={"code": "'secret' in globals()"}).json()
    assert body["outputs"][0]["text"] == "False"
    assert manager.post("/allocate", params={"container_type": "other"}).json()["container_id"] == allocated


def test_session_calls_are_proxied_with_the_executors_status_and_body(
    pool: tuple[httpx.Client, list[RunningExecutor]],
) -> None:
    manager, executors = pool
    body = manager.post("/session/0/execute", json={"code": "greet('proxy')"}).json()
    assert body["status"] == "ok" and body["outputs"][0]["text"] == "'Hello, proxy!'"
    assert manager.get("/session/0/ready").json() == {"ready": True, "reason": None}
    assert manager.get("/session/0/health").json() == {"status": "ok"}
    assert manager.post("/session/0/restart").json() == {"status": "ok"}
    bad = manager.post("/session/0/execute", content=b"{bad", headers={"Content-Type": "application/json"})
    direct = executors[0].client.post("/execute", content=b"{bad", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()) == (direct.status_code, direct.json())
    assert manager.get("/session/0/execute").status_code == 405
    assert manager.get("/session/0/no-such-path").status_code == 404


def test_unknown_and_dead_executors_get_json_errors(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, executors = pool
    unknown = manager.get("/session/99/health")
    assert unknown.status_code == 404 and "99" in unknown.json()["detail"]
    assert manager.post("/deallocate/99").status_code == 404
    stop_executor(executors[2])
    dead = manager.post("/session/2/execute", json={"code": "1"})
    assert dead.status_code == 502 and "unreachable" in dead.json()["detail"]


def test_the_manager_is_importable_without_the_kit() -> None:
    assert "conformance" not in (ROOT / "manager" / "app.py").read_text()


def test_a_down_executor_is_never_handed_out(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, executors = pool
    stop_executor(executors[2])  # the only one of type "other"
    refused = manager.post("/allocate", params={"container_type": "other"})
    assert refused.status_code == 503 and "none ready" in refused.json()["detail"]
    status = manager.get("/status").json()
    assert status["not_ready_ids"] == ["2"] and status["available_by_type"]["other"] == 1  # still in the pool


def test_giving_back_a_down_executor_keeps_the_pool_whole(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    """It returns to the pool marked for a restart: never lost, never handed out with its old state."""
    manager, executors = pool
    assert manager.post("/allocate", params={"container_type": "other"}).json()["container_id"] == "2"
    stop_executor(executors[2])
    failed = manager.post("/deallocate/2")
    assert failed.status_code == 502 and "restarted before it is handed out" in failed.json()["detail"]
    status = manager.get("/status").json()
    assert status["available_by_type"]["other"] == 1 and status["needs_restart_ids"] == ["2"]
    assert manager.post("/allocate", params={"container_type": "other"}).status_code == 503


def test_a_body_over_the_limit_gets_413_from_the_manager(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    huge = b'{"code": "' + b"#" * (2 * 1024 * 1024) + b'"}'
    answer = manager.post("/session/0/execute", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "MAX_REQUEST_BYTES" in answer.json()["detail"]


def test_any_id_string_works(tmp_path: Path) -> None:
    """Ids need not be numbers: /status lists numeric ids in numeric order, then the others."""
    config = {name: {"url": "http://127.0.0.1:9", "type": "python"} for name in ("10", "gpu-a", "2")}
    (tmp_path / "config.json").write_text(json.dumps(config))
    manager = start_executor(
        [sys.executable, "-m", "manager", "--config", str(tmp_path / "config.json"), "--host", "127.0.0.1",
         "--port", "{port}"],
        {}, tmp_path / "manager.log", ready_path="/health",
    )  # fmt: skip
    try:
        status = manager.client.get("/status")
        assert status.status_code == 200 and status.json()["not_ready_ids"] == []
        assert manager.client.post("/allocate").status_code == 503  # none of them answers
        assert manager.client.get("/status").json()["not_ready_ids"] == ["2", "10", "gpu-a"]
    finally:
        stop_executor(manager)
