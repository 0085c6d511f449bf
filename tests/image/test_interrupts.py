"""A certification by image stopped by SIGTERM, as a CI job's timeout stops it (issue #32): the
reports say `interrupted`, and the executor's container goes with the run. Before, SIGTERM left no
report, and the container ran on for a minute or more.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.conftest import interrupted_kit
from tests.image.docker_env import EXAMPLE_IMAGE, PROBLEM, left_by_the_run, needs

pytestmark = needs(PROBLEM, "Docker-backed")


def _containers_of(image: str) -> set[str]:
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True)
    return set(listed.stdout.split())


def test_sigterm_ends_a_certification_by_image_with_reports_and_no_container_left(tmp_path: Path) -> None:
    before = _containers_of(EXAMPLE_IMAGE)

    def under_test() -> None:
        assert _containers_of(EXAMPLE_IMAGE) - before, "no container of the image while the kit runs"

    run = interrupted_kit(["--image", EXAMPLE_IMAGE], tmp_path / "results", signal.SIGTERM, under_test)
    assert run.returncode == 130, run.output[-3000:]
    assert run.results["verdict"] == "interrupted" and "SIGTERM" in (run.results["error"] or ""), run.output[-3000:]
    label = run.results["target"]["label"]  # this run's, not another run's of the same image
    assert left_by_the_run(label) == {}, "the executor's container or its workspace's volume outlived the run"
