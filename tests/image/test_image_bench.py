"""The bench on the reference image, as an operator runs it: `executor-conformance bench --image`.

Needs a Docker engine and the image from `nox -s image` (see docker_env). The machine's cores
(`--cpus none`) keep it to about half a minute; the memory limit stays the deployment's 256 MB.
Figures are not asserted against times; the stable goals are, with room to spare.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import assert_measured_in_every_run, assert_stable_goals_hold, run_bench
from tests.image.docker_env import IMAGE, PROBLEM, needs

pytestmark = needs(PROBLEM, "Docker-backed")


def _containers_labelled(label: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def test_the_image_is_measured_in_its_container_against_a_floor_in_the_same_image(tmp_path: Path) -> None:
    bench, table = run_bench(["--image", IMAGE, "--cpus", "none"], tmp_path)
    subject = bench["subject"]
    # By its run's label: another run's containers of the image (a certification beside) are not its.
    assert _containers_labelled(subject["label"]) == [], "the bench must remove every container it started"
    assert subject["kind"] == "image" and subject["image"] == IMAGE and subject["image_id"].startswith("sha256:")
    assert subject["memory"] == "256m" and subject["cpus"] is None
    figures = bench["figures"]
    assert_measured_in_every_run(figures["start_to_ready_s"], "start_to_ready_s")
    assert figures["execute_ms"]["p50"]["median"] > 0 and figures["throughput_3_clients"]["median"] > 0
    assert bench["memory_source"].startswith("container") and 20 < figures["memory_after_calls_mb"] < 256
    assert bench["floor"]["where"] == "container" and "note" not in bench["floor"]
    assert all(bench["ratios"][name] > 0 for name in ("start_to_ready", "execute_p50", "restart_to_ready"))
    assert_stable_goals_hold(bench)
    assert f"Benchmark of `{IMAGE}` (image)" in table and "floor measured on the container" in table
