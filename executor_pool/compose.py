"""A compose file (or a swarm stack) for a pool of executors and a manager: what `executor-pool compose` writes.

It takes the flags of the original deployment's ``generate_compose.py`` (long and short forms)
and writes the same layout: one service per executor (``executor-000`` ...), each started with
``python main.py``, alone with the manager on an internal network, the workspace read-only at
``/data``, an optional writable ``/submission``, and ``container_config.json`` for the manager on
port 5000.
Pure functions build the documents (``kubernetes.py`` the Kubernetes ones); ``generate.py`` is the
command, which parses the flags and writes the files.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .manager.listen import DEFAULT_ROUTE
from .manager.recycle import DOCKER_SOCKET

__all__ = [
    "EXECUTOR_COMMAND",
    "EXECUTOR_PORT",
    "EXECUTOR_TOKEN_FILE",
    "MANAGER_PORT",
    "NETWORK_BASE",
    "OUTPUTS",
    "SUBMISSION_MOUNT",
    "TOKEN_FILE",
    "TOKEN_SECRET",
    "WORKSPACE_MOUNT",
    "ComposeError",
    "Deployment",
    "compose_document",
    "container_config",
    "parse_env",
    "parse_types",
    "swarm_document",
    "yaml_text",
]

EXECUTOR_PORT = 8432
MANAGER_PORT = 5000
#: What ``--format`` writes, and where by default.
OUTPUTS = {"compose": "docker-compose.yml", "swarm": "executor-stack.yml", "kubernetes": "executor-pool.k8s.yaml"}
#: The manager's token: a file the generator makes beside the compose file (mode 0600), handed to
#: the manager as a secret (compose and swarm mount it at /run/secrets/<name>; Kubernetes: a Secret).
TOKEN_FILE = "manager-token"
TOKEN_SECRET = "manager-token"
#: The executors' token (EXECUTOR_TOKEN, SEC-4): made the same way, a secret of the executors and
#: of the manager alone, so that the executors serve the manager and no one else.
EXECUTOR_TOKEN_FILE = "executor-token"
EXECUTOR_TOKEN_SECRET = "executor-token"
#: An executor's command: the original's ``python main.py``, with EXECUTOR_TOKEN read from its
#: secret (a file only root reads: user code, run as another user, cannot; ``$$``: compose's ``$``).
EXECUTOR_COMMAND = [
    "sh", "-c", f'EXECUTOR_TOKEN="$$(cat /run/secrets/{EXECUTOR_TOKEN_SECRET})" exec python main.py',
]  # fmt: skip
#: Compose: the addresses of the executors' networks, one /28 each (gateway, executor, manager).
NETWORK_BASE = "10.213.0.0/16"
EXECUTOR_SUBNET_PREFIX = 28
#: Compose: the manager's network, the one its port is published from (no executor joins it).
FRONT_NETWORK = "front"
#: Compose: the network of the executors allowed out (--allow-outbound), with no traffic between
#: its members (the bridge's inter-container communication off); the manager is not on it.
OUTBOUND_NETWORK = "outbound"
#: Where an executor finds the workspace (read-only) and its save-to folder.
WORKSPACE_MOUNT, SUBMISSION_MOUNT = "/data", "/submission"
#: Environment keys the generator turns into container settings instead of variables.
RESOURCE_KEYS = {"MEM_LIMIT": "mem_limit", "CPUS": "cpus", "MEM_RESERVATION": "mem_reservation"}
DEFAULTS = {"EXECUTION_TIMEOUT": "360", "MEM_LIMIT": "2G", "CPUS": "0.5"}
#: Keys of ``-e`` that configure the executor itself; every other one is meant for user code, and
#: is named in SESSION_ENV so that it reaches it (contract ISO-6). Every variable the reference
#: executor reads (``reference_executor.config.Settings.variables()``; a test holds this list to
#: it), the other executors' own (WORKER_UIDS), and the interpreter's.
EXECUTOR_SETTINGS = {
    "PORT", "HOST", "WORKSPACE_FOLDER", "EXECUTION_TIMEOUT", "MAX_EXECUTION_TIMEOUT", "MAX_OUTPUT_BYTES",
    "MAX_REQUEST_BYTES", "REQUEST_READ_TIMEOUT", "MAX_HEAD_BYTES", "MAX_HEADER_LINE_BYTES", "MAX_HEADER_COUNT",
    "SESSION_ENV", "SUBMISSION_DIR", "KERNEL_USER", "KERNEL_UIDS", "WORKER_UIDS", "SESSION_MAX_PROCESSES",
    "STANDBY_KERNEL", "INTERRUPT_GRACE", "KERNEL_START_TIMEOUT", "KERNEL_START_GIVE_UP", "EXECUTOR_RUNTIME_DIR",
    "EXECUTOR_TOKEN",
    "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
}  # fmt: skip


#: Keys of ``-e`` the manager reads too: it serves with its executors' bounds on a request, so
#: that what an executor accepts is not refused on the way (the kit certifying the pool by URL
#: reads an executor's MAX_REQUEST_BYTES from its GET /info, through the manager).
MANAGER_SETTINGS = ("MAX_REQUEST_BYTES", "REQUEST_READ_TIMEOUT", "MAX_HEAD_BYTES", "MAX_HEADER_LINE_BYTES",
                    "MAX_HEADER_COUNT")  # fmt: skip


class ComposeError(ValueError):
    """The flags do not describe a valid pool; the message says which and why."""


@dataclass(frozen=True)
class Deployment:
    """Everything the compose file is made from."""

    types: list[tuple[str, int]]
    workspace: str | None = None
    submission: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    gpu_ids: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    manager_image: str = "executor-conformance/reference-executor:latest"
    host_ip: str = "127.0.0.1"
    config_file: str = "container_config.json"
    #: The types whose executors may open connections outside the pool (by default none may).
    outbound: frozenset[str] = frozenset()
    #: The types whose executors are replaced between users, not restarted (the manager's ``recycle.py``).
    recycle: frozenset[str] = frozenset()
    network_base: str = NETWORK_BASE
    #: Seconds an allocation lasts without a call to its session (the manager's --lease; None: until /deallocate).
    lease: float | None = None

    def __post_init__(self) -> None:
        for flag, named in (("--allow-outbound", self.outbound), ("--recycle", self.recycle)):
            unknown = named - {name for name, _ in self.types}
            if unknown:
                raise ComposeError(f"{flag} names {', '.join(sorted(unknown))}, not a type of --types")
        if self.lease is not None and not 0 < self.lease < math.inf:
            raise ComposeError(f"--lease must be a positive number of seconds, not {self.lease:g}")

    @property
    def size(self) -> int:
        return sum(count for _, count in self.types)

    def container_types(self) -> list[str]:
        return [name for name, count in self.types for _ in range(count)]

    def resources(self) -> dict[str, str]:
        """The limits from ``-e`` (MEM_LIMIT, CPUS, MEM_RESERVATION), with the original's defaults."""
        settings = {**DEFAULTS, **self.env}
        return {key: value for key, value in settings.items() if key in RESOURCE_KEYS}

    def manager_options(self) -> list[str]:
        """The manager's options that come from the deployment's own (``--lease``)."""
        return [] if self.lease is None else ["--lease", f"{self.lease:g}"]

    def manager_environment(self) -> dict[str, str]:
        """The manager's variables: the bounds on a request its executors are given (``-e``)."""
        return {key: self.env[key] for key in MANAGER_SETTINGS if key in self.env}

    def environment(self) -> dict[str, str]:
        """Every executor's environment (less its id and port): the settings and ``-e``'s variables.

        Every ``-e`` key that is not a setting of the executor itself is named in SESSION_ENV,
        so that it reaches user code (contract ISO-6)."""
        settings = {**DEFAULTS, **self.env}
        environment = {"PORT": str(EXECUTOR_PORT), **{k: v for k, v in settings.items() if k not in RESOURCE_KEYS}}
        for_user_code = sorted(k for k in self.env if k not in RESOURCE_KEYS and k not in EXECUTOR_SETTINGS)
        if for_user_code:
            environment["SESSION_ENV"] = ",".join(for_user_code)
        if self.workspace:
            environment["WORKSPACE_FOLDER"] = WORKSPACE_MOUNT
        if self.submission:
            environment["SUBMISSION_DIR"] = SUBMISSION_MOUNT
        return environment


