"""Recycling: an executor replaced between users, not restarted.

A restart clears a session inside one container (or pod); whatever the last user did to that
container's kernel objects outside the session's reach lives on. A type the operator recycles
(``executor-pool compose --recycle TYPE``) gets a new container (or pod) for each user instead,
so the kernel's namespaces, not the executor's clean-up, separate one user from the next.

- **Docker** (``DockerContainer``), through the Engine API on its Unix socket: the container is
  renamed aside and stopped at once (its PID namespace ends, and every process of the last user
  with it: the hand-over's cut), then a new one is made from its very configuration (image, command,
  environment, labels, limits, mounts, networks and their aliases) under its name, started, and the
  old one removed. The manager touches only the containers its configuration names.
- **Kubernetes** (``KubernetesPod``), through the API server with the manager's service account: the
  pod is deleted, and its StatefulSet makes a new one under the same name; the manager's Role may
  get and delete those pods alone (``kubernetes.py``).

Each step can be taken again after a manager died in the middle of one: the container set aside
is found again by its name, and the pod by its name and uid.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

__all__ = [
    "DOCKER_SOCKET",
    "DockerContainer",
    "DockerEngine",
    "KubernetesApi",
    "KubernetesPod",
    "RecycleError",
    "Recycler",
    "recycler_of",
]

#: Where the Engine API listens (the generated compose file mounts it into the manager).
DOCKER_SOCKET = "/var/run/docker.sock"
#: A container set aside while its replacement is made: its name, and this.
RETIRED_SUFFIX = ".retired"
#: How long one call to the Engine API or the API server may take.
API_TIMEOUT = 30.0
#: How long a deleted pod may take to be replaced by its StatefulSet (scheduled, not yet ready).
POD_REPLACED_TIMEOUT = 120.0
POLL_INTERVAL = 0.2
#: The Kubernetes service account's files, mounted in every pod that has one.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class RecycleError(RuntimeError):
    """The executor could not be replaced; the message says which step failed and why."""


class Recycler(Protocol):
    """How one executor is replaced. ``retire`` ends the old one and every process in it (the
    hand-over waits for it); ``replace`` starts the new one in its place (retiring the old first if
    it still runs). Both can be called again after either failed half-way."""

    async def retire(self) -> None: ...

    async def replace(self) -> None: ...


# -- Docker ----------------------------------------------------------------------------------------


@dataclass
class DockerEngine:
    """The Engine API on its Unix socket (``socket``), one client for every container."""

    socket: str = DOCKER_SOCKET
    _client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            transport = httpx.AsyncHTTPTransport(uds=self.socket)
            self._client = httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=API_TIMEOUT)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One call; a status other than 2xx and ``ok`` raises RecycleError with the engine's message."""
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RecycleError(f"Docker Engine API at {self.socket}: {method} {path}: {exc!r}") from exc
        if response.is_success or response.status_code in ok:
            return response
        raise RecycleError(f"Docker Engine API: {method} {path}: HTTP {response.status_code} {response.text[:300]}")

    async def inspect(self, name: str) -> dict[str, Any] | None:
        """The container's description (``GET /containers/{name}/json``); None if there is none."""
        response = await self.call("GET", f"/containers/{quote(name, safe='')}/json", ok=(404,))
        if response.status_code == 404:
            return None
        try:
            return dict(response.json())
        except ValueError as exc:
            raise RecycleError(f"Docker Engine API: GET /containers/{name}/json: not JSON: {exc}") from exc


