"""A certification by image stopped by SIGTERM, as a CI job's timeout stops it (issue #32): the
reports say `interrupted`, and the executor's container goes with the run. Before, SIGTERM left no
report, and the container ran on for a minute or more.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.image.docker_env import EXAMPLE_IMAGE, PROBLEM, needs

pytestmark = needs(PROBLEM, "Docker-backed")


def _containers_of(image: str) -> set[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True, check=True
    )
    return set(listed.stdout.split())


def test_sigterm_ends_a_certification_by_image_with_reports_and_no_container_left(tmp_path: Path) -> None:
    before = _containers_of(EXAMPLE_IMAGE)
    report_dir = tmp_path / "results"
    kit = subprocess.Popen(
        [sys.executable, "-m", "conformance", "--image", EXAMPLE_IMAGE, "--report-dir", str(report_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert kit.stdout is not None
        for line in kit.stdout:
            seen.append(line)
            if line.lstrip().startswith("PASS"):  # the container is up and under test
                break
        assert _containers_of(EXAMPLE_IMAGE) - before, "".join(seen)
        kit.send_signal(signal.SIGTERM)
        rest, _ = kit.communicate(timeout=90)
    finally:
        if kit.poll() is None:
            kit.kill()
            kit.wait()
    output = "".join(seen) + rest
    assert kit.returncode == 130, output[-3000:]
    results = json.loads((report_dir / "results.json").read_text())
    assert results["verdict"] == "interrupted" and "SIGTERM" in (results["error"] or ""), results["error"]
    assert _containers_of(EXAMPLE_IMAGE) <= before, "the executor's container outlived the run"