def parse_types(text: str, num_containers: int) -> list[tuple[str, int]]:
    """``python:4,node:2`` as [("python", 4), ("node", 2)]; the counts must add up to num_containers."""
    types = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.rpartition(":")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise ComposeError(f"--types: {part!r} is not NAME:COUNT with COUNT >= 1")
        types.append((name, int(count)))
    total = sum(count for _, count in types)
    if total != num_containers:
        raise ComposeError(f"--types adds up to {total} containers, but --num-containers is {num_containers}")
    return types


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE,KEY2=VALUE2`` as a dict."""
    env = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ComposeError(f"--env: {part!r} is not KEY=VALUE")
        env[key] = value
    return env


def container_config(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """What the manager reads: container id -> its URL inside the compose network, and its type;
    for a recycled type, the container the manager replaces through the Engine API."""
    config: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(deployment.container_types()):
        config[str(i)] = {"url": f"http://executor-{i:03d}:{EXECUTOR_PORT}", "type": kind}
        if kind in deployment.recycle:
            config[str(i)]["recycle"] = {"docker": f"executor-{i:03d}"}
    return config


def compose_document(deployment: Deployment) -> dict[str, Any]:
    """The docker compose file, as data."""
    if deployment.gpu_ids and len(deployment.gpu_ids) < deployment.size:
        raise ComposeError(f"--gpu-ids names {len(deployment.gpu_ids)} GPUs for {deployment.size} containers: one each")
    if len(set(deployment.gpu_ids)) != len(deployment.gpu_ids):
        raise ComposeError("--gpu-ids: each container needs a GPU of its own; the ids repeat")
    resources: dict[str, Any] = {RESOURCE_KEYS[key]: value for key, value in deployment.resources().items()}
    if "cpus" in resources:
        resources["cpus"] = float(resources["cpus"])
    services: dict[str, Any] = {}
    subnets = executor_subnets(deployment)
    networks: dict[str, Any] = {FRONT_NETWORK: {}}
    for i, kind in enumerate(deployment.container_types()):
        environment = {"CONTAINER_ID": str(i), **deployment.environment()}
        volumes = []
        if deployment.workspace:
            volumes.append(f"{deployment.workspace}:{WORKSPACE_MOUNT}:ro")
        if deployment.submission:
            volumes.append(f"{deployment.submission}/{i:03d}:{SUBMISSION_MOUNT}")
        service: dict[str, Any] = {
            "image": deployment.images.get(kind, kind),
            "container_name": f"executor-{i:03d}",
            "command": EXECUTOR_COMMAND,
            "secrets": [EXECUTOR_TOKEN_SECRET],
            "environment": environment,
            # Alone on an internal network with the manager: no port published, no route out.
            "networks": [f"executor-{i:03d}", *([OUTBOUND_NETWORK] if kind in deployment.outbound else [])],
            "restart": "unless-stopped",
            # No raw sockets: user code forges no frame for the manager to pass on.
            "cap_drop": ["NET_RAW"],
            "labels": {"container.id": str(i), "container.type": kind},
            **resources,
        }
        networks[f"executor-{i:03d}"] = {"internal": True, "ipam": {"config": [{"subnet": subnets[i]}]}}
        if volumes:
            service["volumes"] = volumes
        if deployment.gpu_ids:
            service["deploy"] = {
                "resources": {
                    "reservations": {
                        "devices": [
                            {"driver": "nvidia", "device_ids": [deployment.gpu_ids[i]], "capabilities": ["gpu"]}
                        ]
                    }
                }
            }
        services[f"executor-{i:03d}"] = service
    manager_env = deployment.manager_environment()
    services["manager"] = {
        "image": deployment.manager_image,
        "container_name": "manager",
        # On the front network (its port published on --host-ip only) and on every executor's, where
        # it does not listen: default-route is loopback and the front network's address alone.
        # Authenticated always: a manager on an address other than loopback refuses to start
        # without its token.
        "command": f"python -m executor_pool.manager --config /config/{Path(deployment.config_file).name} "
        f"--host {DEFAULT_ROUTE} --port {MANAGER_PORT} --token-file /run/secrets/{TOKEN_SECRET} "
        f"--executor-token-file /run/secrets/{EXECUTOR_TOKEN_SECRET} {' '.join(deployment.manager_options())}".rstrip(),
        "ports": [f"{deployment.host_ip}:{MANAGER_PORT}:{MANAGER_PORT}"],
        "networks": [FRONT_NETWORK, *(name for name in services)],
        # On every executor's network, it passes no packet from one to another, or out.
        "sysctls": {"net.ipv4.ip_forward": "0"},
        "secrets": [TOKEN_SECRET, EXECUTOR_TOKEN_SECRET],
        **({"environment": manager_env} if manager_env else {}),
        "volumes": [
            f"./{Path(deployment.config_file).name}:/config/{Path(deployment.config_file).name}:ro",
            # Recycling: the Engine API, to replace its executors' containers (and so as root on the
            # host: no user code can reach the manager, and it touches only the containers it names).
            *([f"{DOCKER_SOCKET}:{DOCKER_SOCKET}"] if deployment.recycle else []),
        ],
        "depends_on": [name for name in services],
        "restart": "unless-stopped",
        # The image's own health check asks the executor's port; the manager listens on its own.
        "healthcheck": {
            "test": [
                "CMD",
                "python3",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{MANAGER_PORT}/health', timeout=2)",
            ],
            "interval": "10s",
            "timeout": "3s",
            "retries": 3,
        },
    }
    if deployment.outbound:
        networks[OUTBOUND_NETWORK] = {"driver_opts": {"com.docker.network.bridge.enable_icc": "false"}}
    secrets = {TOKEN_SECRET: {"file": f"./{TOKEN_FILE}"}, EXECUTOR_TOKEN_SECRET: {"file": f"./{EXECUTOR_TOKEN_FILE}"}}
    return {"services": services, "networks": networks, "secrets": secrets}


def executor_subnets(deployment: Deployment) -> list[str]:
    """One /28 of ``network_base`` per executor, in order."""
    try:
        base = ipaddress.ip_network(deployment.network_base)
    except ValueError as exc:
        raise ComposeError(f"--network-base: {exc}") from exc
    if base.version != 4 or base.prefixlen > EXECUTOR_SUBNET_PREFIX:
        raise ComposeError(f"--network-base {base}: an IPv4 network of /{EXECUTOR_SUBNET_PREFIX} or larger")
    subnets = base.subnets(new_prefix=EXECUTOR_SUBNET_PREFIX)
    chosen = [str(subnet) for _, subnet in zip(range(deployment.size), subnets, strict=False)]
    if len(chosen) < deployment.size:
        raise ComposeError(f"--network-base {base} holds {len(chosen)} executors' networks, not {deployment.size}")
    return chosen


class _PlainDumper(yaml.SafeDumper):
    """YAML with every value written out where it is used: no anchors and aliases for operators to follow."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_text(documents: list[dict[str, Any]]) -> str:
    """The documents as one YAML stream, every value written out (no anchors)."""
    return str(yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False))


