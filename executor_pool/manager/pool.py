"""The pool's policy: which executor a user is handed, and how it is handed over to the next.

The executors come from the configuration (the same for every manager); their allocation state
lives in the store (``store.py``: this manager's memory, or Redis shared by several). No HTTP
routing here: ``app.py`` turns requests into these calls and their outcomes into answers.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .recycle import DOCKER_SOCKET, DockerEngine, KubernetesApi, Recycler, recycler_of
from .store import MemoryStore, Store

__all__ = [
    "PROXY_TIMEOUT",
    "Allocation",
    "Executor",
    "NoneAvailable",
    "Pool",
    "UnknownExecutor",
    "UnknownType",
    "load_config",
]

#: How long a proxied call may take (an execute may run for its whole EXECUTION_TIMEOUT).
PROXY_TIMEOUT = 900.0
#: How long the manager has to connect to an executor.
CONNECT_TIMEOUT = 5.0
#: How long the calls in flight on an allocation have to end, once cut by its deallocation.
CUT_CALLS_TIMEOUT = 5.0
#: How long a restart on deallocation may take.
RESTART_TIMEOUT = 120.0
#: How long an executor has to answer GET /ready before it is handed out.
READY_CHECK_TIMEOUT = 2.0
#: How long a recycled executor's replacement may take to become ready (a container's start, a pod's).
RECYCLED_READY_TIMEOUT = 120.0
RECYCLED_POLL_INTERVAL = 0.1
#: How long a recycled executor is set aside (claimed by no manager) while it is replaced: the Engine
#: or API server's calls and the wait for its /ready, and more. A manager that died meanwhile
#: leaves it dirty, set aside again by the next claim once this is up.
RECYCLE_ASIDE = 300.0


@dataclass
class Executor:
    id: str
    url: str
    type: str
    #: How it is replaced between users (``recycle.py``); None: it is restarted.
    recycler: Recycler | None = None


@dataclass(frozen=True)
class Allocation:
    """An executor handed to one user; ``token``: the one its session calls need (None: no auth)."""

    executor: Executor
    token: str | None

    def answer(self) -> dict[str, str]:
        """What /allocate answers."""
        answer = {"container_id": self.executor.id, "url": self.executor.url, "type": self.executor.type}
        if self.token is not None:
            answer["token"] = self.token
        return answer


class UnknownType(LookupError):
    """No executor of the type asked for."""


class UnknownExecutor(LookupError):
    """No executor of the id given."""


class NoneAvailable(Exception):
    """Every executor of the type is allocated, or none of the free ones is ready."""


def _id_order(container_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then any others by name."""
    return (0, int(container_id), "") if container_id.isdigit() else (1, 0, container_id)


