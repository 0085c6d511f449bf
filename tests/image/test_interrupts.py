"""What a certification by image leaves when it ends early: nothing.

- Stopped by SIGTERM, as a CI job's timeout stops it (issue #32): the reports say `interrupted`,
  and the executor's container and its workspace's volume go with the run. Before, SIGTERM left no
  report, and the container ran on for a minute or more.
- An executor that dies at start: its container, the workspace's volume (made before the start)
  and the container that received the files go too.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from conformance.targets import TargetError
from conformance.targets.image import RUN_LABEL, ImageTarget
from conformance.timeouts import KitTimeouts
from tests.conftest import interrupted_kit
from tests.image.docker_env import EXAMPLE_IMAGE, PROBLEM, left_by_the_run, needs

pytestmark = needs(PROBLEM, "Docker-backed")


def _kit_containers_of(image: str) -> dict[str, str]:
    """The containers of ``image`` itself (not of an image built from it) that a kit's run started:
    id -> the run's label value."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"ancestor={image}", "--filter", f"label={RUN_LABEL.split('=')[0]}",
         "--format", f'{{{{.ID}}}} {{{{.Image}}}} {{{{.Label "{RUN_LABEL.split("=")[0]}"}}}}'],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")  # fmt: skip
    rows = [line.split() for line in listed if line.strip()]
    return {row[0]: row[2] for row in rows if len(row) == 3 and row[1] == image}


def test_sigterm_ends_a_certification_by_image_with_reports_and_no_container_left(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def under_test() -> None:
        seen.update(_kit_containers_of(EXAMPLE_IMAGE))
        assert seen, "no container of the image while the kit runs"

    run = interrupted_kit(["--image", EXAMPLE_IMAGE], tmp_path / "results", signal.SIGTERM, under_test)
    assert run.returncode == 130, run.output[-3000:]
    assert run.results["verdict"] == "interrupted" and "SIGTERM" in (run.results["error"] or ""), run.output[-3000:]
    label = run.results["target"]["label"]  # this run's, not another run's of the same image
    assert label.split("=", 1)[1] in seen.values(), f"this run's container was never seen running: {seen}"
    assert left_by_the_run(label) == {}, "the executor's container or its workspace's volume outlived the run"


def _volumes(*filters: str) -> set[str]:
    listed = subprocess.run(
        ["docker", "volume", "ls", "-q", *(f"--filter={f}" for f in filters)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return set(listed.stdout.split())


def test_an_image_whose_executor_dies_at_start_leaves_no_container_nor_volume(tmp_path: Path) -> None:
    """The workspace's volume is made before the container starts: a start that fails removes it too,
    and the container that received the files goes with the anonymous volume of the image's VOLUME
    (no other image of the tests declares one, and the pools' volumes are named)."""
    image = "executor-conformance/dies-at-start:latest"
    (tmp_path / "Dockerfile").write_text(f'FROM {EXAMPLE_IMAGE}\nVOLUME /data\nCMD ["python3", "-c", "exit(7)"]\n')
    subprocess.run(["docker", "build", "-q", "-t", image, str(tmp_path)], check=True, capture_output=True, timeout=300)
    before = _volumes()
    try:
        target = ImageTarget(image, KitTimeouts(startup=20))
        with pytest.raises(TargetError, match="died with exit code 7"):
            target.start()
        assert left_by_the_run(RUN_LABEL) == {}
        # Left: no container uses it (dangling). Another test's container, running beside this one,
        # may hold an anonymous volume of its own meanwhile (it failed here once in a full run).
        made = _volumes("dangling=true") - before
        anonymous = {volume for volume in made if len(volume) == 64 and "_" not in volume}
        assert anonymous == set(), "the image's anonymous volume outlived the containers"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False, timeout=120)