def swarm_document(deployment: Deployment, *, store: str | None = None) -> dict[str, Any]:
    """The stack file for ``docker stack deploy``: the compose layout, with what a swarm wants.

    Limits under ``deploy.resources``; each executor on an internal overlay network of its own,
    which the manager joins too, reached by name with DNS round robin (``endpoint_mode: dnsrr``:
    the virtual-IP address is not needed for one task per service, and fails on some hosts); the
    manager's port published on the node that runs it (``mode: host``); the manager's
    configuration as a swarm config; placement left to the swarm. A bind-mounted workspace or
    save-to folder must exist at the same path on every node.
    """
    if deployment.gpu_ids:
        raise ComposeError("--gpu-ids: a swarm schedules GPUs as generic resources; not generated for --format swarm")
    if deployment.recycle:
        raise ComposeError(
            "--recycle: a swarm's tasks are not the manager's to replace (the swarm restarts them); "
            "recycle with --format compose (the Engine API) or kubernetes (pods)"
        )
    compose = compose_document(deployment)
    config_name = Path(deployment.config_file).name
    resources = deployment.resources()
    limits = {"cpus": str(resources["CPUS"]), "memory": resources["MEM_LIMIT"]}
    reservations = {"memory": resources["MEM_RESERVATION"]} if "MEM_RESERVATION" in resources else {}
    services: dict[str, Any] = {}
    for name, service in compose["services"].items():
        published = [
            {"target": int(target), "published": int(published), "protocol": "tcp", "mode": "host"}
            for _, published, target in (port.rsplit(":", 2) for port in service.get("ports", []))
        ]
        swarm_service = {
            key: value
            for key, value in service.items()
            # cap_drop and sysctls: not every swarm takes them (docker stack deploy ignores them).
            if key
            not in ("container_name", "restart", "ports", "depends_on", "cap_drop", "sysctls", *RESOURCE_KEYS.values())
        }
        if published:
            swarm_service["ports"] = published
        swarm_service.update(
            # Each executor alone with the manager on an internal overlay; the manager's port is
            # published in host mode, through the task's gateway bridge (its default route).
            networks=service["networks"] if name == "manager" else [name],
            deploy={
                "replicas": 1,
                "endpoint_mode": "dnsrr",
                "restart_policy": {"condition": "any"},
                **({"resources": {"limits": limits, **({"reservations": reservations} if reservations else {})}}
                   if name != "manager" else {}),
            },
        )  # fmt: skip
        services[name] = swarm_service
    manager = services["manager"]
    manager.pop("volumes", None)
    manager["configs"] = [{"source": "container_config", "target": f"/config/{config_name}"}]
    if store:
        manager["command"] += f" --store {store}"
    # An executor allowed out has its overlay not internal: its task then goes out through the
    # node's gateway bridge, where containers cannot reach one another. The manager's front overlay
    # (not internal) gives its task that bridge too, and its default route through it.
    networks: dict[str, Any] = {FRONT_NETWORK: {"driver": "overlay"}}
    for i, kind in enumerate(deployment.container_types()):
        networks[f"executor-{i:03d}"] = {"driver": "overlay", "internal": kind not in deployment.outbound}
    return {
        "services": services,
        "networks": networks,
        "configs": {"container_config": {"file": f"./{config_name}"}},
        "secrets": compose["secrets"],
    }
