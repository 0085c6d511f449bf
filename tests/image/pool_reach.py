"""What user code in one executor of a deployed pool can reach: the attack of issue #29, run in a
session through the manager.

The session tries a TCP connection to each address it is given (names resolved by the pool's own
DNS) and says, for each, whether it got one. Every address is one of the pool's containers, on
the pool's own networks: nothing outside the pool is contacted. Whether executors have a route
out of the pool is judged from the deployment (the Docker network's ``internal`` flag), never by
trying one.
"""

from __future__ import annotations

import json
import subprocess

import httpx

__all__ = ["REACH_TIMEOUT", "container_addresses", "network_internal", "reached_from_session"]

#: How long the session waits for each connection (all at once): a dropped packet never answers.
REACH_TIMEOUT = 2.0

_REACH = """
import concurrent.futures, json, socket
reached = {}
# The control: a connection to a listener of the session's own, on its own network address, is
# opened (the attack below could otherwise pass in a session with no network at all).
own = socket.gethostbyname(socket.gethostname())
with socket.create_server((own, 0)) as listener:
    socket.create_connection(listener.getsockname(), timeout=REACH_TIMEOUT).close()
    reached["own"] = True
# Every container's gateway address is the host's.
routes = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
gateways = {socket.inet_ntoa(bytes.fromhex(f[2])[::-1]) for f in routes if f[1] == "00000000"}
def reach(target):
    try:
        socket.create_connection(tuple(target), timeout=REACH_TIMEOUT).close()
        return True
    except OSError:
        return False
targets = json.loads(TARGETS) + [[gateway, port] for gateway in gateways for port in GATEWAY_PORTS]
# At once: a dropped packet waits out its whole timeout.
with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
    reached.update({f"{host}:{port}": ok for (host, port), ok in zip(targets, pool.map(reach, targets))})
print(json.dumps(reached))
"""


def reached_from_session(
    manager: httpx.Client, session_url: str, token: str, targets: list[tuple[str, int]], gateway_ports: list[int]
) -> dict[str, bool]:
    """``host:port`` -> whether code run in the session at ``session_url`` opened a connection to it
    (and to ``gateway_ports`` at its network's gateway address, the host's); ``own``: the control, a
    connection to a listener of the session's own, which must be True."""
    code = (
        f"TARGETS = {json.dumps(json.dumps(targets))}\nGATEWAY_PORTS = {gateway_ports!r}\n"
        f"REACH_TIMEOUT = {REACH_TIMEOUT}\n{_REACH}"
    )
    answer = manager.post(
        f"{session_url}/execute",
        json={"code": code, "timeout": 10 + REACH_TIMEOUT},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30 + REACH_TIMEOUT,
    )
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "ok", body
    stdout = "".join(item["text"] for item in body["outputs"] if item.get("name") == "stdout")
    reached = dict(json.loads(stdout))
    assert reached.pop("own") is True, "the session could not reach a listener of its own"
    return reached


def container_addresses(container: str) -> dict[str, str]:
    """A container's address on each of its networks (network name -> IPv4 address)."""
    done = subprocess.run(
        ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return {name: network["IPAddress"] for name, network in json.loads(done.stdout).items()}


def network_internal(network: str) -> bool:
    """Whether the Docker network has no route out (its ``internal`` flag)."""
    done = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{.Internal}}", network],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip() == "true"
