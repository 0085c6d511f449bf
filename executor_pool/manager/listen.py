"""Where a manager listens when it shares networks with its executors.

In a generated compose or swarm pool, each executor sits alone on an internal network of its own,
and the manager joins every one of them to reach the executors. Bound to the wildcard address, it
would then be reachable from every executor's session. ``--host default-route`` binds it instead
to loopback and to the address of the one interface its default route leaves by: the network its
port is published from (compose's front network, a swarm task's gateway bridge), which no
executor joins. The networks shared with executors are found by ownership, not by name: they are
every interface but that one.

Read from the kernel's route table and interface addresses; nothing is sent anywhere.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from pathlib import Path

__all__ = ["DEFAULT_ROUTE", "NoDefaultRoute", "default_route_interface", "listen_addresses"]

#: The ``--host`` value that asks for loopback and the default route's address.
DEFAULT_ROUTE = "default-route"
ROUTES = Path("/proc/net/route")
_SIOCGIFADDR = 0x8915  # linux/sockios.h: an interface's IPv4 address
_RTF_UP, _RTF_REJECT = 0x0001, 0x0200  # linux/route.h


class NoDefaultRoute(OSError):
    """The machine has no IPv4 default route, or its interface has no address."""


def default_route_interface(routes: str | None = None) -> str:
    """The name of the interface the IPv4 default route leaves by (the lowest metric wins)."""
    text = ROUTES.read_text(encoding="ascii") if routes is None else routes
    defaults = []
    for line in text.splitlines()[1:]:
        # Iface Destination Gateway Flags RefCnt Use Metric Mask ...: a default route that is up
        # and not a reject (blackhole, unreachable) one.
        fields = line.split()
        if len(fields) < 8 or (fields[1], fields[7]) != ("00000000", "00000000"):
            continue
        flags = int(fields[3], 16)
        if flags & _RTF_UP and not flags & _RTF_REJECT:
            defaults.append((int(fields[6]), fields[0]))
    if not defaults:
        raise NoDefaultRoute("no IPv4 default route in /proc/net/route")
    return min(defaults)[1]


def _interface_address(name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError as exc:
            raise NoDefaultRoute(f"interface {name} has no IPv4 address: {exc}") from exc
    return socket.inet_ntoa(answer[20:24])


def listen_addresses(host: str) -> list[str]:
    """The addresses to bind for ``--host``: itself, or for ``default-route`` loopback and the
    default route's interface address."""
    if host != DEFAULT_ROUTE:
        return [host]
    return ["127.0.0.1", _interface_address(default_route_interface())]
