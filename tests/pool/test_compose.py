"""The compose generator: the original generate_compose.py's flags, layout and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from executor_pool.__main__ import main
from executor_pool.compose import EXECUTOR_SETTINGS, Deployment
from reference_executor.config import Settings
from tests.conftest import EXAMPLES


def generate(tmp_path: Path, *flags: str) -> tuple[dict[str, Any], dict[str, Any]]:
    assert main(["compose", "-o", str(tmp_path / "with-code.yml"), *flags]) == 0
    compose = yaml.safe_load((tmp_path / "with-code.yml").read_text())
    config = json.loads((tmp_path / "container_config.json").read_text())
    return compose, config


def test_original_flags_give_the_original_layout(tmp_path: Path) -> None:
    compose, config = generate(
        tmp_path, "--mountable-volumes", str(EXAMPLES / "my_utilities"), "--num-containers", "4", "--types", "python:4"
    )
    services = compose["services"]
    assert list(services) == ["executor-000", "executor-001", "executor-002", "executor-003", "manager"]
    first = services["executor-000"]
    # The original's `python main.py`, given the executors' token from its secret (issue #29).
    assert first["image"] == "python" and first["command"] == [
        "sh", "-c", 'EXECUTOR_TOKEN="$$(cat /run/secrets/executor-token)" exec python main.py'
    ]  # fmt: skip
    assert first["secrets"] == ["executor-token"]
    assert "ports" not in first  # reached through the manager only (issue #29)
    assert first["environment"] == {
        "PORT": "8432", "CONTAINER_ID": "0", "EXECUTION_TIMEOUT": "360", "WORKSPACE_FOLDER": "/data",
    }  # fmt: skip
    assert first["volumes"] == [f"{EXAMPLES / 'my_utilities'}:/data:ro"]
    assert (first["mem_limit"], first["cpus"], first["restart"]) == ("2G", 0.5, "unless-stopped")
    assert first["labels"] == {"container.id": "0", "container.type": "python"}
    assert services["manager"]["ports"] == ["127.0.0.1:5000:5000"]
    # Authenticated always: the generator's token file, a secret of the manager's.
    manager = services["manager"]
    assert manager["command"].endswith(
        "--token-file /run/secrets/manager-token --executor-token-file /run/secrets/executor-token"
    )
    assert "environment" not in manager and manager["secrets"] == ["manager-token", "executor-token"]
    assert compose["secrets"] == {
        "manager-token": {"file": "./manager-token"}, "executor-token": {"file": "./executor-token"}
    }  # fmt: skip
    assert (tmp_path / "executor-token").stat().st_mode & 0o777 == 0o600
    assert config["2"] == {"url": "http://executor-002:8432", "type": "python"}


def test_short_flags_types_env_submission_and_gpus(tmp_path: Path) -> None:
    compose, config = generate(
        tmp_path, "-n", "3", "-t", "python:2,node:1", "-p", "7000", "-s", str(tmp_path / "out"),
        "-e", "EXECUTION_TIMEOUT=30,MEM_LIMIT=512m,CPUS=0.25,MEM_RESERVATION=128m,DEBUG=1", "-g", "0,1,2",
        "--image", "python=executor-conformance/reference-executor:latest",
    )  # fmt: skip
    services = compose["services"]
    assert [config[i]["type"] for i in "012"] == ["python", "python", "node"]
    node = services["executor-002"]
    assert node["image"] == "node" and services["executor-000"]["image"].startswith("executor-conformance/")
    assert (node["mem_limit"], node["cpus"], node["mem_reservation"]) == ("512m", 0.25, "128m")
    assert node["environment"]["EXECUTION_TIMEOUT"] == "30" and node["environment"]["DEBUG"] == "1"
    assert node["environment"]["SESSION_ENV"] == "DEBUG"  # -e values reach user code; settings do not
    assert "MEM_LIMIT" not in node["environment"]
    assert (
        node["volumes"] == [f"{tmp_path / 'out'}/002:/submission"]
        and node["environment"]["SUBMISSION_DIR"] == "/submission"
    )
    devices = node["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["2"], "capabilities": ["gpu"]}]


def test_the_manager_serves_with_the_executors_bounds_on_a_request(tmp_path: Path) -> None:
    """A body an executor accepts (-e MAX_REQUEST_BYTES) is not refused by the manager on the way:
    the kit certifying the pool by URL reads the executors' bound from their GET /info."""
    bounds = {"MAX_REQUEST_BYTES": "4194304", "REQUEST_READ_TIMEOUT": "9"}
    flags = ["-e", ",".join(f"{k}={v}" for k, v in {**bounds, "DEBUG": "1"}.items())]
    compose, _ = generate(tmp_path, "-n", "1", "-t", "python:1", *flags)
    assert compose["services"]["manager"]["environment"] == bounds
    assert compose["services"]["executor-000"]["environment"]["MAX_REQUEST_BYTES"] == "4194304"
    deployment = Deployment(types=[("python", 1)], env={**bounds, "DEBUG": "1"})
    assert deployment.manager_environment() == bounds
    (tmp_path / "plain").mkdir()
    plain, _ = generate(tmp_path / "plain", "-n", "1", "-t", "python:1")
    assert "environment" not in plain["services"]["manager"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-n", "3", "-t", "python:2"], "--types adds up to 2 containers, but --num-containers is 3"),
        (["-n", "2", "-t", "python"], "is not NAME:COUNT"),
        (["-n", "2", "-t", "python:2", "-g", "0"], "names 1 GPUs for 2 containers"),
        (["-n", "2", "-t", "python:2", "-g", "0,0"], "the ids repeat"),
        (["-n", "1", "-t", "python:1", "-e", "NOEQUALS"], "is not KEY=VALUE"),
        (["-n", "1", "-t", "python:1", "--allow-outbound", "node"], "--allow-outbound names node, not a type"),
        (["-n", "1", "-t", "python:1", "--recycle", "node"], "--recycle names node, not a type"),
        (
            ["-n", "1", "-t", "python:1", "--recycle", "python", "--format", "swarm"],
            "a swarm's tasks are not the manager's",
        ),
        (["-n", "17", "-t", "python:17", "--network-base", "10.1.0.0/24"], "holds 16 executors' networks, not 17"),
        (["-n", "1", "-t", "python:1", "--network-base", "10.1.0.0/29"], "an IPv4 network of /28 or larger"),
    ],
)
def test_bad_flags_are_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["compose", "-o", str(tmp_path / "c.yml"), *flags]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "c.yml").exists()


