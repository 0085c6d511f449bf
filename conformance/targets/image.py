"""The image target: a local container image started with testcontainers under resource limits.

No registry is ever contacted: a missing image is an immediate, clear error, and the
testcontainers reaper (which would need an image pull) is switched off. The container's port
is published on 127.0.0.1 only, and the kit talks to it there (TC_HOST=127.0.0.1).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from ..settings import CONTRACT_DEFAULTS, KIT_SETTINGS, WORKSPACE_ELSEWHERE, ExecutorSettings
from ..timeouts import KitTimeouts
from .base import Beside, ResourceUsage, TargetError, TargetState
from .readiness import ports_to_try, reach_started
from .workspace import Workspace, prepare_workspace

__all__ = ["PRODUCTION_CPUS", "PRODUCTION_MEMORY", "PRODUCTION_PIDS", "ImageTarget", "archive_of", "docker_available"]

#: The limits the kit starts an image under unless told otherwise: the original deployment's.
PRODUCTION_MEMORY = "256m"
PRODUCTION_CPUS = 0.25
#: Processes and threads (the pids control group): a fork bomb meets it (ISO-10), as in production.
PRODUCTION_PIDS = 1024
#: Every container this kit process starts carries this label: a run, or a test of one, finds what
#: it started (and checks it is gone) without counting another run's containers of the same image.
RUN_LABEL = f"executor-conformance.run={uuid.uuid4().hex[:16]}"
#: Docker's default network, where the kit's containers go whatever network the kit itself is on.
DEFAULT_NETWORK = "bridge"
#: Where the container that receives the workspace's files mounts the volume (it is never started).
_RECEIVED_AT = "/executor-conformance-workspace"


def _owned_by_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """The kit's files as the executor sees them: root's, whoever runs the kit."""
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    return member


def archive_of(path: Path, name: str) -> bytes:
    """``path`` (a file, or a folder with what it holds) as a tar archive whose member is ``name``, owned
    by root: for a container's put_archive. The kit's files reach containers through the engine's API,
    never a bind mount: the engine may not see the kit's filesystem (the kit in a CI job's container,
    talking to the host's engine through its socket, where a bind mount shows an empty folder)."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(path, arcname=name, filter=_owned_by_root)
    return archive.getvalue()


def _configure_testcontainers() -> None:
    # testcontainers reads these when it is imported, so they are set before the first import.
    # Inside a container (/.dockerenv) it would otherwise reach containers by a gateway or bridge
    # IP; the kit talks to them only through their ports published on 127.0.0.1.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


def docker_available() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


