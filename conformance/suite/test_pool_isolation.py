"""The pool contract's isolation (docs/pool-contract.md): what user code in one executor of the
pool can reach. Inside an executor the executor contract isolates one user from the next; these
requirements hold the pool around it to the same standard.

The session reads its own network from /proc (addresses, listening ports, the connections the
manager's calls come in on, routes) and tries connections only to addresses of the pool itself:
another executor's, as its session saw them, and the manager's, as the executor saw its calls
come. Whether a route leads out of the pool is judged from the session's route table, never by
contacting anything outside.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from conformance.client import ExecutorClient
from conformance.deployment import docker_network_holding
from conformance.manager import Allocation, Manager
from conformance.outcomes import not_run
from conformance.violations import Exchange

#: Ports tried at the manager's address besides its own and the executors': the usual HTTP ones.
USUAL_PORTS = (80, 443, 8000, 8080)
#: The session variable where the call to the executor's own API leaves its status.
API_CALL = "conformance_pool_api_call"
#: The refusals an executor's API may answer a call without its token.
UNAUTHORISED = (401, 403)


def _network_view(session: ExecutorClient) -> dict[str, Any]:
    view = session.printed(session.code("network_view"), "the session's view of its network")
    session.expect(isinstance(view, dict), "a JSON object from the network_view snippet", repr(view))
    return view  # type: ignore[no-any-return]


def _reached(session: ExecutorClient, targets: list[list[Any]]) -> list[list[Any]]:
    """Those of ``targets`` ([host, port]) code in ``session`` opened a connection to."""
    seconds = session.timeouts.reach
    code = session.code("connects_to", targets=targets, seconds=seconds)
    result = session.printed(code, "which connections the session opened", timeout=seconds * 3)
    if not result.get("control"):
        not_run("the session could not connect even to a listener of its own: its failures to connect prove nothing")
    return [target[:2] for target in result.get("reached", []) if target[2]]


def _served_ports(view: dict[str, Any]) -> set[int]:
    return {port for port, _ in view.get("served", [])}


def _two(manager: Manager) -> tuple[Allocation, Allocation]:
    """Two executors of the type (every free one is held: one being cleared is waited for)."""
    held = manager.allocate_every_free()
    if len(held) < 2:
        not_run(f"the pool has {len(held)} free executor of type {manager.type!r}: no other to try to reach")
    return held[0], held[1]


@pytest.mark.conformance_requirement("POOL-9")
def test_user_code_reaches_no_other_executor(manager: Manager) -> None:
    first, second = _two(manager)
    theirs = _network_view(second.session)
    ports = sorted(set(theirs.get("listening", [])) | _served_ports(theirs))
    targets = [[address, port] for address in theirs.get("addresses", []) for port in ports]
    if not targets:
        not_run("the other executor's session saw no address or port of its own")
    reached = _reached(first.session, targets)
    first.session.expect(
        not reached,
        f"no connection from executor {first.container_id}'s session to executor {second.container_id} "
        f"({len(targets)} address and port pairs tried)",
        f"connected to {reached}",
    )


@pytest.mark.conformance_requirement("POOL-10")
def test_user_code_reaches_not_the_manager(manager: Manager) -> None:
    held = manager.allocate()
    view = _network_view(held.session)
    managers = sorted({peer for _, peer in view.get("served", [])})
    if not managers:
        not_run(
            "the executor showed no connection to its ports from outside it while it ran code: the manager's "
            "address is unknown"
        )
    manager_port = urlsplit(manager.operator.base_url).port
    ports = sorted({*USUAL_PORTS, *_served_ports(view), *([manager_port] if manager_port else [])})
    targets = [[address, port] for address in managers for port in ports]
    # The host, at each gateway: where a manager's port published on every address is reached.
    gateways = sorted({gateway for _, _, gateway in view.get("routes", []) if gateway not in ("", "0.0.0.0", "::")})
    targets += [[gateway, manager_port] for gateway in gateways if manager_port]
    reached = _reached(held.session, targets)
    held.session.expect(
        not reached,
        f"no connection from the session to the manager at {managers} (ports {ports}), nor at a gateway {gateways}",
        f"connected to {reached}",
    )


@pytest.mark.conformance_requirement("POOL-11")
def test_no_route_leads_out_of_the_pool(manager: Manager) -> None:
    """No default route in the session, or one into a network that leads nowhere: judged from the
    deployment (a Docker network's ``internal`` flag, asked of the engine the kit reaches)."""
    held = manager.allocate()
    view = _network_view(held.session)
    if view.get("default_route") is False:
        return
    routes = f"routes: {view.get('routes', [])[:8]}"
    networks = [docker_network_holding(address) for address in view.get("addresses", [])]
    known = [network for network in networks if network is not None]
    if not known:
        not_run(
            f"the session has a default route ({routes}), and the kit cannot see the deployment to say whether it "
            "leads out of the pool (no Docker engine here holds the executor's address)"
        )
    opened = [network.name for network in known if not network.internal]
    held.session.expect(
        not opened,
        "the executor's networks internal (no route out of the pool) where the session has a default route",
        f"Docker networks not internal: {opened}; {routes}",
    )


@pytest.mark.conformance_requirement("POOL-12")
def test_the_executor_serves_the_manager_alone(manager: Manager) -> None:
    """User code that calls its own executor's API (its address and loopback, on the ports the
    manager's calls come in on), bypassing the manager, is refused: the executor's token is the
    manager's, never the session's."""
    held = manager.allocate()
    view = _network_view(held.session)
    ports = sorted(_served_ports(view))
    if not ports:
        not_run(
            "the executor showed no connection to its ports from outside it while it ran code: its API port is unknown"
        )
    hosts = ["127.0.0.1", *view.get("addresses", [])[:1]]
    session = held.session
    for host, port in ((host, port) for host in hosts for port in ports):
        url = f"http://{host}:{port}/execute" if ":" not in host else f"http://[{host}]:{port}/execute"
        seconds = session.timeouts.reach
        session.run(session.code("http_status_later", name=API_CALL, name_text=API_CALL, url=url, seconds=seconds))

        def answered() -> Exchange | None:
            status = session.evaluate(session.code("variable_value", name=API_CALL))
            return session.last if status != "pending" else None

        session.wait_until(answered, seconds + session.timeouts.request, f"the call to {url} to end")
        status = session.evaluate(session.code("variable_value", name=API_CALL))
        session.expect(
            status is None or status in UNAUTHORISED,
            f"POST {url} from the session, without the executor's token, refused (401) or not reachable",
            "no answer (the call was taken)" if status == "no answer" else f"HTTP {status}",
        )