def test_every_setting_an_executor_reads_stays_the_executors_and_never_reaches_user_code() -> None:
    """Issue #31: the generator's hand-kept list lacked MAX_EXECUTION_TIMEOUT and REQUEST_READ_TIMEOUT
    (and five more the reference reads): `-e MAX_EXECUTION_TIMEOUT=60` was named in SESSION_ENV and
    handed to user code. The list now holds every variable the reference executor reads."""
    read = Settings.variables()
    assert {"EXECUTION_TIMEOUT", "MAX_EXECUTION_TIMEOUT", "REQUEST_READ_TIMEOUT", "SESSION_ENV"} <= read
    assert read <= EXECUTOR_SETTINGS, sorted(read - EXECUTOR_SETTINGS)
    environment = Deployment(types=[("python", 1)], env={**dict.fromkeys(read, "7"), "MY_TOKEN": "t"}).environment()
    assert environment["SESSION_ENV"] == "MY_TOKEN"  # what is meant for user code, and nothing else


def test_the_generator_makes_the_managers_token_once_private_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #29: the generated pool served without a token (MANAGER_TOKEN defaulted to empty)."""
    generate(tmp_path, "-n", "1", "-t", "python:1")
    token_file = tmp_path / "manager-token"
    token = token_file.read_text().strip()
    assert len(token) >= 32 and token_file.stat().st_mode & 0o777 == 0o600
    said = capsys.readouterr().out
    assert token in said and "Authorization: Bearer $(cat" in said  # shown once, with how to use it
    generate(tmp_path, "-n", "1", "-t", "python:1")
    assert token_file.read_text().strip() == token and token not in capsys.readouterr().out  # kept, not shown again