def _creation(old: dict[str, Any], name: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """What ``POST /containers/create`` needs to make ``old`` again, and the networks to connect
    it to after (the API takes one at creation, its ``NetworkMode``'s): each network's name and
    endpoint settings (aliases, a fixed address)."""
    config = old["Config"]
    kept = ("Cmd", "Entrypoint", "Env", "Labels", "User", "WorkingDir", "ExposedPorts", "Healthcheck", "StopSignal",
            "StopTimeout", "Tty", "OpenStdin", "Volumes", "Domainname")  # fmt: skip
    body = {key: config[key] for key in kept if config.get(key) is not None}
    body["Image"] = old["Image"]  # the very image the pool was started with, even if its tag moved on
    body["HostConfig"] = old["HostConfig"]
    endpoints: dict[str, dict[str, Any]] = {}
    for network, endpoint in (old.get("NetworkSettings", {}).get("Networks") or {}).items():
        # Its old id is an alias too on some engines: the new container answers to the others.
        aliases = [alias for alias in endpoint.get("Aliases") or [] if not old["Id"].startswith(alias)]
        settings: dict[str, Any] = {"Aliases": aliases or [name]}
        for key in ("IPAMConfig", "Links", "DriverOpts"):
            if endpoint.get(key):
                settings[key] = endpoint[key]
        endpoints[network] = settings
    first = old["HostConfig"].get("NetworkMode")
    if first not in endpoints:
        first = next(iter(sorted(endpoints)), None)
    if first is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {first: endpoints.pop(first)}}
    return body, sorted(endpoints.items())


@dataclass
class DockerContainer:
    """One executor's container, by its name, recycled through the Engine API. Only a container of
    exactly that name (or that name and ``RETIRED_SUFFIX``) is ever touched, by its id."""

    name: str
    engine: DockerEngine

    @property
    def retired(self) -> str:
        return f"{self.name}{RETIRED_SUFFIX}"

    async def _own(self, name: str) -> dict[str, Any] | None:
        """The container named exactly ``name``: the engine also takes a name for an id's prefix."""
        found = await self.engine.inspect(name)
        return found if found is not None and found.get("Name") == f"/{name}" else None

    async def _stop(self, container: dict[str, Any]) -> None:
        # Stopped by the API, a container is not started again by its restart policy.
        await self.engine.call("POST", f"/containers/{container['Id']}/stop", params={"t": "0"}, ok=(304,))

    async def _remove(self, container: dict[str, Any]) -> None:
        # With its anonymous volumes (an image's VOLUME): the next user gets new ones.
        params = {"force": "true", "v": "true"}
        await self.engine.call("DELETE", f"/containers/{container['Id']}", params=params, ok=(404,))

    async def retire(self) -> None:
        current, retired = await self._own(self.name), await self._own(self.retired)
        if current is None:
            if retired is None:
                raise RecycleError(f"no container {self.name!r} (nor {self.retired!r}) to recycle")
            await self._stop(retired)  # set aside by a retire cut short: stopped, whatever it did
            return
        if retired is not None:
            if current.get("State", {}).get("Status") == "created":
                # A replacement cut short before it started: the one set aside stays the template.
                await self._remove(current)
                await self._stop(retired)
                return
            await self._remove(retired)  # left by a replace cut short after the new one started
        await self.engine.call("POST", f"/containers/{current['Id']}/rename", params={"name": self.retired})
        await self._stop(current)

    async def replace(self) -> None:
        if await self._own(self.retired) is None:
            await self.retire()  # still the last user's (a lease ran out, say): end it first
        old = await self._own(self.retired)
        if old is None:
            raise RecycleError(f"no container {self.retired!r} to make {self.name!r} from")
        await self._stop(old)
        half_made = await self._own(self.name)  # a replacement cut short: never handed out
        if half_made is not None:
            await self._remove(half_made)
        body, more = _creation(old, self.name)
        made = (await self.engine.call("POST", "/containers/create", params={"name": self.name}, json=body)).json()
        for network, endpoint in more:
            connect = {"Container": made["Id"], "EndpointConfig": endpoint}
            await self.engine.call("POST", f"/networks/{quote(network, safe='')}/connect", json=connect)
        await self.engine.call("POST", f"/containers/{made['Id']}/start")
        await self._remove(old)


# -- Kubernetes ------------------------------------------------------------------------------------


