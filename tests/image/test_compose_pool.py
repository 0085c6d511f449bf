"""The original README's deployment, as written, against this project's generator, image and manager.

`docker build -t python ./` (here: the reference image tagged `python`), `python generate_compose.py
...`, `docker compose -f ... up -d`, the README's curl commands through the manager on port 5000,
then the kit certifies executor 0 through the manager, and executor 1 directly (at its address on
its own network, which the host reaches): the two verdicts must be the same. Needs Docker and a
compose command (`docker compose` or `docker-compose`).

Authentication is on, as always: the generator wrote the manager's token (``manager-token``, mode
0600, handed to the manager as a compose secret), the test allocates executor 0 with it, and every
call through the manager carries that allocation's token (the README's curl commands get one header
more, `Authorization: Bearer $SESSION_TOKEN`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor_pool.compose import EXECUTOR_TOKEN_FILE, TOKEN_FILE
from tests.conftest import EXAMPLES, ROOT, STARTUP_TIMEOUT, run_kit, wait_for
from tests.image.docker_env import IMAGE, PROBLEM, needs
from tests.image.pool_reach import container_addresses, network_internal, reached_from_session


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    return None


COMPOSE = None if PROBLEM else _compose_command()
#: The compose pools' modules run on one worker, one after the other: the generator names the
#: containers (executor-000, manager), so two pools never run on one engine at once.
COMPOSE_POOLS = pytest.mark.xdist_group("compose-pools")
pytestmark = [
    needs(PROBLEM or (None if COMPOSE else "no compose command (docker compose or docker-compose)"), "Docker compose"),
    COMPOSE_POOLS,
]

MANAGER = "http://localhost:5000"
EXECUTORS = ("executor-000", "executor-001")


def _direct(container: str) -> str:
    """An executor's URL at its address on its own network: the host reaches it there (nothing
    publishes an executor's port; clients go through the manager)."""
    [address] = container_addresses(container).values()
    return f"http://{address}:8432"


#: The original README's commands, as written (its generate and up steps, then its curl examples).
#: Two differences: `docker-compose` where the `docker compose` plugin is absent, and the README's
#: 3 s timeout set explicitly (the generator's default, as the original's, is 360 s; the kit's
#: default-timeout test would wait that long).
README_DEPLOY = """
python generate_compose.py \\
  --mountable-volumes $(pwd)/my_utilities \\
  --num-containers 2 \\
  --types python:2 \\
  --output utilities-demo.yml \\
  --env EXECUTION_TIMEOUT=3

{compose} -f utilities-demo.yml up -d
"""
README_USE = """
curl -X POST http://localhost:5000/session/0/execute \\
  -H "Authorization: Bearer $SESSION_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "code": "
data = [1, -2, 3, 4, -1, 5]
processed = process_list(data)
stats = calculate_stats(processed)
print(f\\"Processed: {processed}\\")
print(f\\"Stats: {stats}\\")
print(f\\"Total: {format_currency(stats[\\"sum\\"])}\\")
"}'
"""
README_RESTART = """
curl -X POST http://localhost:5000/session/0/restart -H "Authorization: Bearer $SESSION_TOKEN"

curl http://localhost:5000/session/0/ready -H "Authorization: Bearer $SESSION_TOKEN"
"""


def _bash(script: str, cwd: Path, timeout: float = 300, **variables: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **variables}  # our `python`
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script}\nexit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The README's utilities demo, up, with authentication: (its folder, executor 0's session token).

    The workspace holds the README's my_utilities and the kit's sample files, so that the kit
    can certify the same executors the README's examples ran on.
    """
    assert COMPOSE is not None  # else the module's tests are skipped (pytestmark)
    here = tmp_path_factory.mktemp("pool")
    shutil.copytree(EXAMPLES / "my_utilities", here / "my_utilities")
    _bash(f"{sys.executable} -m conformance workspace my_utilities", here)
    shutil.copy(ROOT / "generate_compose.py", here)  # the README runs it from the current folder
    subprocess.run(["docker", "tag", IMAGE, "python:latest"], check=True)  # README: docker build -t python ./
    try:
        _bash(README_DEPLOY.replace("{compose}", " ".join(COMPOSE)), here)
        assert (here / TOKEN_FILE).stat().st_mode & 0o777 == 0o600
        direct = [_direct(container) for container in EXECUTORS]
        with httpx.Client(timeout=10) as http:

            def all_ready() -> bool:
                try:
                    ready = all(http.get(f"{url}/ready").json().get("ready") for url in direct)
                    return ready and http.get(f"{MANAGER}/health").status_code == 200
                except (httpx.HTTPError, ValueError, AttributeError):
                    return False

            wait_for(all_ready, STARTUP_TIMEOUT * 2, "both executors and the manager ready", lambda: _logs(here))
            assert http.post(f"{MANAGER}/allocate").status_code == 401  # the manager requires its token
            # The executors serve the manager alone (issue #29): without their token, 401.
            assert all(http.post(f"{url}/execute", json={"code": "1"}).status_code == 401 for url in direct)
            allocation = http.post(f"{MANAGER}/allocate", headers=_bearer(_operator_token(here))).json()
        assert allocation["container_id"] == "0"
        yield here, allocation["token"]
    finally:
        subprocess.run([*COMPOSE, "-f", "utilities-demo.yml", "down", "--timeout", "5"], cwd=here, capture_output=True)
        subprocess.run(["docker", "rmi", "python:latest"], capture_output=True)  # the tag only


def _logs(here: Path) -> str:
    assert COMPOSE is not None  # else the module's tests are skipped (pytestmark)
    done = subprocess.run([*COMPOSE, "-f", "utilities-demo.yml", "logs", "--tail", "30"], cwd=here, capture_output=True)
    return done.stdout.decode("utf-8", "replace")[-4000:]


def _problems(here: Path) -> str:
    """The WARNING and ERROR lines of every container's log (the kit has no logs of a URL target)."""
    assert COMPOSE is not None  # else the module's tests are skipped (pytestmark)
    done = subprocess.run([*COMPOSE, "-f", "utilities-demo.yml", "logs"], cwd=here, capture_output=True)
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return "\n".join(line for line in lines if " ERROR " in line or " WARNING " in line)[-6000:]