def _networks_of(compose: dict[str, Any]) -> dict[str, list[str]]:
    return {name: service["networks"] for name, service in compose["services"].items()}


@pytest.mark.parametrize("form", ["compose", "swarm"])
def test_each_executor_is_alone_with_the_manager_on_an_internal_network(tmp_path: Path, form: str) -> None:
    """Issue #29: every service was on one network, so one user's code reached every other user's
    executor and the manager. Now each executor has an internal network of its own (no route out),
    which only the manager joins; the manager listens on none of them (--host default-route)."""
    compose, _ = generate(tmp_path, "--format", form, "-n", "3", "-t", "python:2,node:1", "--allow-outbound", "node")
    networks, services = _networks_of(compose), compose["services"]
    executors = [f"executor-{i:03d}" for i in range(3)]
    for name in executors[:2]:
        assert networks[name] == [name] and compose["networks"][name]["internal"] is True
        assert "ports" not in services[name]
    assert set(networks["manager"]) >= set(executors)
    assert "--host default-route" in services["manager"]["command"]
    others = [network for network in networks["manager"] if network not in executors]
    if form == "compose":
        assert others == ["front"] and not compose["networks"]["front"]
        assert services["manager"]["sysctls"] == {"net.ipv4.ip_forward": "0"}
        assert all(services[name]["cap_drop"] == ["NET_RAW"] for name in executors)
        subnets = [compose["networks"][name]["ipam"]["config"][0]["subnet"] for name in executors]
        assert subnets == ["10.213.0.0/28", "10.213.0.16/28", "10.213.0.32/28"]
        # The type allowed out joins a network the manager is not on, where its members cannot
        # reach one another; its own network stays internal.
        assert networks["executor-002"] == ["executor-002", "outbound"]
        assert compose["networks"]["executor-002"]["internal"] is True
        options = compose["networks"]["outbound"]["driver_opts"]
        assert options == {"com.docker.network.bridge.enable_icc": "false"}
    else:
        # The manager's port is published through its task's gateway bridge, which its front
        # overlay (not internal) gives it.
        assert others == ["front"] and compose["networks"]["front"] == {"driver": "overlay"}
        assert networks["executor-002"] == ["executor-002"]
        assert compose["networks"]["executor-002"] == {"driver": "overlay", "internal": False}
        assert all(compose["networks"][name]["driver"] == "overlay" for name in executors)


def test_a_recycled_type_names_its_containers_to_the_manager_which_alone_gets_the_engine(tmp_path: Path) -> None:
    """``--recycle``: the manager replaces those executors' containers through the Engine API, so it
    is given the Engine's socket, and its configuration names each container; no executor gets it."""
    compose, config = generate(tmp_path, "-n", "3", "-t", "python:2,node:1", "--recycle", "python")
    assert {i: entry.get("recycle") for i, entry in config.items()} == {
        "0": {"docker": "executor-000"},
        "1": {"docker": "executor-001"},
        "2": None,  # restarted
    }
    socket = "/var/run/docker.sock:/var/run/docker.sock"
    assert socket in compose["services"]["manager"]["volumes"]
    assert not [name for name, service in compose["services"].items() if name != "manager" and
                any("docker.sock" in volume for volume in service.get("volumes", []))]  # fmt: skip
    assert compose["services"]["executor-000"]["container_name"] == "executor-000"
    restarted, _ = generate(tmp_path, "-n", "3", "-t", "python:2,node:1")
    assert not [volume for volume in restarted["services"]["manager"]["volumes"] if "docker.sock" in volume]
