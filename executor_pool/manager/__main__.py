"""``executor-pool manager --config container_config.json [--port 5000] [--store redis://...]``
(``python -m executor_pool.manager``)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path

from executor_serving.settings import (
    MAX_REQUEST_BYTES,
    REQUEST_READ_TIMEOUT,
    HeadLimits,
    SettingError,
    not_installed,
    positive,
)

from .listen import DEFAULT_ROUTE, listen_addresses
from .recycle import DOCKER_SOCKET
from .store import DEFAULT_PREFIX

__all__ = ["main"]


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"a positive number of seconds, not {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a positive whole number of bytes, not {text!r}")
    return value


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine alone (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: What the manager imports, installed by the deployment's extra (``executor-conformance[pool]``).
MANAGER_MODULES = ("fastapi", "uvicorn", "httptools", "httpx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="executor-pool manager")
    parser.add_argument("--config", default="container_config.json")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help=f"where to listen (default 127.0.0.1); {DEFAULT_ROUTE}: loopback and the address of the default "
        "route's interface only, not the networks shared with executors (the generated pools use it)",
    )
    parser.add_argument(
        "--token-file",
        help="a file holding the manager token (default: the MANAGER_TOKEN environment variable; none: no auth)",
    )
    parser.add_argument(
        "--executor-token-file",
        help="a file holding the executors' EXECUTOR_TOKEN, sent on every call to them (default: the "
        "EXECUTOR_TOKEN environment variable; none: executors that need no token)",
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--max-request-bytes",
        type=_whole,
        default=None,
        help="larger bodies get 413, unread past the limit (default: MAX_REQUEST_BYTES, or 1 MiB)",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("MANAGER_STORE") or None,
        help="where the allocation state lives: redis://HOST:PORT/DB, shared by every manager given it "
        "(default: MANAGER_STORE, or this manager's memory)",
    )
    parser.add_argument(
        "--store-prefix",
        default=DEFAULT_PREFIX,
        help=f"the pool's name in the store: managers of one pool share it (default {DEFAULT_PREFIX})",
    )
    parser.add_argument(
        "--lease",
        type=_seconds,
        default=None,
        help="seconds an allocation lasts without a call to its session; then it is freed, restarted "
        "before it is handed out again (default: until /deallocate)",
    )
    parser.add_argument(
        "--docker-socket",
        default=DOCKER_SOCKET,
        help=f"the Docker Engine API's Unix socket, for the executors the configuration recycles with Docker "
        f"(default {DOCKER_SOCKET})",
    )
    args = parser.parse_args(argv)
    absent = not_installed(MANAGER_MODULES + (("redis",) if args.store and args.store != "memory" else ()))
    if absent:
        print(
            f"manager: {', '.join(absent)} not installed; "
            "install the deployment's extra: pip install 'executor-conformance[pool]'",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from executor_serving.protocol import HeadAsGet, bounded_request_protocol

    from .app import create_app, load_config
    from .store import open_store

    try:
        store = open_store(args.store, lease=args.lease, prefix=args.store_prefix)
        pool = load_config(Path(args.config), store, docker_socket=args.docker_socket)
    except (OSError, ValueError, KeyError) as exc:
        print(f"manager: cannot read {args.config} or use --store {args.store}: {exc}", file=sys.stderr)
        return 2
    try:
        token = _secret(args.token_file, "MANAGER_TOKEN")
        executor_token = _secret(args.executor_token_file, "EXECUTOR_TOKEN")
    except OSError as exc:
        print(f"manager: cannot read a token file: {exc}", file=sys.stderr)
        return 2
    if token is None and not _loopback(args.host):
        print(
            f"manager: refusing to listen on {args.host} without a token: anyone who could reach it could use "
            "and end every session (set MANAGER_TOKEN, or --token-file; executor-pool compose makes one)",
            file=sys.stderr,
        )
        return 2
    if token is None:
        print(
            f"manager: no MANAGER_TOKEN: anyone on this machine who can reach {args.host}:{args.port} can use "
            "and end every session (set MANAGER_TOKEN, or --token-file, to require tokens)",
            file=sys.stderr,
        )
    # A request that has not arrived whole in time is closed, and a head past its bounds gets
    # 431, as by the reference executor (INPUT-6, INPUT-7).
    # The bounds on a request, read from the environment as the reference executor reads them.
    try:
        head_limits = HeadLimits.from_env(os.environ)
        request_read = positive(os.environ, "REQUEST_READ_TIMEOUT", REQUEST_READ_TIMEOUT)
        max_request_bytes = args.max_request_bytes or positive(os.environ, "MAX_REQUEST_BYTES", MAX_REQUEST_BYTES, int)
    except SettingError as exc:
        print(f"manager: {exc}", file=sys.stderr)
        return 2
    protocol = bounded_request_protocol(request_read, head_limits)
    try:
        addresses = listen_addresses(args.host)
        sockets = [_listening(address, args.port) for address in addresses]
    except OSError as exc:  # NoDefaultRoute too
        print(f"manager: cannot listen on {args.host} port {args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"manager: listening on {', '.join(f'{address} port {args.port}' for address in addresses)}", file=sys.stderr)
    app = HeadAsGet(create_app(pool, max_request_bytes=max_request_bytes, token=token, executor_token=executor_token))
    uvicorn.Server(uvicorn.Config(app, log_level="info", http=protocol)).run(sockets=sockets)
    return 0


def _secret(file: str | None, variable: str) -> str | None:
    """A token: the file's content if a file is named, else the environment variable; None if empty."""
    text = Path(file).read_text(encoding="utf-8") if file else os.environ.get(variable, "")
    return text.strip() or None


def _listening(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host`` and ``port``: IPv6 for an address with a colon, IPv4 for
    anything else (names included), as uvicorn binds ``--host``."""
    return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)


if __name__ == "__main__":
    sys.exit(main())
