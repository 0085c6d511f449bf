"""What the kit can learn of a pool from its deployment, never by contacting anything outside it.

A session's route table says whether any route leaves its network; only the deployment says
whether that network leads anywhere. On Docker an ``internal`` network has a gateway address (a
default route) and nothing behind it: the engine drops what would leave. The kit asks the engine
it can reach, for the network on which a container holds the session's address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["DockerNetwork", "docker_network_holding"]


@dataclass(frozen=True)
class DockerNetwork:
    """A Docker network on which a container holds an address: its name, and whether it is internal."""

    name: str
    internal: bool


def docker_network_holding(address: str) -> DockerNetwork | None:
    """The network of the local Docker engine on which a container holds ``address``; None when no
    engine answers or none of its networks has a container there (a deployment elsewhere)."""
    try:
        import docker

        client = docker.from_env()
    except Exception:
        return None
    try:
        wanted = ipaddress.ip_address(address)
        for network in client.networks.list():
            network.reload()  # the listing leaves the containers out
            for endpoint in (network.attrs.get("Containers") or {}).values():
                held = [endpoint.get("IPv4Address", ""), endpoint.get("IPv6Address", "")]
                if any(text and ipaddress.ip_interface(text).ip == wanted for text in held):
                    return DockerNetwork(network.name, bool(network.attrs.get("Internal")))
    except Exception:
        return None
    finally:
        client.close()
    return None
