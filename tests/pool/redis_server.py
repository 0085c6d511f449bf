"""A real Redis for the tests: ``redis-server`` (Debian's package) on 127.0.0.1 and a free port.

Without it the Redis-backed tests skip, saying so, unless REQUIRE_DOCKER_TESTS=1 (as in CI,
where every test must run), where they fail instead.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.conftest import free_port, wait_for
from tests.image.docker_env import needs

__all__ = ["PROBLEM", "needs", "redis_server"]

PROBLEM = None if shutil.which("redis-server") else "no redis-server (apt-get install redis-server)"
#: For the server to answer PING after it was started.
STARTUP_S = 30.0


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A fresh Redis with no persistence; yields its URL, and stops it (by PID) afterwards."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
               "--dir", str(folder)]  # fmt: skip
    with (folder / "redis.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

        def answers() -> bool:
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

        wait_for(answers, STARTUP_S, "redis-server to answer PING", lambda: (folder / "redis.log").read_text())
        probe.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
