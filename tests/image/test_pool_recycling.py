"""A recycling pool (``executor-pool compose --recycle``): each user gets a new container.

The generated compose pool of ``test_pool_certification`` (three executors of two types, a lease,
authentication as generated), with both types recycled: the manager replaces a container through
the Engine API where it would have restarted its executor. The kit certifies it ``conformant``
(the same certification as the restarting pool); a deallocated executor comes back as a new
container, under its name, and a process its last user left running is gone with the old one.
Published on 127.0.0.4, on networks of a base of its own; it runs on the compose pools' worker,
after or before the others (the generator names the containers).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from executor_pool.compose import TOKEN_FILE
from tests.conftest import STARTUP_TIMEOUT, run_kit, wait_for
from tests.image.docker_env import PROBLEM, needs
from tests.image.test_compose_pool import COMPOSE, COMPOSE_POOLS
from tests.image.test_pool_certification import generated, up

pytestmark = [needs(PROBLEM or (None if COMPOSE else "no compose command"), "Docker compose"), COMPOSE_POOLS]

HOST = "127.0.0.4"
#: Code that prints the command line of every process the session can see.
LOOK = (
    "import pathlib\nfor p in pathlib.Path('/proc').glob('[0-9]*/cmdline'):\n"
    "    try: print(p.read_bytes().replace(b'\\0', b' ').decode())\n    except OSError: pass"
)
MANAGER = f"http://{HOST}:5000"


def _allocated(client: httpx.Client, operator: dict[str, str]) -> dict[str, str]:
    """The executor of type "analysis", once the manager hands it out (free is not yet ready)."""
    answers: list[httpx.Response] = []

    def handed_out() -> bool:
        answers.append(client.post("/allocate", params={"container_type": "analysis"}, headers=operator))
        return answers[-1].status_code == 200

    wait_for(handed_out, STARTUP_TIMEOUT, "executor 2 handed out", lambda: answers[-1].text)
    return dict(answers[-1].json())


def _container_id(name: str) -> str:
    found = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True)
    return found.stdout.strip()


@pytest.fixture(scope="module")
def recycling_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The recycling pool, up and serving: its folder and the manager's token."""
    here = tmp_path_factory.mktemp("recycling-pool")
    compose = generated(here, HOST, "10.216.0.0/16", "--recycle", "python,analysis")
    config = json.loads((here / "container_config.json").read_text(encoding="utf-8"))
    assert {entry["recycle"]["docker"] for entry in config.values()} == {"executor-000", "executor-001", "executor-002"}
    with up(here, compose, MANAGER) as token:
        yield here, token


def test_a_recycled_executor_is_a_new_container_and_its_users_processes_are_gone(
    recycling_pool: tuple[Path, str],
) -> None:
    _, token = recycling_pool
    operator = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=MANAGER, timeout=30) as client:
        allocation = _allocated(client, operator)
        session = {"Authorization": f"Bearer {allocation['token']}"}
        name = "executor-002"  # the one executor of its type
        assert allocation["container_id"] == "2"
        before = _container_id(name)
        # A process of the user's that outlives its session: detached, as a spy would be, bounded.
        spy = "import subprocess; subprocess.Popen(['sleep', '120'], start_new_session=True); print('left')"
        ran = client.post("/session/2/execute", json={"code": spy}, headers=session).json()
        assert ran["status"] == "ok", ran
        seen = client.post("/session/2/execute", json={"code": LOOK}, headers=session).json()
        assert "sleep 120" in json.dumps(seen), seen  # the control: the session sees the spy while it lives
        assert client.post("/deallocate/2", headers=session).status_code == 200
        assert _container_id(name) != before  # the old one is retired (renamed aside, stopped) or gone

        # Free at once, handed out again only once its new container is ready.
        assert "2" not in client.get("/status", headers=operator).json()["allocated_ids"]
        again = _allocated(client, operator)
        after = _container_id(name)
        assert after and after != before
        assert subprocess.run(["docker", "inspect", before], capture_output=True).returncode != 0  # removed
        session = {"Authorization": f"Bearer {again['token']}"}
        seen = client.post("/session/2/execute", json={"code": LOOK}, headers=session).json()
        assert seen["status"] == "ok" and "sleep 120" not in json.dumps(seen), seen
        assert client.post("/deallocate/2", headers=session).status_code == 200


def test_the_recycling_pool_is_conformant(recycling_pool: tuple[Path, str]) -> None:
    here, token = recycling_pool
    run = run_kit(["pool", "--manager", MANAGER, "--token-file", str(here / TOKEN_FILE)], here / "results")
    assert run.results["verdict"] == "conformant" and run.returncode == 0, run.output[-5000:]
    outcomes = run.outcomes()
    assert set(outcomes) == {f"POOL-{n}" for n in range(1, 13)}, outcomes
    assert all(outcome == "passed" for outcome in outcomes.values()), outcomes  # POOL-8 too: the pool has a lease
    assert token not in (here / "results" / "results.json").read_text(encoding="utf-8")
