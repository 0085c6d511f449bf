"""The CI templates (ci-templates/), run for real: their shell lines, as written, against an image
built from the second executor's.

Each template's steps are read from its YAML and run in order with bash, in a folder holding a
Dockerfile (``FROM`` the second executor's image: the user's own executor, here). Two lines are
not run as written, and the test says so: installing the kit from PyPI (it is installed here
already, from this checkout: ``executor-conformance --version`` stands in), and the GitHub
actions that are not shell (``uses:``), whose inputs are checked instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RESULTS_SCHEMA, ROOT
from tests.image.docker_env import EXAMPLE_IMAGE, PROBLEM, needs

pytestmark = needs(PROBLEM, "Docker-backed")

TEMPLATES = ROOT / "ci-templates"
IMAGE = "executor-conformance/ci-template-subject:latest"
INSTALL = "pip install executor-conformance"


def _run_lines(lines: list[str], folder: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Each line with bash -e in ``folder``; stop at the first that fails, as a CI job does."""
    done = []
    for line in lines:
        command = "executor-conformance --version" if INSTALL in line else line
        step = subprocess.run(
            ["bash", "-e", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        done.append(step)
        if step.returncode != 0:
            break
    return done


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a Dockerfile for their executor (here, the second executor's image)."""
    (tmp_path / "Dockerfile").write_text(f"FROM {EXAMPLE_IMAGE}\n")
    yield tmp_path
    subprocess.run(["docker", "image", "rm", "-f", IMAGE], capture_output=True, check=False)


def _environment(variables: dict[str, Any], **extra: str) -> dict[str, str]:
    """The job's variables, with the kit's commands on PATH as the install step leaves them."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    job = {key: str(value) for key, value in variables.items()}
    return {**os.environ, "PATH": path, **job, "IMAGE": IMAGE, **extra}


def test_the_github_actions_workflow_certifies_and_publishes(project: Path) -> None:
    workflow = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())
    job = workflow["jobs"]["conformance"]
    steps = job["steps"]
    summary = project / "step-summary.md"
    lines = [step["run"] for step in steps if "run" in step]
    # The job's own variable, as a user sets it: the core profile, so that the run is short; and
    # two of the runner's own.
    env = _environment(
        job["env"], GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), CONFORMANCE_ARGS="--profile core"
    )
    done = _run_lines(lines, project, env)
    assert len(done) == len(lines) and all(step.returncode == 0 for step in done), done[-1].stdout[-3000:]
    results = project / "conformance-results"
    report = yaml.safe_load((results / "results.json").read_text())  # JSON is YAML
    RESULTS_SCHEMA.validate(report)
    assert report["verdict"] == "conformant" and report["target"]["image"] == IMAGE and report["profile"] == "core"
    assert summary.read_text() == (results / "summary.md").read_text()  # the kit's, once
    assert summary.read_text().startswith("## Executor conformance: **conformant**")
    published = {step["uses"].split("@")[0]: step.get("with", {}) for step in steps if "uses" in step}
    junit = published["mikepenz/action-junit-report"]["report_paths"]
    artifact = published["actions/upload-artifact"]["path"]
    assert (project / junit).is_file() and (project / artifact).is_dir()
    certify = next(i for i, step in enumerate(steps) if "executor-conformance --image" in step.get("run", ""))
    assert all(step.get("if") == "always()" for step in steps[certify + 1 :])  # published when it fails, too


def test_the_gitlab_job_certifies_and_fails_on_non_conformance(project: Path) -> None:
    job = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())["executor-conformance"]
    # READY-3, a SHOULD the subject fails, under --strict: the job must fail (exit 1).
    env = _environment(job["variables"], CONFORMANCE_ARGS="--requirement health,READY-3 --strict")
    done = _run_lines(job["script"], project, env)
    assert [step.returncode for step in done] == [0, 0, 1], done[-1].stdout[-3000:]
    after = _run_lines(job["after_script"], project, env)
    assert after[0].returncode == 0 and "## Executor conformance: **conformant with warnings**" in after[0].stdout
    assert (project / job["artifacts"]["reports"]["junit"]).is_file()
    assert job["artifacts"]["when"] == "always"