@dataclass
class ImageTarget(TargetState):
    """A container of ``image``, with the kit's workspace in a volume mounted read-only at its WORKSPACE_FOLDER."""

    kind: ClassVar[str] = "image"
    on_kit_host: ClassVar[bool] = False
    image: str
    timeouts: KitTimeouts
    memory: str | None = PRODUCTION_MEMORY
    cpus: float | None = PRODUCTION_CPUS
    pids: int | None = PRODUCTION_PIDS
    #: The values the container is started with (``workspace`` "defaults": none at all).
    settings: ExecutorSettings = KIT_SETTINGS
    #: What it finds as its workspace; the sample workspace is mounted read-only.
    workspace: Workspace = Workspace.KIT
    #: The sample workspace's files (the language pack's; None: the default pack's).
    workspace_source: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    image_id: str | None = None
    _container: Any = None
    #: The Docker volume holding the workspace, removed with the container.
    _volume: str | None = None
    _final_logs: str = ""

    def start(self) -> None:
        _configure_testcontainers()
        problem = docker_available()
        if problem:
            raise TargetError(f"cannot certify image {self.image!r}: {problem}. Start dockerd, or use --url.")
        import docker
        from testcontainers.core.container import DockerContainer

        client = docker.from_env()
        try:
            self.image_id = client.images.get(self.image).id
            # On the engine's default network, named: run in a container (a CI job's), testcontainers
            # would put it on the kit's own network, the host's for a job on the host network, where
            # nothing is published and the executor would take the host's ports.
            network = {"network": DEFAULT_NETWORK} if client.networks.list(names=[DEFAULT_NETWORK]) else {}
        except docker.errors.ImageNotFound:
            raise TargetError(
                f"image {self.image!r} is not present locally; build or load it first "
                "(for the reference executor: nox -s image). The kit never pulls images."
            ) from None
        finally:
            client.close()

        container = DockerContainer(self.image).with_kwargs(**self.docker_limits(), **network)
        settings, env = self._settings()
        for key, value in {**env, **self.env}.items():
            container.with_env(key, value)
        if self.command:
            container.with_command(self.command)
        # Free host ports on loopback only, for PORT and for the contract's default (where an
        # executor that ignores PORT is found). testcontainers' with_bind_ports takes no host
        # address, so the bindings go to docker-py, which accepts (address, None): any free port.
        ports = ports_to_try(settings.port or CONTRACT_DEFAULTS.port or 0, the_default_too=True)
        container.with_exposed_ports(*ports)
        for port in ports:
            container.ports[str(port)] = ("127.0.0.1", None)  # type: ignore[assignment]
        self._container = container
        try:
            if self.workspace is not Workspace.MISSING:
                container.with_volume_mapping(self._workspace_volume(), str(settings.workspace_folder), "ro,nocopy")
            try:
                container.start()
            except Exception as exc:
                raise TargetError(
                    f"the container {self._state()} ({type(exc).__name__}).\nLast log lines:\n{self.logs()}"
                ) from None
            self.launched_at = self._started_at()
            self.capabilities.started_by_kit(
                workspace_mounted=self.workspace.has_code,
                memory_limited=self.memory is not None,
                settings=settings,
                signal_scope=1,  # the container's own PID namespace
            )
            reach_started(self, self.timeouts, lambda: ports, self._published, self._exited)
        except BaseException:
            self.stop()
            raise

    def problems(self) -> list[str]:
        return []  # a missing image stops the start, said; the container is the kit's

    def _workspace_volume(self) -> str:
        """A Docker volume of this run holding the workspace (``self.workspace``'s kind), mounted read-only.

        Filled through the engine's API (``archive_of``), by a container of the image that is created
        to receive the files and never started.
        """
        import docker

        with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
            folder = prepare_workspace(self.workspace, Path(scratch) / "workspace", self.workspace_source)
            archive = archive_of(folder, ".")
        client = docker.from_env()
        labels = dict([RUN_LABEL.split("=", 1)])
        try:
            volume = client.volumes.create(labels=labels)
            self._volume = str(volume.name)  # removed by stop(), whatever fails from here on
            receiver = client.containers.create(
                self.image, command=["true"], labels=labels, network_disabled=True,
                volumes={volume.name: {"bind": _RECEIVED_AT, "mode": "rw,nocopy"}},
            )  # fmt: skip
            try:
                if not receiver.put_archive(_RECEIVED_AT, archive):
                    raise TargetError(f"the workspace could not be copied into a volume for {self.image!r}")
            finally:
                receiver.remove(force=True, v=True)  # with any anonymous volume of the image's
            return self._volume
        finally:
            client.close()

    def _remove_volume(self) -> None:
        """Remove the workspace's volume; a failure is said, never raised (stop() runs on every exit)."""
        volume, self._volume = self._volume, None
        if volume is None:
            return
        import docker

        try:
            client = docker.from_env()
            try:
                client.volumes.get(volume).remove(force=True)
            finally:
                client.close()
        except docker.errors.NotFound:
            pass
        except Exception as exc:  # the engine gone, or the volume still in use
            print(f"executor-conformance: the workspace's volume {volume} was not removed: {exc}", file=sys.stderr)

    def _settings(self) -> tuple[ExecutorSettings, dict[str, str]]:
        """The settings in force in the container, and the environment that sets them."""
        if self.workspace is Workspace.DEFAULTS:
            return CONTRACT_DEFAULTS, {}
        settings = self.settings
        if self.workspace is Workspace.ELSEWHERE:
            settings = replace(settings, workspace_folder=WORKSPACE_ELSEWHERE)
        return settings, settings.environment()

    def _published(self, port: int) -> str:
        """The base URL, on 127.0.0.1, where the container's ``port`` is published.

        testcontainers asks a container that is not running to run first, and gives up with its own
        TimeoutError: a container that died since the last look is said as what it is."""
        try:
            return f"http://{self._container.get_container_host_ip()}:{self._container.get_exposed_port(port)}"
        except Exception:
            problem = self._exited()
            if problem is None:
                raise
            raise TargetError(f"the executor {problem} before it answered.\nLast log lines:\n{self.logs()}") from None

    def docker_limits(self) -> dict[str, Any]:
        """The memory, CPU and process limits as docker-py takes them (for this container, or another
        like it), and the label of this run (``RUN_LABEL``): what the kit started is found by it."""
        limits: dict[str, Any] = {"labels": dict([RUN_LABEL.split("=", 1)])}
        if self.memory:
            limits.update(mem_limit=self.memory, memswap_limit=self.memory)  # no swap: the limit is real
        if self.cpus:
            limits["nano_cpus"] = int(self.cpus * 1e9)
        if self.pids:
            limits["pids_limit"] = self.pids
        return limits

    def _started_at(self) -> float | None:
        """When Docker started the container's process (State.StartedAt), as ``time.time()`` reads it.

        Creating the container and wiring its network come before and are Docker's own time.
        """
        try:
            raw = (self._docker_state() or {})["StartedAt"]  # e.g. 2026-11-27T11:10:00.123456789Z
        except Exception:
            return None
        found = re.fullmatch(r"(\S+?)(\.\d{1,6})?\d*Z", raw)
        if not found:
            return None
        return datetime.fromisoformat(f"{found[1]}{found[2] or ''}+00:00").timestamp()

    def _docker_state(self) -> dict[str, Any] | None:
        """The container's State as Docker reports it now; None before it was created. Raises if it is gone."""
        wrapped = getattr(self._container, "_container", None)
        if wrapped is None:
            return None
        wrapped.reload()
        return dict(wrapped.attrs.get("State", {}))

    def _state(self) -> str:
        try:
            state = self._docker_state()
        except Exception:
            return "is gone"
        if state is None:
            return "could not be created"
        if state.get("Status") in ("exited", "dead"):
            oom = " (killed for lack of memory)" if state.get("OOMKilled") else ""
            return f"died with exit code {state.get('ExitCode')}{oom}"
        return "started but never answered /health"

    def _exited(self) -> str | None:
        state = self._state()
        return state if state.startswith("died") or state == "is gone" else None

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            self._final_logs = self._read_logs(container, 200)
            with contextlib.suppress(Exception):  # already gone
                container.stop()
        self._remove_volume()

    @staticmethod
    def _read_logs(container: Any, lines: int) -> str:
        try:
            stdout, stderr = container.get_logs()
        except Exception:
            return ""
        text = (stdout + stderr).decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def resource_usage(self) -> ResourceUsage | None:
        """The container's memory as `docker stats` shows it (usage less page cache), and its CPU time."""
        if self._container is None:
            return None
        try:
            stats = self._container.get_wrapped_container().stats(stream=False, one_shot=True)
        except Exception:
            return None
        memory = stats.get("memory_stats", {})
        detail = memory.get("stats", {})
        cache = detail.get("inactive_file", detail.get("total_inactive_file", detail.get("cache", 0)))
        if "usage" not in memory:
            return None
        cpu_ns = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)
        return ResourceUsage(int(memory["usage"]) - int(cache), cpu_ns / 1e9, "container memory less page cache")

    def logs(self, lines: int = 60) -> str:
        if self._container is None:
            return "\n".join(self._final_logs.splitlines()[-lines:])
        return self._read_logs(self._container, lines)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "image": self.image,
            "label": RUN_LABEL,
            "image_id": self.image_id,
            "memory": self.memory,
            "cpus": self.cpus,
            "pids": self.pids,
            "base_url": self.base_url,
            **asdict(self.capabilities),
        }

    def run_beside(
        self, script: Path, args: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> Beside:
        """Run ``script`` with the image's ``python3`` in a container of the image, under the same limits,
        with no network; the script reaches it through the engine's API (``archive_of``)."""
        import docker

        client = docker.from_env()
        at = f"/kit-{script.name}"
        container = client.containers.create(
            self.image,
            ["python3", at, *args],
            entrypoint=[],
            environment={"HOME": "/tmp", **(env or {})},
            network_disabled=True,
            **self.docker_limits(),
        )
        try:
            container.put_archive("/", archive_of(script, at.lstrip("/")))
            container.start()
            status = container.wait(timeout=timeout)
            out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            if status.get("StatusCode") == 0:
                return Beside("container", out)
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace").strip().splitlines()
            return Beside("container", None, err[-1] if err else f"exit code {status.get('StatusCode')}")
        finally:
            container.remove(force=True)
            client.close()