@dataclass
class Pool:
    """The executors by id and the store of their allocation state.

    A free executor is handed out only if its /ready says ready. One whose restart failed when it
    was given back is dirty: it is restarted before it is handed out again, never as it was.
    The calls forwarded on each allocation are tracked (``calls``), so that its deallocation can
    cut them before the restart.

    An executor with a ``recycler`` is replaced instead of restarted (``recycle.py``): its
    deallocation ends the old container or pod and frees it set aside (``Store.set_aside``: no
    manager claims it) while a new one is made in the background; ``allocate`` hands out the ready
    ones meanwhile (the warm spares).
    """

    executors: dict[str, Executor]
    store: Store = field(default_factory=MemoryStore)
    #: The calls being forwarded on each executor's allocation.
    calls: dict[str, set[asyncio.Future[httpx.Response]]] = field(default_factory=dict)
    #: The executors whose deallocation is under way.
    handing_over: set[str] = field(default_factory=set)
    #: What recycles executors: the Engine API, the API server (each opened on first use).
    docker: DockerEngine = field(default_factory=DockerEngine)
    kubernetes: KubernetesApi = field(default_factory=KubernetesApi)
    #: The replacements under way, in the background of the deallocations that started them.
    recycling: set[asyncio.Task[None]] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None

    @property
    def types(self) -> list[str]:
        return sorted({executor.type for executor in self.executors.values()})

    @property
    def client(self) -> httpx.AsyncClient:
        """The client every call to an executor goes through (``open`` makes it)."""
        if self._client is None:
            raise RuntimeError("the pool is not open")
        return self._client

    async def open(self, executor_token: str | None) -> None:
        """Register the executors in the store; calls to them carry ``executor_token`` (SEC-4)."""
        await self.store.register((e.id, e.type) for e in self.executors.values())
        headers = {"Authorization": f"Bearer {executor_token}"} if executor_token else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(PROXY_TIMEOUT, connect=CONNECT_TIMEOUT), headers=headers)

    async def close(self) -> None:
        for task in self.recycling:
            task.cancel()
        await asyncio.gather(*self.recycling, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        await self.docker.close()
        await self.kubernetes.close()
        await self.store.close()

    def executor(self, container_id: str) -> Executor:
        try:
            return self.executors[container_id]
        except KeyError:
            raise UnknownExecutor(f"no executor {container_id!r}") from None

    async def status(self) -> dict[str, Any]:
        await self.store.reclaim()
        state = await self.store.status()
        allocated = sorted((i for i in state["allocated"] if i in self.executors), key=_id_order)
        return {
            "available": len(self.executors) - len(allocated),
            "allocated": len(allocated),
            "total": len(self.executors),
            "available_by_type": {kind: state["free_by_type"].get(kind, 0) for kind in self.types},
            "allocated_ids": allocated,
            "not_ready_ids": sorted(state["not_ready"], key=_id_order),
            "needs_restart_ids": sorted(state["dirty"], key=_id_order),
            "lease_s": self.store.lease,
        }

    async def allocate(self, kind: str, *, with_token: bool) -> Allocation:
        """A free executor of ``kind`` that is ready now; one that is not stays free and is skipped.

        Each free executor is claimed (atomically: no other request or manager can take it too),
        restarted if it is dirty, asked /ready, then confirmed or given back to the end of its queue.
        A dirty recycled executor is set aside and replaced in the background, never while a user
        waits; the next free one is tried.
        """
        if kind not in self.types:
            raise UnknownType(f"no executors of type {kind!r}; types: {self.types}")
        await self.store.reclaim()
        free = await self.store.free_count(kind)
        if not free:
            raise NoneAvailable(f"every executor of type {kind!r} is allocated; try again later")
        for _ in range(free):
            claim = await self.store.claim(kind)
            if claim is None:
                break
            executor = self.executors[claim.id]
            if claim.dirty and executor.recycler is not None:
                await self._recycle_in_background(executor)  # never replaced while a user waits
                continue
            healthy = not claim.dirty or await self._restarted(executor)
            if healthy and await self._ready(executor):
                allocation = Allocation(executor, secrets.token_urlsafe(32) if with_token else None)
                await self.store.confirm(executor.id, allocation.token)
                return allocation
            await self.store.give_back(executor.id, dirty=not healthy, not_ready=healthy)  # still free
        raise NoneAvailable(f"no executor of type {kind!r} is ready ({free} free, none ready)")

    async def deallocate(self, container_id: str) -> bool:
        """Hand the executor over: whether its restart cleared the user's state (or, recycled,
        whether its container or pod was ended).

        The hand-over is atomic: the token ends first (a call sent from now on is refused), the
        calls in flight on it are cut (their connections to the executor closed) and waited for,
        then the restart clears the user's state; the executor is handed out again only once
        restarted and ready (``allocate`` asks /ready). Before, the token lived on until the
        restart had ended, and a call sent meanwhile ran in the next user's session. A recycled
        executor's old container or pod is ended before the answer, and its replacement is
        made in the background (``_recycled``).
        """
        executor = self.executor(container_id)
        self.handing_over.add(container_id)
        try:
            await self.store.revoke(container_id)
            in_flight = list(self.calls.get(container_id, ()))
            for call in in_flight:
                call.cancel()
            if in_flight:
                await asyncio.wait(in_flight, timeout=CUT_CALLS_TIMEOUT)
            if executor.recycler is not None:
                # Its container or pod ended before the answer (or left dirty, never handed out
                # as it is), and a new one made in the background.
                retired = await self._retired(executor)
                await self._recycle_in_background(executor)
                return retired
            restarted = await self._restarted(executor)
        finally:
            self.handing_over.discard(container_id)
        # Freed; the pool never shrinks: a dirty one is cleared before it is handed out.
        await self.store.give_back(container_id, dirty=not restarted)
        return restarted

    def _lock(self, executor: Executor) -> asyncio.Lock:
        """One replacement step at a time on an executor, in this manager (the store's set-aside
        keeps the other managers off it)."""
        return self.locks.setdefault(executor.id, asyncio.Lock())

    async def _retired(self, executor: Executor) -> bool:
        """A recycled executor's container or pod ended (and every process in it); False if not
        (left dirty: never handed out as it is)."""
        return await self._recycler_step(executor, lambda recycler: recycler.retire())

    async def _recycler_step(self, executor: Executor, step: Callable[[Recycler], Awaitable[None]]) -> bool:
        """One step of the executor's recycler, under its lock; False if it failed, whatever failed."""
        try:
            async with self._lock(executor):
                if executor.recycler is not None:
                    await step(executor.recycler)
        except Exception:
            return False
        return True

    async def _recycle_in_background(self, executor: Executor) -> None:
        """Free the executor set aside (dirty, not ready, claimed by no one: ``Store.set_aside``)
        while its new container or pod is made in the background (``_recycled``)."""
        await self.store.set_aside(executor.id, RECYCLE_ASIDE)
        task = asyncio.create_task(self._recycled(executor))
        self.recycling.add(task)
        task.add_done_callback(self.recycling.discard)

    async def _recycled(self, executor: Executor) -> None:
        """A set-aside executor replaced: claimable again, clean once its new one's /ready says
        ready, dirty if the replacement failed (the next claim sets it aside again). Cancelled (the
        manager stopping), it stays set aside, dirty, until the store's time is up."""
        try:
            ready = await self._replaced(executor)
        except Exception:  # whatever failed, the executor is never handed out uncleared
            ready = False
        await self.store.cleared(executor.id, ok=ready)

    async def _replaced(self, executor: Executor) -> bool:
        """A recycled executor's new container or pod made, and its /ready true."""
        if not await self._recycler_step(executor, lambda recycler: recycler.replace()):
            return False
        deadline = time.monotonic() + RECYCLED_READY_TIMEOUT
        while time.monotonic() < deadline:
            if await self._ready(executor):
                return True
            await asyncio.sleep(RECYCLED_POLL_INTERVAL)
        return False

    async def _ready(self, executor: Executor) -> bool:
        try:
            answer = await self.client.get(f"{executor.url}/ready", timeout=READY_CHECK_TIMEOUT)
            return answer.status_code == 200 and answer.json().get("ready") is True
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    async def _restarted(self, executor: Executor) -> bool:
        try:
            answer = await self.client.post(f"{executor.url}/restart", timeout=RESTART_TIMEOUT)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200


def load_config(path: Path, store: Store | None = None, docker_socket: str | None = None) -> Pool:
    """The pool described by container_config.json: {"0": {"url": ..., "type": ...}, ...}; an
    entry's ``"recycle"`` (``{"docker": CONTAINER}``, ``{"kubernetes": POD}``) recycles it.
    ``docker_socket``: where the Engine API listens (default ``recycle.DOCKER_SOCKET``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    docker, kubernetes = DockerEngine(docker_socket or DOCKER_SOCKET), KubernetesApi()
    executors = {}
    for i, entry in data.items():
        recycler = recycler_of(entry.get("recycle"), docker, kubernetes)
        executors[str(i)] = Executor(str(i), str(entry["url"]).rstrip("/"), str(entry["type"]), recycler)
    return Pool(executors, store or MemoryStore(), docker=docker, kubernetes=kubernetes)
