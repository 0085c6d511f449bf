"""Where the manager keeps the pool's allocation state: in its own memory, or in Redis.

The state: which executors are free (a queue per type, handed out from the front, given back at
the end), which are allocated and until when (the lease, when the operator set one), each
allocation's session token, and what is known of their health: *not ready* when last asked,
*dirty* when their restart failed as they were given back (restarted before they are handed out
again, never as they were).

``MemoryStore`` is the default, as the original manager kept it. ``RedisStore`` lets several
managers share one pool: every change is one Lua script, which Redis runs atomically, so no two
managers can hand out the same executor, and a manager that restarts forgets nothing. Lease times
come from Redis's own clock, so the managers' clocks need not agree.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # redis is the pool extra's, imported only by a manager given --store redis://
    from redis.asyncio import Redis

__all__ = ["DEFAULT_PREFIX", "Claim", "MemoryStore", "RedisStore", "Store", "open_store"]

#: The keys of a pool in Redis start with this (several pools can share one Redis under other names).
DEFAULT_PREFIX = "executor-pool"


@dataclass(frozen=True)
class Claim:
    """A free executor, now allocated to the manager that claimed it; ``dirty``: restart it first."""

    id: str
    dirty: bool


class Store(Protocol):
    """The pool's allocation state. Every method is one atomic step."""

    #: Seconds an allocation lasts without a call to its session (None: until /deallocate).
    lease: float | None

    async def register(self, executors: Iterable[tuple[str, str]]) -> None:
        """Add executors (id, type) not known yet, as free; known ones keep their state."""

    async def claim(self, kind: str) -> Claim | None:
        """Take the free executor of ``kind`` at the front of its queue (None: none free). It is
        allocated from now on, under the lease, until it is confirmed or given back."""

    async def confirm(self, executor_id: str, token: str | None) -> None:
        """The claimed executor is handed out: healthy, with the allocation's token (if any)."""

    async def give_back(self, executor_id: str, *, dirty: bool = False, not_ready: bool = False) -> bool:
        """Free an allocated executor (to the end of its queue) and end its token; False if it was
        not allocated. ``dirty`` marks it for a restart first; ``not_ready``, as not ready when asked."""

    async def set_aside(self, executor_id: str, seconds: float) -> None:
        """Free an allocated executor as ``give_back`` does, dirty and not ready, and out of every
        claim for ``seconds`` while it is cleared in the background (a recycled executor, whose new
        container or pod is being made). A manager that dies meanwhile leaves it dirty: claimed
        once the time is up, it is cleared again before it is handed out."""

    async def cleared(self, executor_id: str, *, ok: bool) -> None:
        """The background clearing of a set-aside executor ended: claimable again, clean and ready
        if ``ok``, dirty if not."""

    async def revoke(self, executor_id: str) -> None:
        """End the token of the executor's allocation at once for its sessions; the executor stays
        allocated (not free) until it is given back: the hand-over to the next user starts here.
        The token still ends the allocation (``ending``), so that a /deallocate sent again, after a
        manager died in the middle of one, is not refused."""

    async def ending(self, executor_id: str) -> str | None:
        """The token of an allocation being handed over (revoked, not yet given back); None: none."""

    async def holder(self, executor_id: str) -> str | None:
        """The token of the executor's allocation (None: none), extending its lease: it is in use."""

    async def reclaim(self) -> list[str]:
        """Free the allocations whose lease ended (their holder vanished), marked dirty."""

    async def free_count(self, kind: str) -> int:
        """How many executors of ``kind`` are free."""

    async def status(self) -> dict[str, Any]:
        """Free counts by type, allocated ids, not-ready ids, dirty ids."""

    async def close(self) -> None:
        """Release the store's connections."""