def _json_values(text: str) -> list[Any]:
    """The JSON documents curl printed one after another (with no line break between them)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _executor_token(here: Path) -> str:
    """The executors' token, as the generator wrote it (the manager's secret, and theirs)."""
    return (here / EXECUTOR_TOKEN_FILE).read_text(encoding="utf-8").strip()


def _operator_token(here: Path) -> str:
    """The manager's token, as the generator wrote it."""
    return (here / TOKEN_FILE).read_text(encoding="utf-8").strip()


def test_readme_examples_run_as_written(pool: tuple[Path, str]) -> None:
    here, token = pool
    [body] = _json_values(_bash(README_USE, here, SESSION_TOKEN=token))
    stdout = "".join(item["text"] for item in body["outputs"] if item.get("name") == "stdout")
    assert stdout == "Processed: [2, 6, 8, 10]\nStats: {'sum': 26, 'avg': 6.5, 'count': 4}\nTotal: $26.00\n"

    restart, ready = _json_values(_bash(README_RESTART, here, SESSION_TOKEN=token))
    assert restart["status"] in ("ok", "restarting")
    assert isinstance(ready["ready"], bool)
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{MANAGER}/session/0/ready").status_code == 401  # no token, no session
        status = http.get(f"{MANAGER}/status", headers=_bearer(_operator_token(here))).json()
    assert status["total"] == 2 and status["allocated_ids"] == ["0"]


def test_kit_verdict_through_the_manager_equals_the_direct_one(pool: tuple[Path, str]) -> None:
    """Executor 0 through the manager and executor 1 at its own address, at once: both conformant, same outcomes."""
    here, token = pool
    by_url = ["--workspace-mounted", "--allow-destructive", "--memory-limited", "--execution-timeout", "3"]
    runs_of = {
        "via-manager": ["--url", f"{MANAGER}/session/0", "--header", f"Authorization: Bearer {token}"],
        # The executors serve only the bearer of their token (SEC-4), which the generator made.
        "direct": ["--url", _direct(EXECUTORS[1]), "--header", f"Authorization: Bearer {_executor_token(here)}"],
    }
    with ThreadPoolExecutor(len(runs_of)) as pool_of_runs:
        futures = {
            name: pool_of_runs.submit(run_kit, [*target, *by_url], here / "results" / name)
            for name, target in runs_of.items()
        }
        runs = {name: future.result() for name, future in futures.items()}
    for name, run in runs.items():
        assert run.results["verdict"] == "conformant" and run.returncode == 0, (
            f"{name}:\n{run.output[-4000:]}\nThe pool's warnings and errors:\n{_problems(here)}"
        )
    assert runs["via-manager"].outcomes() == runs["direct"].outcomes()


def test_user_code_reaches_no_other_executor_nor_the_manager(pool: tuple[Path, str]) -> None:
    """Issue #29: code run in executor-000's session called executor-001's /execute by its service
    name, and read the manager's /status: the pool was one flat network. Now each executor is alone
    with the manager on an internal network, and the manager does not listen there. Tried by name
    and by every address the other containers have; the executors' networks have no route out."""
    _, token = pool
    manager_addresses = container_addresses("manager")
    other_addresses = container_addresses(EXECUTORS[1])
    targets = [("executor-001", 8432), ("manager", 5000)]
    targets += [(address, 5000) for address in manager_addresses.values()]
    targets += [(address, 8432) for address in other_addresses.values()]
    with httpx.Client(base_url=MANAGER, timeout=10) as manager:
        # The manager's port is published on 127.0.0.1 alone: not at the gateway (the host).
        reached = reached_from_session(manager, "/session/0", token, targets, gateway_ports=[5000])
    assert reached and not any(reached.values()), reached
    for network in (*container_addresses(EXECUTORS[0]), *other_addresses):
        assert network_internal(network), f"{network}: executors must have no route out of the pool"