@dataclass
class KubernetesApi:
    """The API server, as the manager's pod reaches it: its service account's token (read again
    for every call: the kubelet rotates it) and CA, its namespace, and the address Kubernetes gives
    every pod (``KUBERNETES_SERVICE_HOST``/``_PORT``)."""

    account: Path = SERVICE_ACCOUNT
    _client: httpx.AsyncClient | None = None
    namespace: str = field(init=False, default="")

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            try:
                host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
                self.namespace = (self.account / "namespace").read_text(encoding="utf-8").strip()
                verify = ssl.create_default_context(cafile=str(self.account / "ca.crt"))
            except (KeyError, OSError, ssl.SSLError) as exc:
                raise RecycleError(f"not in a Kubernetes pod with a service account: {exc}") from exc
            host = f"[{host}]" if ":" in host else host
            self._client = httpx.AsyncClient(base_url=f"https://{host}:{port}", verify=verify, timeout=API_TIMEOUT)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def pod(self, name: str, method: str = "GET", **kwargs: Any) -> dict[str, Any] | None:
        """A call on the pod ``name`` of the manager's namespace; None if there is no such pod."""
        client = self.client
        path = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/pods/{quote(name, safe='')}"
        try:
            token = (self.account / "token").read_text(encoding="utf-8").strip()
            response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except (OSError, httpx.HTTPError) as exc:
            raise RecycleError(f"Kubernetes API: {method} {path}: {exc!r}") from exc
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise RecycleError(f"Kubernetes API: {method} {path}: HTTP {response.status_code} {response.text[:300]}")
        try:
            return dict(response.json())
        except ValueError as exc:
            raise RecycleError(f"Kubernetes API: {method} {path}: not JSON: {exc}") from exc


@dataclass
class KubernetesPod:
    """One executor's pod, by its name, recycled by deleting it: its StatefulSet makes it again."""

    name: str
    api: KubernetesApi
    #: The uid of the pod deleted last (a new pod has another).
    gone: str | None = None

    async def _until(self, done: Callable[[dict[str, Any] | None], bool], what: str) -> None:
        deadline = time.monotonic() + POD_REPLACED_TIMEOUT
        while time.monotonic() < deadline:
            if done(await self.api.pod(self.name)):
                return
            await asyncio.sleep(POLL_INTERVAL)
        raise RecycleError(f"pod {self.name!r}: {what} within {POD_REPLACED_TIMEOUT:.0f} s")

    def _old(self, pod: dict[str, Any] | None) -> bool:
        return pod is not None and pod["metadata"]["uid"] == self.gone

    async def retire(self) -> None:
        """The pod deleted, and waited for until it is gone: until then it may still answer at its
        address (its Service publishes pods not ready), with the last user's session in it."""
        pod = await self.api.pod(self.name)
        if pod is not None and not self._old(pod):
            uid = pod["metadata"]["uid"]
            # A second's grace: the node ends the containers, and the name is free for the new pod.
            await self.api.pod(self.name, "DELETE", json={"gracePeriodSeconds": 1, "preconditions": {"uid": uid}})
            self.gone = uid
        await self._until(lambda now: not self._old(now), "the deleted pod still there")

    async def replace(self) -> None:
        await self.retire()
        await self._until(
            lambda now: now is not None and not now["metadata"].get("deletionTimestamp"), "not made again"
        )  # the new pod; the manager asks its /ready before it hands it out


def recycler_of(entry: object, docker: DockerEngine, kubernetes: KubernetesApi) -> Recycler | None:
    """The recycler a ``container_config.json`` entry's ``recycle`` names: ``{"docker": CONTAINER}``
    or ``{"kubernetes": POD}``; None for an executor that is restarted. ValueError if malformed."""
    if entry is None:
        return None
    if isinstance(entry, dict) and len(entry) == 1:
        ((kind, name),) = entry.items()
        if kind == "docker" and isinstance(name, str) and name:
            return DockerContainer(name, docker)
        if kind == "kubernetes" and isinstance(name, str) and name:
            return KubernetesPod(name, kubernetes)
    raise ValueError(f'"recycle" must be {{"docker": CONTAINER}} or {{"kubernetes": POD}}, not {entry!r}')
