"""``executor-pool manager --config container_config.json [--port 5000]`` (``python -m executor_pool.manager``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reference_executor.config import Timeouts, not_installed

__all__ = ["main"]

#: What the manager imports, installed by the deployment's extra (``executor-conformance[pool]``).
MANAGER_MODULES = ("fastapi", "uvicorn", "httptools", "httpx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="executor-pool manager")
    parser.add_argument("--config", default="container_config.json")
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
    parser.add_argument(
        "--token-file",
        help="a file holding the manager token (default: the MANAGER_TOKEN environment variable; none: no auth)",
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=int(os.environ.get("MAX_REQUEST_BYTES", 1024 * 1024)),
        help="larger bodies get 413, unread past the limit (default: MAX_REQUEST_BYTES, or 1 MiB)",
    )
    args = parser.parse_args(argv)
    absent = not_installed(MANAGER_MODULES)
    if absent:
        print(
            f"manager: {', '.join(absent)} not installed; "
            "install the deployment's extra: pip install 'executor-conformance[pool]'",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from reference_executor.http_protocol import bounded_request_protocol

    from .app import create_app, load_config

    try:
        pool = load_config(Path(args.config))
    except (OSError, ValueError, KeyError) as exc:
        print(f"manager: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        token = Path(args.token_file).read_text(encoding="utf-8").strip() if args.token_file else None
    except OSError as exc:
        print(f"manager: cannot read {args.token_file}: {exc}", file=sys.stderr)
        return 2
    token = token or os.environ.get("MANAGER_TOKEN") or None
    if token is None:
        print(
            f"manager: no MANAGER_TOKEN: anyone who can reach {args.host}:{args.port} can use and end every "
            "session (set MANAGER_TOKEN, or --token-file, to require tokens)",
            file=sys.stderr,
        )
    # A request that has not arrived whole in time is closed, as by the reference executor (INPUT-6).
    protocol = bounded_request_protocol(Timeouts.request_read)
    uvicorn.run(
        create_app(pool, max_request_bytes=args.max_request_bytes, token=token),
        host=args.host,
        port=args.port,
        log_level="info",
        http=protocol,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
