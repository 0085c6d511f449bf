"""Whether the Docker-backed tests can run here: a Docker engine and the reference image.

Without them those tests skip, saying so, unless REQUIRE_DOCKER_TESTS=1 (as in CI), where
importing this module fails instead.
"""

from __future__ import annotations

import os
import subprocess

import pytest

__all__ = ["EXAMPLE_IMAGE", "IMAGE", "PROBLEM", "needs"]

IMAGE = os.environ.get("REFERENCE_IMAGE", "executor-conformance/reference-executor:latest")
EXAMPLE_IMAGE = "executor-conformance/subprocess-executor:latest"


def _docker_problem() -> str | None:
    try:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
            return "no Docker engine answers"
    except (OSError, subprocess.TimeoutExpired):
        return "no docker command"
    for image, session in ((IMAGE, "image"), (EXAMPLE_IMAGE, "example_image")):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=30).returncode != 0:
            return f"image {image} is not built (nox -s {session})"
    return None


def needs(problem: str | None, what: str) -> pytest.MarkDecorator:
    """A module's skip mark when ``problem`` stops ``what``; with REQUIRE_DOCKER_TESTS=1, an error instead."""
    if problem and os.environ.get("REQUIRE_DOCKER_TESTS") == "1":
        raise RuntimeError(f"REQUIRE_DOCKER_TESTS=1 but {problem}")
    return pytest.mark.skipif(problem is not None, reason=f"{what}: {problem}")


PROBLEM = _docker_problem()
