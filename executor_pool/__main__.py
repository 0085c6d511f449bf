"""``executor-pool compose ...`` | ``manager ...`` | ``latency ...``: the deployment's one command."""

from __future__ import annotations

import sys

USAGE = """usage: executor-pool {compose,manager,latency} ...

  compose   write a docker compose file and container_config.json for a pool of executors
            (the original generate_compose.py's flags; --help for them)
  manager   run the manager over container_config.json (--help for its flags)
  latency   measure what users wait for on a running pool: allocate and deallocate, p50 and p99"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compose":
        from .generate import main as compose

        return compose(argv[1:])
    if argv and argv[0] == "manager":
        from .manager.__main__ import main as manager

        return manager(argv[1:])
    if argv and argv[0] == "latency":
        from .latency import main as latency

        return latency(argv[1:])
    print(USAGE, file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
    return 0 if argv[:1] in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main())
