"""The kit's judgement of pools: ``executor-conformance pool`` against a manager with one fault
each (``broken_manager.FAULTS``), and against the manager as it is.

Three example executors (two of type python, one other) and, for each case, a manager over them on
127.0.0.1: the real one, patched with its fault. The kit certifies the pool contract's API and
hand-over; each fault must fail exactly its own requirement, and the manager as it is must pass
them all. (The pool's isolation needs a deployment with networks: ``tests/image/test_pool_certification``.)
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.catalogue import Level
from conformance.results import Exit
from tests.conftest import EXAMPLE_EXECUTOR, EXAMPLES, RunningExecutor, run_kit, start_executor, stop_executor
from tests.pool.broken_deployments import BROKEN_DEPLOYMENTS
from tests.pool.broken_manager import FAULTS

#: A lease short enough for POOL-8 to be judged in seconds, long enough for every other test.
LEASE = "4"
#: The requirements a pool of processes on one host can be judged on.
API_AND_HAND_OVER = "pool-api,pool-handover"


@pytest.fixture(scope="module")
def executors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """The executors, as the manager's configuration names them (id -> url, type)."""
    folder = tmp_path_factory.mktemp("gallery-executors")
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "EXECUTION_TIMEOUT": "5"}
    running: list[RunningExecutor] = []
    try:
        for i in range(3):
            running.append(start_executor(EXAMPLE_EXECUTOR, env, folder / f"executor-{i}.log"))
        types = ["python", "python", "other"]
        yield {
            str(i): {"url": e.base_url, "type": kind} for i, (e, kind) in enumerate(zip(running, types, strict=False))
        }
    finally:
        for executor in running:
            stop_executor(executor)


@pytest.mark.parametrize("fault", ["none", *FAULTS])
def test_the_kit_fails_each_broken_manager_on_its_own_requirement(
    executors: dict[str, dict[str, str]], tmp_path: Path, fault: str
) -> None:
    (tmp_path / "container_config.json").write_text(json.dumps(executors))
    token = "-" + secrets.token_urlsafe(16)  # as one in 64 of them begins: `--token=T` takes it, `--token T` not
    command = [sys.executable, "-m", "tests.pool.broken_manager", fault, "--config",
               str(tmp_path / "container_config.json"), "--port", "{port}", "--lease", LEASE]  # fmt: skip
    manager = start_executor(  # asked with the token: one fault refuses /health without it
        command, {"MANAGER_TOKEN": token}, tmp_path / "manager.log", "/health", {"Authorization": f"Bearer {token}"}
    )
    try:
        expected = FAULTS[fault][1] if fault != "none" else None
        run = run_kit(
            ["pool", "--manager", manager.base_url, f"--token={token}", "--requirement", expected or API_AND_HAND_OVER],
            tmp_path / "results",
        )
    finally:
        stop_executor(manager)
    failed = sorted(rid for rid, outcome in run.outcomes().items() if outcome == "failed")
    if expected is None:
        assert run.results["verdict"] == "conformant", run.output[-4000:]
        assert set(run.outcomes().values()) == {"passed"}, run.outcomes()
    else:
        assert failed == [expected], f"expected {expected} failed, the kit failed {failed}:\n{run.output[-4000:]}"
    assert token not in (tmp_path / "results" / "results.json").read_text(encoding="utf-8")


def test_every_must_of_the_pool_contract_is_caught_by_some_broken_pool() -> None:
    """The broken managers here and the broken deployments (tests/image/test_pool_certification)."""
    caught = {rid for _, rid in FAULTS.values()} | {rid for _, rid in BROKEN_DEPLOYMENTS.values()}
    musts = {rid for rid in catalogue.of_profile(catalogue.Profile.POOL) if catalogue.get(rid).level is Level.MUST}
    assert musts - caught == set()


def test_a_pool_of_types_none_of_which_is_the_languages_ends_the_run_naming_pool_type(
    executors: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """Which type to certify is the command line's to say when the pool cannot: the run ends in
    error, naming --pool-type, with no requirement judged (before, every test errored, and failed)."""
    config = {i: {**entry, "type": f"kind-{entry['type']}"} for i, entry in executors.items()}
    (tmp_path / "container_config.json").write_text(json.dumps(config))
    command = [sys.executable, "-m", "executor_pool.manager", "--config", str(tmp_path / "container_config.json"),
               "--port", "{port}"]  # fmt: skip
    manager = start_executor(command, {}, tmp_path / "manager.log", "/health")
    try:
        run = run_kit(["pool", "--manager", manager.base_url, "--token", "unused"], tmp_path / "results")
    finally:
        stop_executor(manager)
    assert run.returncode == Exit.ERROR and run.results["verdict"] == "error", run.output[-3000:]
    assert "none named 'python'" in run.output and "--pool-type" in run.output
    assert not [rid for rid, outcome in run.outcomes().items() if outcome in ("passed", "failed")], run.outcomes()
