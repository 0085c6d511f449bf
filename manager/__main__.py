"""``python -m manager --config container_config.json [--port 5000]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from .app import create_app, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manager")
    parser.add_argument("--config", default="container_config.json")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    try:
        pool = load_config(Path(args.config))
    except (OSError, ValueError, KeyError) as exc:
        print(f"manager: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(pool), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
