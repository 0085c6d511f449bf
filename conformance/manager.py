"""The kit's client of a pool's manager: the pool contract (docs/pool-contract.md) as calls.

A pool is certified through its manager alone, as its operator (the manager's token) and as the
users it hands executors to (each allocation's token). Every executor the kit allocates is given
back when the test ends, whatever its outcome (``Manager.give_back``), and the test checks it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .client import ExecutorClient
from .schema import POOL_API, schema_errors
from .violations import Exchange

__all__ = ["MOST_ALLOCATIONS", "Allocation", "Manager", "bearer"]

#: The most executors of one type the kit holds at once (to be handed one it gave back).
MOST_ALLOCATIONS = 16


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _headers(token: str | None) -> dict[str, str] | None:
    """The headers that carry ``token``; none for no token (an allocation that answered none)."""
    return bearer(token) if token else None


@dataclass
class Allocation:
    """An executor the manager handed the kit: its id, type and token, and its session (through
    the manager, with the allocation's token)."""

    container_id: str
    type: str
    token: str
    session: ExecutorClient
    given_back: bool = False


class Manager:
    """A pool's manager: ``operator`` carries the manager's token (bound to the test's requirement)."""

    def __init__(self, operator: ExecutorClient, pool_type: str) -> None:
        self.operator = operator
        self.type = pool_type
        self.allocations: list[Allocation] = []
        self._clients: list[ExecutorClient] = []

    def as_bearer_of(self, token: str | None) -> ExecutorClient:
        """A client of the manager that carries ``token`` (None: no Authorization at all)."""
        return self._opened(self.operator.of_sibling(self.operator.base_url, headers=_headers(token)))

    def session_at(self, container_id: str, token: str | None) -> ExecutorClient:
        """The session of executor ``container_id`` through the manager, reached with ``token`` (None: none)."""
        url = f"{self.operator.base_url}/session/{quote(container_id, safe='')}"
        return self._opened(self.operator.of_sibling(url, headers=_headers(token)))

    def status(self, *, whole: bool = False) -> dict[str, Any]:
        """GET /status, as the operator (POOL-4's to answer): a JSON object with ``allocated_ids``,
        or (``whole``) a Status of pool-openapi.yaml, every field (POOL-4's own test)."""
        exchange = self.operator.request("GET", "/status")
        if whole:
            return self._answered(exchange, "Status", "POOL-4")
        body = exchange.json
        self.operator.expect(
            exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("allocated_ids"), list),
            'HTTP 200 and a JSON object with "allocated_ids" (a list) from GET /status',
            exchange.response_line,
            exchange,
            "POOL-4",
        )
        return body  # type: ignore[no-any-return]

    def ask_allocation(self, pool_type: str | None = None) -> Exchange:
        """POST /allocate as the operator; what it answered, whatever it was."""
        exchange = self.operator.request("POST", f"/allocate?container_type={quote(pool_type or self.type, safe='')}")
        self.keep(exchange)
        return exchange

    def allocate(self, *, when_free: bool = True, whole: bool = False) -> Allocation:
        """An executor of the pool's type (POOL-3's to answer): HTTP 200 with its ``container_id``,
        or (``whole``) an Allocation of pool-openapi.yaml, its token too (POOL-3's own test; the
        others go on without a token, as its user would). ``when_free``: asked again while none is
        free (503), for ``timeouts.ready`` s: one given back (by the test before, say) is handed out
        again only once its restart has answered and it is ready, which a manager may do after
        /deallocate has answered."""
        exchange = self.ask_allocation()
        deadline = time.monotonic() + self.operator.timeouts.ready
        while when_free and exchange.status == 503 and time.monotonic() < deadline:
            time.sleep(self.operator.timeouts.poll_interval)
            exchange = self.ask_allocation()
        if whole:
            self._answered(exchange, "Allocation", "POOL-3")
        else:
            body = exchange.json
            self.operator.expect(
                exchange.status == 200 and isinstance(body, dict) and bool(body.get("container_id")),
                'HTTP 200 and a JSON object with "container_id" from POST /allocate',
                exchange.response_line,
                exchange,
                "POOL-3",
            )
        return self.allocations[-1]

    def _answered(self, exchange: Exchange, component: str, requirement: str) -> dict[str, Any]:
        """The body of ``exchange``, which must be HTTP 200 and a ``component`` of pool-openapi.yaml."""
        problems = schema_errors(component, exchange.json, POOL_API) if exchange.status == 200 else []
        self.operator.expect(
            exchange.status == 200 and not problems,
            f"HTTP 200 and a {component} (pool-openapi.yaml) from {exchange.request_line}",
            "; ".join(problems) or exchange.response_line,
            exchange,
            requirement,
        )
        return exchange.json  # type: ignore[no-any-return]

    def allocate_every_free(self) -> list[Allocation]:
        """Every free executor of the type (at most ``MOST_ALLOCATIONS``): as many as /status says
        are free, each asked for again while the manager answers 503, for ``timeouts.ready`` s (a
        manager may clear an executor after /deallocate has answered, free but not yet ready), then
        any more until it answers that none is free."""
        status = self.status()
        free, lease = status.get("available_by_type"), status.get("lease_s")
        expected = free.get(self.type) if isinstance(free, dict) else None
        expected = expected if isinstance(expected, int) else 0
        # Those held are used while the others are waited for, so that no lease of theirs runs out.
        touch_every = lease / 3 if isinstance(lease, (int, float)) and lease > 0 else math.inf
        held: list[Allocation] = []
        deadline = time.monotonic() + self.operator.timeouts.ready
        touched = time.monotonic()
        while len(held) < MOST_ALLOCATIONS:
            exchange = self.ask_allocation()
            if exchange.status == 503 and len(held) < expected and time.monotonic() < deadline:
                if time.monotonic() - touched > touch_every:
                    for allocation in held:
                        allocation.session.request("GET", "/health")
                    touched = time.monotonic()
                time.sleep(self.operator.timeouts.poll_interval)
                continue
            if exchange.status != 200:
                self.operator.expect(
                    exchange.status == 503,
                    "HTTP 503 from POST /allocate once every executor of the type is allocated",
                    exchange.response_line,
                    exchange,
                    "POOL-3",
                )
                return held
            held.append(self.allocations[-1])
        return held

    def deallocate(self, allocation: Allocation, client: ExecutorClient | None = None) -> Exchange:
        """POST /deallocate/{id} (as the operator, or as ``client``)."""
        exchange = (client or self.operator).request("POST", f"/deallocate/{quote(allocation.container_id, safe='')}")
        if exchange.status == 200:
            allocation.given_back = True
        return exchange

    def give_back(self) -> list[str]:
        """Deallocate what the kit still holds, and close its clients; the ids the manager would not
        take back."""
        try:
            kept = [a.container_id for a in self.allocations if not a.given_back and self.deallocate(a).status != 200]
            if kept:  # refused, as an allocation a lease already ended is: held no longer, it is back
                allocated = self.status().get("allocated_ids", [])
                kept = [container_id for container_id in kept if container_id in allocated]
            return kept
        finally:
            for client in self._clients:
                client.close()

    def _opened(self, client: ExecutorClient) -> ExecutorClient:
        self._clients.append(client)
        return client

    def keep(self, exchange: Exchange) -> None:
        """An allocation ``exchange`` made (if it made one), given back when the test ends."""
        body = exchange.json
        if exchange.status != 200 or not isinstance(body, dict):
            return
        container_id, token = str(body.get("container_id", "")), str(body.get("token", ""))
        session = self.session_at(container_id, token)
        self.allocations.append(Allocation(container_id, str(body.get("type", "")), token, session))