@dataclass
class MemoryStore:
    """The state in this manager's memory, as the original manager kept it (one manager only)."""

    #: Seconds an allocation lasts without use; None: until it is given back.
    lease: float | None = None
    free: dict[str, deque[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    #: Allocated executor id -> when its lease ends (monotonic seconds; infinity without a lease).
    leases: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    #: The tokens of allocations being handed over (``revoke``): they end the allocation, nothing else.
    ending_tokens: dict[str, str] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    not_ready: set[str] = field(default_factory=set)
    #: Executors set aside (free, claimed by no one) until then (monotonic seconds).
    aside: dict[str, float] = field(default_factory=dict)

    def _until(self) -> float:
        return math.inf if self.lease is None else time.monotonic() + self.lease

    async def register(self, executors: Iterable[tuple[str, str]]) -> None:
        for executor_id, kind in executors:
            if executor_id not in self.types:
                self.types[executor_id] = kind
                self.free.setdefault(kind, deque()).append(executor_id)

    async def claim(self, kind: str) -> Claim | None:
        queue = self.free.get(kind, deque())
        now = time.monotonic()
        for _ in range(len(queue)):
            executor_id = queue.popleft()
            if self.aside.get(executor_id, 0.0) > now:
                queue.append(executor_id)  # being cleared: passed over, to the end of the queue
                continue
            self.aside.pop(executor_id, None)
            self.leases[executor_id] = self._until()
            return Claim(executor_id, executor_id in self.dirty)
        return None

    async def confirm(self, executor_id: str, token: str | None) -> None:
        self.dirty.discard(executor_id)
        self.not_ready.discard(executor_id)
        if token is not None:
            self.tokens[executor_id] = token

    async def give_back(self, executor_id: str, *, dirty: bool = False, not_ready: bool = False) -> bool:
        if dirty:
            self.dirty.add(executor_id)
        if not_ready:
            self.not_ready.add(executor_id)
        if self.leases.pop(executor_id, None) is None:
            return False
        self.tokens.pop(executor_id, None)
        self.ending_tokens.pop(executor_id, None)
        self.free[self.types[executor_id]].append(executor_id)
        return True

    async def set_aside(self, executor_id: str, seconds: float) -> None:
        self.aside[executor_id] = time.monotonic() + seconds
        await self.give_back(executor_id, dirty=True, not_ready=True)

    async def cleared(self, executor_id: str, *, ok: bool) -> None:
        self.aside.pop(executor_id, None)
        if ok:
            self.dirty.discard(executor_id)
            self.not_ready.discard(executor_id)
        else:
            self.dirty.add(executor_id)

    async def revoke(self, executor_id: str) -> None:
        if executor_id in self.tokens:
            self.ending_tokens[executor_id] = self.tokens.pop(executor_id)

    async def ending(self, executor_id: str) -> str | None:
        return self.ending_tokens.get(executor_id)

    async def holder(self, executor_id: str) -> str | None:
        if executor_id in self.leases:
            self.leases[executor_id] = self._until()
        return self.tokens.get(executor_id)

    async def reclaim(self) -> list[str]:
        now = time.monotonic()
        ended = [executor_id for executor_id, until in self.leases.items() if until <= now]
        for executor_id in ended:
            await self.give_back(executor_id, dirty=True)
        return ended

    async def free_count(self, kind: str) -> int:
        return len(self.free.get(kind, ()))

    async def status(self) -> dict[str, Any]:
        return {
            "free_by_type": {kind: len(queue) for kind, queue in self.free.items()},
            "allocated": sorted(self.leases),
            "not_ready": sorted(self.not_ready),
            "dirty": sorted(self.dirty),
        }

    async def close(self) -> None:
        return None


# -- Redis: each step one script (Redis runs a script atomically) --------------------------------
# Keys, under the prefix P: P:types (hash id -> type), P:free:<type> (list), P:leases (sorted set
# id -> end of lease, in Redis's seconds), P:tokens (hash id -> token), P:ending (hash id -> the token
# of an allocation being handed over), P:dirty and P:not-ready (sets), P:aside (sorted set id -> when
# a free executor set aside to be cleared may be claimed again).

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

_REGISTER = """
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[2] .. ARGV[i + 1], ARGV[i])
  end
end
"""

_CLAIM = (
    _NOW
    + """
local lease = tonumber(ARGV[1])
for _ = 1, redis.call('LLEN', KEYS[1]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then return false end
  local aside = redis.call('ZSCORE', KEYS[4], id)
  if aside and tonumber(aside) > now then
    redis.call('RPUSH', KEYS[1], id)
  else
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZADD', KEYS[2], lease < 0 and 'inf' or now + lease, id)
    return {id, redis.call('SISMEMBER', KEYS[3], id)}
  end
end
return false
"""
)

_ASIDE = _NOW + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"

_GIVE_BACK = """
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('RPUSH', KEYS[6] .. redis.call('HGET', KEYS[5], ARGV[1]), ARGV[1])
return 1
"""

_REVOKE = """
local token = redis.call('HGET', KEYS[1], ARGV[1])
if token then
  redis.call('HSET', KEYS[2], ARGV[1], token)
  redis.call('HDEL', KEYS[1], ARGV[1])
end
"""

_HOLDER = (
    _NOW
    + """
local lease = tonumber(ARGV[2])
if lease >= 0 then redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[1]) end
return redis.call('HGET', KEYS[2], ARGV[1])
"""
)

_RECLAIM = (
    _NOW
    + """
local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(ended) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('SADD', KEYS[3], id)
  redis.call('RPUSH', KEYS[5] .. redis.call('HGET', KEYS[4], id), id)
end
return ended
"""
)


class RedisStore:
    """The state in Redis, shared by every manager given the same URL and prefix."""

    def __init__(self, redis: Redis, *, lease: float | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.lease = lease
        self.prefix = prefix
        self._register = redis.register_script(_REGISTER)
        self._claim = redis.register_script(_CLAIM)
        self._give_back = redis.register_script(_GIVE_BACK)
        self._revoke = redis.register_script(_REVOKE)
        self._holder = redis.register_script(_HOLDER)
        self._reclaim = redis.register_script(_RECLAIM)
        self._aside = redis.register_script(_ASIDE)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def _lease_arg(self) -> float:
        return -1.0 if self.lease is None else self.lease

    async def register(self, executors: Iterable[tuple[str, str]]) -> None:
        pairs = [part for executor_id, kind in executors for part in (executor_id, kind)]
        await self._register(keys=[self._key("types"), self._key("free:")], args=pairs)

    async def claim(self, kind: str) -> Claim | None:
        keys = [self._key(f"free:{kind}"), self._key("leases"), self._key("dirty"), self._key("aside")]
        claimed = await self._claim(keys=keys, args=[self._lease_arg])
        if not claimed:
            return None
        executor_id, dirty = claimed
        return Claim(_text(executor_id), bool(dirty))

    async def confirm(self, executor_id: str, token: str | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(self._key("dirty"), executor_id)
            pipe.srem(self._key("not-ready"), executor_id)
            if token is not None:
                pipe.hset(self._key("tokens"), executor_id, token)
            await pipe.execute()

    async def give_back(self, executor_id: str, *, dirty: bool = False, not_ready: bool = False) -> bool:
        keys = [
            self._key("leases"),
            self._key("tokens"),
            self._key("dirty"),
            self._key("not-ready"),
            self._key("types"),
            self._key("free:"),
            self._key("ending"),
        ]
        freed = await self._give_back(keys=keys, args=[executor_id, int(dirty), int(not_ready)])
        return bool(freed)

    async def set_aside(self, executor_id: str, seconds: float) -> None:
        await self._aside(keys=[self._key("aside")], args=[executor_id, seconds])  # before it is free
        await self.give_back(executor_id, dirty=True, not_ready=True)

    async def cleared(self, executor_id: str, *, ok: bool) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("aside"), executor_id)
            if ok:
                pipe.srem(self._key("dirty"), executor_id)
                pipe.srem(self._key("not-ready"), executor_id)
            else:
                pipe.sadd(self._key("dirty"), executor_id)
            await pipe.execute()

    async def revoke(self, executor_id: str) -> None:
        await self._revoke(keys=[self._key("tokens"), self._key("ending")], args=[executor_id])

    async def ending(self, executor_id: str) -> str | None:
        token = await self.redis.hget(self._key("ending"), executor_id)
        return None if token is None else _text(token)

    async def holder(self, executor_id: str) -> str | None:
        token = await self._holder(keys=[self._key("leases"), self._key("tokens")], args=[executor_id, self._lease_arg])
        return None if token is None else _text(token)

    async def reclaim(self) -> list[str]:
        keys = [self._key(name) for name in ("leases", "tokens", "dirty", "types", "free:", "ending")]
        return [_text(executor_id) for executor_id in await self._reclaim(keys=keys)]

    async def free_count(self, kind: str) -> int:
        return int(await self.redis.llen(self._key(f"free:{kind}")))

    async def status(self) -> dict[str, Any]:
        types = {_text(k): _text(v) for k, v in (await self.redis.hgetall(self._key("types"))).items()}
        kinds = sorted(set(types.values()))
        async with self.redis.pipeline(transaction=True) as pipe:
            for kind in kinds:
                pipe.llen(self._key(f"free:{kind}"))
            pipe.zrange(self._key("leases"), 0, -1)
            pipe.smembers(self._key("not-ready"))
            pipe.smembers(self._key("dirty"))
            *free, allocated, not_ready, dirty = await pipe.execute()
        return {
            "free_by_type": dict(zip(kinds, (int(n) for n in free), strict=True)),
            "allocated": sorted(_text(i) for i in allocated),
            "not_ready": sorted(_text(i) for i in not_ready),
            "dirty": sorted(_text(i) for i in dirty),
        }

    async def close(self) -> None:
        await self.redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def open_store(url: str | None, *, lease: float | None = None, prefix: str = DEFAULT_PREFIX) -> Store:
    """The store a manager is given: ``redis://...`` (or ``rediss://``, ``unix://``), or memory (None)."""
    if url is None or url == "memory":
        return MemoryStore(lease=lease)
    from redis.asyncio import Redis

    return RedisStore(Redis.from_url(url), lease=lease, prefix=prefix)
