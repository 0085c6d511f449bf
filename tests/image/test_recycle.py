"""Recycling an executor's container through the Engine API (``executor_pool.manager.recycle``), on
a real Docker engine: the container is made again from its own configuration, under its name, on
its networks with its aliases, and the last one's processes end before ``retire`` returns. Each
step holds when taken again after one was cut short (a manager that died half-way).

The containers run ``sleep`` from the reference image (no executor: what is checked is the
container, not what runs in it), on two internal networks of their own; all are removed by name.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from executor_pool.manager.recycle import RETIRED_SUFFIX, DockerContainer, DockerEngine, RecycleError
from tests.image.docker_env import IMAGE, PROBLEM, needs

pytestmark = needs(PROBLEM, "Docker")

#: How long the test containers live, whatever happens to the test (seconds).
LIFETIME = 300


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def _inspect(name: str) -> dict[str, Any] | None:
    found = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, timeout=60)
    return json.loads(found.stdout)[0] if found.returncode == 0 else None


@pytest.fixture
def container() -> Iterator[str]:
    """A container like a generated executor's: a name, a label, a variable, a memory limit, a
    secret-like read-only bind, two internal networks, an alias on each."""
    name = f"recycle-test-{secrets.token_hex(4)}"
    networks = [f"{name}-a", f"{name}-b"]
    try:
        for network in networks:
            _docker("network", "create", "--internal", network)
        _docker(
            "create", "--name", name, "--network", networks[0], "--network-alias", "executor-under-test",
            "--label", "container.type=python", "--env", "CONTAINER_ID=7", "--memory", "128m",
            "--restart", "unless-stopped", "--cap-drop", "NET_RAW", "--entrypoint", "sleep", IMAGE, str(LIFETIME),
        )  # fmt: skip
        _docker("network", "connect", "--alias", "executor-under-test", networks[1], name)
        _docker("start", name)
        yield name
    finally:
        for leftover in (name, name + RETIRED_SUFFIX):
            subprocess.run(["docker", "rm", "-f", leftover], capture_output=True, timeout=60)
        for network in networks:
            subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
        assert _inspect(name) is None and _inspect(name + RETIRED_SUFFIX) is None


def _recycle(name: str, *steps: str) -> None:
    async def run() -> None:
        engine = DockerEngine()
        try:
            recycler = DockerContainer(name, engine)
            for step in steps:
                await getattr(recycler, step)()
        finally:
            await engine.close()

    asyncio.run(run())


def _networks(info: dict[str, Any]) -> dict[str, list[str]]:
    return {
        network: sorted(alias for alias in endpoint["Aliases"] or [] if alias == "executor-under-test")
        for network, endpoint in info["NetworkSettings"]["Networks"].items()
    }


def test_a_recycled_container_is_made_again_from_its_own_configuration(container: str) -> None:
    before = _inspect(container)
    assert before is not None and before["State"]["Running"]
    _recycle(container, "retire")
    retired = _inspect(container + RETIRED_SUFFIX)
    assert _inspect(container) is None
    assert retired is not None and not retired["State"]["Running"]  # its processes ended with it
    _recycle(container, "replace")
    after = _inspect(container)
    assert after is not None and after["State"]["Running"] and after["Id"] != before["Id"]
    assert _inspect(container + RETIRED_SUFFIX) is None
    assert after["Image"] == before["Image"]
    assert after["Config"]["Env"] == before["Config"]["Env"] and after["Config"]["Labels"] == before["Config"]["Labels"]
    assert (
        after["Config"]["Entrypoint"] == before["Config"]["Entrypoint"]
        and after["Config"]["Cmd"] == before["Config"]["Cmd"]
    )
    for key in ("Memory", "CapDrop", "RestartPolicy", "NetworkMode"):
        assert after["HostConfig"][key] == before["HostConfig"][key], key
    assert (
        _networks(after)
        == _networks(before)
        == {network: ["executor-under-test"] for network in (f"{container}-a", f"{container}-b")}
    )


def test_replace_alone_ends_the_last_users_container_first(container: str) -> None:
    """A lease that ran out leaves the container as its user left it: replacing it ends it first."""
    before = _inspect(container)
    assert before is not None
    _recycle(container, "replace")
    after = _inspect(container)
    assert after is not None and after["State"]["Running"] and after["Id"] != before["Id"]
    assert _inspect(container + RETIRED_SUFFIX) is None


def test_each_step_taken_again_after_one_was_cut_short(container: str) -> None:
    before = _inspect(container)
    assert before is not None
    _recycle(container, "retire", "retire", "replace", "replace")
    after = _inspect(container)
    assert after is not None and after["State"]["Running"] and after["Id"] != before["Id"]
    # A replacement made half-way (no networks, not started), the old one still set aside.
    _recycle(container, "retire")
    _docker("create", "--name", container, "--network", "none", "--entrypoint", "sleep", IMAGE, str(LIFETIME))
    _recycle(container, "replace")
    final = _inspect(container)
    assert final is not None and final["State"]["Running"] and _inspect(container + RETIRED_SUFFIX) is None
    assert _networks(final) == _networks(before)  # made again whole, not the half-made one started


def test_a_container_that_is_not_there_is_an_error_that_names_it() -> None:
    name = f"recycle-test-absent-{secrets.token_hex(4)}"
    with pytest.raises(RecycleError, match=name):
        _recycle(name, "retire")
    with pytest.raises(RecycleError, match=name):
        _recycle(name, "replace")


def test_a_name_that_is_another_containers_id_prefix_touches_nothing(container: str) -> None:
    """The engine takes a name for an id's prefix too: the recycler acts only on a container of
    exactly its name (a hand-written configuration may name one ``cafe``)."""
    before = _inspect(container)
    assert before is not None
    prefix = before["Id"][:12]
    with pytest.raises(RecycleError, match=prefix):
        _recycle(prefix, "retire")
    with pytest.raises(RecycleError, match=prefix):
        _recycle(prefix, "replace")
    after = _inspect(container)
    assert after is not None and after["Id"] == before["Id"] and after["State"]["Running"]
