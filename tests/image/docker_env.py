"""Whether the Docker-backed tests can run here: a Docker engine and the reference image.

Without them those tests skip, saying so, unless REQUIRE_DOCKER_TESTS=1 (as in CI), where
importing this module fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

__all__ = ["EXAMPLE_IMAGE", "IMAGE", "PROBLEM", "broken_context", "image_present", "left_by_the_run", "needs"]

IMAGE = os.environ.get("REFERENCE_IMAGE", "executor-conformance/reference-executor:latest")
EXAMPLE_IMAGE = "executor-conformance/subprocess-executor:latest"


def _docker_problem() -> str | None:
    try:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
            return "no Docker engine answers"
    except (OSError, subprocess.TimeoutExpired):
        return "no docker command"
    for image, session in ((IMAGE, "image"), (EXAMPLE_IMAGE, "example_image")):
        if not image_present(image):
            return f"image {image} is not built (nox -s {session})"
    return None


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=30).returncode == 0


def needs(problem: str | None, what: str) -> pytest.MarkDecorator:
    """A module's skip mark when ``problem`` stops ``what``; with REQUIRE_DOCKER_TESTS=1, an error instead."""
    if problem and os.environ.get("REQUIRE_DOCKER_TESTS") == "1":
        raise RuntimeError(f"REQUIRE_DOCKER_TESTS=1 but {problem}")
    return pytest.mark.skipif(problem is not None, reason=f"{what}: {problem}")


PROBLEM = _docker_problem()


def broken_context(context: Path, fault: str | None = None) -> Path:
    """A build context for the second executor's image plus the gallery (tests/kit/broken.py): the
    fault is ``fault``, or chosen when the container starts by BROKEN_FAULT."""
    package = context / "gallery" / "examples" / "subprocess_executor"
    package.mkdir(parents=True)
    for source in (ROOT / "examples" / "subprocess_executor").glob("*.py"):
        shutil.copy(source, package / source.name)
    (context / "gallery" / "tests" / "kit").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "kit" / "broken.py", context / "gallery" / "tests" / "kit" / "broken.py")
    chosen = f"ENV BROKEN_FAULT={fault}\n" if fault else ""
    (context / "Dockerfile").write_text(
        f'FROM {EXAMPLE_IMAGE}\nCOPY gallery /gallery\n{chosen}CMD ["python3", "/gallery/tests/kit/broken.py"]\n'
    )
    return context


def left_by_the_run(label: str) -> dict[str, list[str]]:
    """The containers and volumes still there of a kit's run (its ``target.label`` in results.json)."""
    left = {}
    for kind in ("container", "volume"):
        listed = subprocess.run(
            ["docker", kind, "ls", "-aq" if kind == "container" else "-q", "--filter", f"label={label}"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        if listed.stdout.split():
            left[kind] = listed.stdout.split()
    return left
