"""Managers that share one pool through a real Redis (``--store redis://``), and allocation leases.

The executors are the fast subprocess executor as local processes; Redis is ``redis-server`` on
127.0.0.1 and a free port (``redis_server.py``), one per test, so that no state carries over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from executor_pool.manager.store import MemoryStore, RedisStore, Store, open_store
from tests.conftest import (
    EXAMPLE_EXECUTOR,
    EXAMPLES,
    RunningExecutor,
    start_executor,
    start_manager,
    stop_executor,
    wait_for,
)
from tests.pool.redis_server import PROBLEM, needs, redis_server

pytestmark = needs(PROBLEM, "Redis-backed")

#: For a freed allocation to show as free, and for a lease to run out.
RECLAIM_WAIT_S = 20.0


@pytest.fixture
def executors(tmp_path: Path) -> Iterator[list[RunningExecutor]]:
    """Four example executors of type python (ids 0 to 3), stopped afterwards."""
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "EXECUTION_TIMEOUT": "2"}
    started: list[RunningExecutor] = []
    try:
        for i in range(4):
            started.append(start_executor(EXAMPLE_EXECUTOR, env, tmp_path / f"executor-{i}.log"))
        yield started
    finally:
        for executor in started:
            stop_executor(executor)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as url:
        yield url


def _config(executors: list[RunningExecutor]) -> dict[str, dict[str, str]]:
    return {str(i): {"url": e.base_url, "type": "python"} for i, e in enumerate(executors)}


def _manager(executors: list[RunningExecutor], folder: Path, name: str, *args: str) -> RunningExecutor:
    return start_manager(_config(executors), folder, {"MANAGER_TOKEN": "operator"}, args, name)


OPERATOR = {"Authorization": "Bearer operator"}


def _allocate(manager: RunningExecutor) -> dict[str, str]:
    answer = manager.client.post("/allocate", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _run(manager: RunningExecutor, allocation: dict[str, str], code: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {allocation['token']}"}
    return manager.client.post(f"/session/{allocation['container_id']}/execute", json={"code": code}, headers=headers)


def _status(manager: RunningExecutor) -> dict[str, Any]:  # the JSON body: untyped
    return dict(manager.client.get("/status", headers=OPERATOR).json())


def test_two_managers_on_one_redis_share_the_pool(
    executors: list[RunningExecutor], redis_url: str, tmp_path: Path
) -> None:
    """An executor one manager handed out is allocated for the other too, its token works through both."""
    first = _manager(executors, tmp_path, "first", "--store", redis_url)
    second = _manager(executors, tmp_path, "second", "--store", redis_url)
    try:
        held = [_allocate(first), _allocate(second), _allocate(first)]
        assert len({a["container_id"] for a in held}) == 3
        assert (
            _status(second)["allocated_ids"]
            == _status(first)["allocated_ids"]
            == sorted(a["container_id"] for a in held)
        )
        body = _run(second, held[0], "print('through the other manager')").json()
        assert body["outputs"][0]["text"] == "through the other manager\n"
        last = _allocate(second)
        assert last["container_id"] not in {a["container_id"] for a in held}
        exhausted = second.client.post("/allocate", headers=OPERATOR)
        assert exhausted.status_code == 503 and "allocated" in exhausted.json()["detail"]
        for allocation in [*held, last]:
            given_back = first.client.post(f"/deallocate/{allocation['container_id']}", headers=OPERATOR)
            assert given_back.status_code == 200, given_back.text
        assert _status(second)["allocated_ids"] == []
        assert _run(second, held[0], "1").status_code == 401  # the token ended with the allocation
    finally:
        stop_executor(first)
        stop_executor(second)


def test_a_restarted_manager_forgets_no_allocation(
    executors: list[RunningExecutor], redis_url: str, tmp_path: Path
) -> None:
    manager = _manager(executors, tmp_path, "before", "--store", redis_url)
    held = [_allocate(manager), _allocate(manager)]
    assert _run(manager, held[0], "kept = 'across the manager restart'").json()["status"] == "ok"
    os.killpg(manager.process.pid, signal.SIGKILL)  # no clean shutdown: nothing is saved on the way out
    manager.process.wait(timeout=15)
    stop_executor(manager)
    again = _manager(executors, tmp_path, "after", "--store", redis_url)
    try:
        assert _status(again)["allocated_ids"] == sorted(a["container_id"] for a in held)
        body = _run(again, held[0], "print(kept)").json()  # the old token, through the new manager
        assert body["outputs"][0]["text"] == "across the manager restart\n"
        fresh = [_allocate(again), _allocate(again)]
        assert {a["container_id"] for a in fresh}.isdisjoint(a["container_id"] for a in held)
    finally:
        stop_executor(again)


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_an_allocation_whose_holder_vanished_is_reclaimed_after_its_lease(
    executors: list[RunningExecutor], redis_url: str, tmp_path: Path, store: str
) -> None:
    """Without a call to its session for the lease, an allocation ends: the executor is restarted
    (its state gone) before it is handed out again, and the old token no longer reaches it."""
    manager = _manager(executors[:1], tmp_path, store, "--store", redis_url if store == "redis" else "memory",
                       "--lease", "2")  # fmt: skip
    try:
        vanished = _allocate(manager)
        assert _run(manager, vanished, "left_behind = 1").json()["status"] == "ok"
        wait_for(lambda: _status(manager)["allocated_ids"] == [], RECLAIM_WAIT_S, "the lease to run out")
        assert _status(manager)["needs_restart_ids"] == ["0"]
        assert _run(manager, vanished, "1").status_code == 401
        successor = _allocate(manager)
        assert successor["container_id"] == "0" and successor["token"] != vanished["token"]
        body = _run(manager, successor, "'left_behind' in globals()").json()
        assert body["outputs"][0]["text"] == "False" and _status(manager)["needs_restart_ids"] == []
    finally:
        stop_executor(manager)


@pytest.mark.parametrize("token", ["operator", None], ids=["with-tokens", "without-tokens"])
def test_a_session_in_use_keeps_its_allocation_past_its_lease(
    executors: list[RunningExecutor], tmp_path: Path, token: str | None
) -> None:
    """Each call to a session extends its lease. A manager without tokens (on loopback) stopped
    extending it when its routes were split from its pool (a review found it): an allocation in
    use was reclaimed after the lease, and the executor restarted under its user."""
    env = {"MANAGER_TOKEN": token} if token else {}
    manager = start_manager(_config(executors[:1]), tmp_path, env, ("--lease", "2"))
    try:
        held = _allocate(manager)
        held.setdefault("token", "unused")  # a manager without tokens asks for none
        assert _run(manager, held, "kept = 1").json()["status"] == "ok"
        calls, in_use_until = 1, time.monotonic() + 4.0  # in use, call after call, for twice the lease
        while time.monotonic() < in_use_until:
            assert _run(manager, held, "kept += 1").json()["status"] == "ok"
            calls += 1
        assert _status(manager)["allocated_ids"] == ["0"]
        assert _run(manager, held, "print(kept)").json()["outputs"][0]["text"] == f"{calls}\n"
    finally:
        stop_executor(manager)


def test_a_bad_store_url_stops_the_manager_with_a_message(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "config.json").write_text('{"0": {"url": "http://127.0.0.1:1", "type": "python"}}')
    done = subprocess.run(
        [sys.executable, "-m", "executor_pool.manager", "--config", str(tmp_path / "config.json"),
         "--store", "mysql://nowhere", "--port", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--store mysql://nowhere" in done.stderr, done.stderr[-2000:]


async def _revoke(redis_url: str, executor_id: str) -> None:
    store = RedisStore(Redis.from_url(redis_url))
    try:
        await store.revoke(executor_id)
    finally:
        await store.close()


def test_a_deallocate_sent_again_after_a_manager_died_in_the_middle_of_one_is_not_refused(
    executors: list[RunningExecutor], redis_url: str, tmp_path: Path
) -> None:
    """A manager that dies between revoking an allocation's token and giving the executor back
    (the scale test kills one so) leaves the client's retry to another manager: it must end the
    allocation, not get 401 for a token that is only half ended."""
    manager = _manager(executors, tmp_path, "survivor", "--store", redis_url)
    try:
        allocation = _allocate(manager)
        asyncio.run(_revoke(redis_url, allocation["container_id"]))  # where the dead manager stopped
        assert _run(manager, allocation, "1").status_code == 401  # its sessions are over already
        headers = {"Authorization": f"Bearer {allocation['token']}"}
        again = manager.client.post(f"/deallocate/{allocation['container_id']}", headers=headers)
        assert again.status_code == 200, again.text
        assert allocation["container_id"] not in _status(manager)["allocated_ids"]
        stranger = {"Authorization": "Bearer not-the-token"}
        assert manager.client.post(f"/deallocate/{allocation['container_id']}", headers=stranger).status_code == 401
    finally:
        stop_executor(manager)


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_an_executor_set_aside_is_claimed_by_no_one_until_cleared_or_its_time_is_up(where: str, tmp_path: Path) -> None:
    """A recycled executor is freed set aside while its new container is made: no claim takes it
    (another manager's neither: the state is the store's), it is counted free, dirty and not ready;
    cleared, it is claimable and clean; failed, claimable and dirty; a manager that died leaves it
    set aside until the time is up, then dirty (the next claim sets it aside again)."""

    async def scenario(store: Store) -> None:
        try:
            await store.register([("0", "python"), ("1", "python")])
            first, second = await store.claim("python"), await store.claim("python")
            assert first is not None and second is not None
            await store.set_aside(first.id, 60)
            await store.give_back(second.id)
            claimed = await store.claim("python")
            assert claimed is not None and claimed.id == second.id  # the set-aside one passed over
            assert await store.claim("python") is None and await store.free_count("python") == 1
            state = await store.status()
            assert first.id in state["dirty"] and first.id in state["not_ready"] and first.id not in state["allocated"]
            await store.cleared(first.id, ok=True)
            again = await store.claim("python")
            assert again is not None and again.id == first.id and not again.dirty
            await store.set_aside(first.id, 60)
            await store.cleared(first.id, ok=False)
            failed = await store.claim("python")
            assert failed is not None and failed.id == first.id and failed.dirty
            await store.set_aside(first.id, 0.2)  # its manager dies: nothing clears it
            assert await store.claim("python") is None
            await asyncio.sleep(0.3)
            late = await store.claim("python")
            assert late is not None and late.id == first.id and late.dirty
        finally:
            await store.close()

    if where == "memory":
        asyncio.run(scenario(MemoryStore()))
        return
    with redis_server(tmp_path / "redis") as url:
        asyncio.run(scenario(open_store(url, prefix=f"aside-{os.getpid()}")))
