"""``executor-conformance pool``: the generated compose pool, certified through its manager.

Three executors of two types (the reference image under both), a lease, authentication as
generated; the kit allocates, reaches and hands over as the pool contract says
(docs/pool-contract.md), and the pool is ``conformant``. Its manager is published on 127.0.0.2 and its
networks come from another base than the README demo's (``test_compose_pool``), which runs on the
same worker before or after it. Needs Docker and a compose command.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from executor_pool.compose import TOKEN_FILE
from tests.conftest import STARTUP_TIMEOUT, run_kit, wait_for
from tests.image.docker_env import IMAGE, PROBLEM, needs
from tests.image.test_compose_pool import COMPOSE, COMPOSE_POOLS
from tests.pool.broken_deployments import BROKEN_DEPLOYMENTS

pytestmark = [needs(PROBLEM or (None if COMPOSE else "no compose command"), "Docker compose"), COMPOSE_POOLS]

#: Where this pool's manager is published: not the README demo's 127.0.0.1.
HOST = "127.0.0.2"
MANAGER = f"http://{HOST}:5000"
#: Where the broken deployments' managers are published.
BROKEN_HOST = "127.0.0.3"
#: Seconds an allocation lasts unused: POOL-8 waits it out; every other test uses its sessions sooner.
LEASE = 8


def generated(here: Path, host: str, network_base: str, *more: str) -> list[str]:
    """The pool generated into ``here`` (manager on ``host``; ``more``: the generator's other
    flags); the compose command that runs it."""
    generate = [sys.executable, "-m", "executor_pool", "compose", "-n", "3", "-t", "python:2,analysis:1",
                "--image", f"python={IMAGE}", "--image", f"analysis={IMAGE}", "--manager-image", IMAGE,
                "--host-ip", host, "--network-base", network_base, "--lease", str(LEASE),
                "-e", "EXECUTION_TIMEOUT=5", "-o", str(here / "pool.yml"), *more]  # fmt: skip
    subprocess.run(generate, check=True, cwd=here, capture_output=True)
    assert COMPOSE is not None  # else the module's tests are skipped (pytestmark)
    return [*COMPOSE, "-p", here.name.lower(), "-f", "pool.yml"]


@contextlib.contextmanager
def up(here: Path, compose: list[str], manager: str, size: int = 3) -> Iterator[str]:
    """The pool of ``here`` (``size`` executors), up and serving, and taken down after: the manager's token."""
    try:
        subprocess.run([*compose, "up", "-d"], check=True, cwd=here, capture_output=True, timeout=300)
        token = (here / TOKEN_FILE).read_text(encoding="utf-8").strip()

        def all_free() -> bool:
            try:
                status = httpx.get(f"{manager}/status", headers={"Authorization": f"Bearer {token}"}, timeout=5)
                return status.status_code == 200 and status.json()["available"] == size
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        def logs() -> str:
            return subprocess.run([*compose, "logs", "--tail", "20"], cwd=here, capture_output=True, text=True).stdout

        wait_for(all_free, STARTUP_TIMEOUT * 2, f"the pool's manager serving {size} free executors", logs)
        yield token
    finally:
        subprocess.run([*compose, "down", "--timeout", "5"], cwd=here, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def certified_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated pool, up and serving: its folder (the manager's token is in it)."""
    here = tmp_path_factory.mktemp("certified-pool")
    with up(here, generated(here, HOST, "10.214.0.0/16"), MANAGER):
        yield here


def test_the_generated_pool_is_conformant(certified_pool: Path) -> None:
    run = run_kit(
        ["pool", "--manager", MANAGER, "--token-file", str(certified_pool / TOKEN_FILE)],
        certified_pool / "results",
    )
    assert run.results["verdict"] == "conformant" and run.returncode == 0, run.output[-5000:]
    outcomes = run.outcomes()
    assert set(outcomes) == {f"POOL-{n}" for n in range(1, 13)}, outcomes
    assert all(outcome == "passed" for outcome in outcomes.values()), outcomes  # POOL-8 too: the pool has a lease
    assert run.results["target"]["base_url"] == MANAGER
    token = (certified_pool / TOKEN_FILE).read_text(encoding="utf-8").strip()
    assert token not in (certified_pool / "results" / "results.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("fault", BROKEN_DEPLOYMENTS)
def test_each_broken_deployment_fails_its_own_requirement(
    certified_pool: Path, tmp_path_factory: pytest.TempPathFactory, fault: str
) -> None:
    """Beside the certified pool (which holds the generator's container names, left out here), on
    127.0.0.3 and networks of a base of their own."""
    break_it, expected = BROKEN_DEPLOYMENTS[fault]
    here = tmp_path_factory.mktemp(f"broken-{fault.replace('_', '-')}")
    compose = generated(here, BROKEN_HOST, "10.215.0.0/16")
    document = yaml.safe_load((here / "pool.yml").read_text(encoding="utf-8"))
    for service in document["services"].values():
        service.pop("container_name", None)
    break_it(document)
    (here / "pool.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    manager = f"http://{BROKEN_HOST}:5000"
    with up(here, compose, manager):
        run = run_kit(
            ["pool", "--manager", manager, "--token-file", str(here / TOKEN_FILE), "--requirement", expected],
            here / "results",
        )
    failed = sorted(rid for rid, outcome in run.outcomes().items() if outcome == "failed")
    assert failed == [expected], f"expected {expected} failed, the kit failed {failed}:\n{run.output[-4000:]}"
