"""The reference image as users run it: `docker run` with a mounted workspace, and `python main.py`.

Needs a Docker engine and the image from `nox -s image`. Without them these tests skip, saying
so, unless REQUIRE_DOCKER_TESTS=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conformance.cli import main as kit_command
from conformance.targets import Workspace, start_to_ready
from conformance.targets.image import ImageTarget
from conformance.timeouts import KitTimeouts
from tests.conftest import (
    EXAMPLES,
    STARTUP_TIMEOUT,
    reachable_by_every_user,
    run_kit,
    start_executor,
    stop_executor,
    wait_for,
)
from tests.image.docker_env import EXAMPLE_IMAGE, IMAGE, PROBLEM, needs

pytestmark = needs(PROBLEM, "Docker-backed")


class Container:
    def __init__(self, *docker_args: str, command: tuple[str, ...] = (), image: str = IMAGE) -> None:
        self.id = subprocess.run(
            ["docker", "run", "-d", "-p", "127.0.0.1::8432", *docker_args, image, *command],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        port = subprocess.run(["docker", "port", self.id, "8432/tcp"], capture_output=True, text=True, check=True)
        self.base_url = "http://" + port.stdout.strip().splitlines()[0]
        self.client = httpx.Client(base_url=self.base_url, timeout=60)

    def logs(self) -> str:
        return subprocess.run(["docker", "logs", self.id], capture_output=True, text=True).stdout[-4000:]

    def wait_ready(self) -> None:
        def ready() -> bool:
            try:
                return self.client.get("/ready").json().get("ready") is True
            except (httpx.HTTPError, ValueError):
                return False

        wait_for(ready, STARTUP_TIMEOUT * 2, "the container to be ready", self.logs)

    def remove(self) -> None:
        self.client.close()
        subprocess.run(["docker", "rm", "-f", self.id], capture_output=True, timeout=60)


@pytest.fixture
def utilities_container() -> Iterator[Container]:
    container = Container("-v", f"{EXAMPLES / 'my_utilities'}:/code:ro")
    try:
        container.wait_ready()
        yield container
    finally:
        container.remove()


def test_original_readme_example_prints_its_three_lines(utilities_container: Container) -> None:
    """The example of the original description, sent as written (it needs Python 3.12+: PEP 701)."""
    code = (
        "\ndata = [1, -2, 3, 4, -1, 5]\nprocessed = process_list(data)\nstats = calculate_stats(processed)\n"
        'print(f"Processed: {processed}")\nprint(f"Stats: {stats}")\nprint(f"Total: {format_currency(stats["sum"])}")\n'
    )
    body = utilities_container.client.post("/execute", json={"code": code}).json()
    stdout = "".join(item["text"] for item in body["outputs"] if item.get("name") == "stdout")
    assert stdout == "Processed: [2, 6, 8, 10]\nStats: {'sum': 26, 'avg': 6.5, 'count': 4}\nTotal: $26.00\n"


def test_user_code_runs_unprivileged_and_the_healthcheck_passes(utilities_container: Container) -> None:
    body = utilities_container.client.post("/execute", json={"code": "import os; os.geteuid()"}).json()
    assert 1_000_000 <= int(body["outputs"][0]["text"]) < 2_000_000  # a throwaway kernel user id of the image's range

    def healthy() -> bool:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", utilities_container.id],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        return state == "healthy"

    wait_for(healthy, 90, "docker to report the container healthy", utilities_container.logs)


def test_original_deployment_command_and_folders(tmp_path: Path) -> None:
    """`python main.py` in the working directory, the workspace at /data, a writable /submission."""
    container = Container(
        "-v", f"{EXAMPLES / 'test_code'}:/data:ro", "-e", "WORKSPACE_FOLDER=/data",
        "-e", "SUBMISSION_DIR=/submission", "-e", "EXECUTION_TIMEOUT=360", "-e", "CONTAINER_ID=0",
        command=("python", "main.py"),
    )  # fmt: skip
    try:
        container.wait_ready()
        code = "open('/submission/out.txt', 'w').write(greet('data')); print(open('/submission/out.txt').read())"
        body = container.client.post("/execute", json={"code": code}).json()
        assert body["status"] == "ok", body
        assert body["outputs"][0]["text"] == "Hello, data!\n"
    finally:
        container.remove()


def test_the_kit_refuses_a_missing_image_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_kit(["--image", "executor-conformance/no-such-image:never"], tmp_path / "results", timeout=120)
    assert run.returncode == 3 and run.results["verdict"] == "error"
    assert "is not present locally" in run.results["error"] and "never pulls" in run.results["error"]
    assert time.monotonic() - started < 60


def test_start_to_ready_counts_from_the_container_start_not_its_creation() -> None:
    """The bench's start figure for an image begins at Docker's StartedAt, after create and network."""
    target = ImageTarget(IMAGE, KitTimeouts(), workspace=Workspace.EMPTY)
    before = time.time()
    target.start()
    try:
        after = time.time()
        assert target.launched_at is not None and target.startup_observations
        assert before < target.launched_at < target.startup_observations[-1].at <= after
        measured = start_to_ready(target)
        assert measured is not None and 0 < measured < after - before
    finally:
        target.stop()


#: The host executor's kernel user ids: four pairs, so that it has others once it sees a container
#: using one. The container is given the host's pair and a neighbouring one.
HOST_KERNEL_UIDS = "64000-64007"
#: What the two runs certify: the areas whose sessions restart, are swept and keep state.
SWEEPING = ["--requirement", "isolation,restart,state,crash"]


def test_a_host_executor_and_a_container_with_the_same_kernel_uids_leave_each_other_alone(tmp_path: Path) -> None:
    """#27 item 8: a host executor's sweep killed the kernels of a container that had claimed the
    same ids (it cannot see the host's processes), and their state was lost. The container is
    given the pair the host claimed and one more (a server needs a second pair while a retired
    id's sweep is pending), and claims one of them at random: it shares the host's in half the
    runs (the host, which sees the container's processes, never takes the container's other one).
    Both are certified at once on the areas that restart and sweep sessions and keep state
    (``SWEEPING``), and neither fails a requirement."""
    workspace = tmp_path / "workspace"
    assert kit_command(["workspace", str(workspace)]) == 0
    reachable_by_every_user(workspace)
    env = {"KERNEL_UIDS": HOST_KERNEL_UIDS, "WORKSPACE_FOLDER": str(workspace), "EXECUTION_TIMEOUT": "1"}
    host = start_executor([sys.executable, "-m", "reference_executor"], env, tmp_path / "host.log")
    try:
        first = int(host.execute("import os; print(os.getuid())")["outputs"][0]["text"]) // 2 * 2
        with ThreadPoolExecutor(max_workers=1) as pool:
            pairs = f"{first}-{first + 3}" if first + 3 <= 64007 else f"{first - 2}-{first + 1}"
            shared = ["--executor-env", f"KERNEL_UIDS={pairs}", *SWEEPING]
            container = pool.submit(run_kit, ["--image", IMAGE, *shared], tmp_path / "image" / "results")
            by_url = [
                "--url", host.base_url, "--workspace-mounted", "--allow-destructive", "--execution-timeout", "1",
                *SWEEPING,
            ]  # fmt: skip
            on_host = run_kit(by_url, tmp_path / "host" / "results")
            in_container = container.result()
    finally:
        stop_executor(host)
    for run in (in_container, on_host):  # by URL, ISO-5 cannot run: not run, not failed
        assert run.failed() == set() and run.results["verdict"] != "non_conformant", run.output[-4000:]
    passed = {rid for rid, outcome in in_container.outcomes().items() if outcome == "passed"}
    assert {"ISO-1", "ISO-2", "ISO-10", "STATE-1", "RESTART-2", "CRASH-2"} <= passed, in_container.output[-4000:]


@pytest.mark.parametrize("image", [IMAGE, EXAMPLE_IMAGE])
def test_containers_of_one_image_run_their_sessions_as_different_user_ids(image: str) -> None:
    """A user id's process count (RLIMIT_NPROC) is the host's, not a container's: when every
    container of an image ran its sessions as the range's first id, one session's fork bomb left
    the sessions of the others no process to start (the gallery's by-image baseline failed so)."""
    containers: list[Container] = []
    try:
        uids = set()
        for _ in range(3):
            containers.append(container := Container("--pids-limit", "1024", image=image))
            container.wait_ready()
            answer = container.client.post("/execute", json={"code": "import os; print(os.getuid())"}).json()
            uids.add(int(answer["outputs"][0]["text"]))
        assert len(uids) == len(containers), uids
    finally:
        for container in containers:
            container.remove()
