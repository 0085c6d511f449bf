"""The CI templates (ci-templates/) and the GitHub Action (action.yml), run for real in a fresh
Debian container that has only Docker: the host's engine through its socket, and its client.

Each template's steps run in that job container as its CI service would run them, one after
another, stopping at the first that fails (steps marked to run always still run). The kit is
installed as the templates install it, from the repository itself (the action from its own
checkout, the GitLab job from an archive of it), into a virtual environment: never from a package
index. Its dependencies come from a folder of wheels made here (pip's own PIP_FIND_LINKS and
PIP_NO_INDEX, the job's environment: the container reaches no package index), as a CI's cache or
mirror would give them.

What is not run is said: ``actions/checkout`` (the project is in place already), ``actions/cache``
and the test-report and artifact actions (their inputs are checked against what the run wrote),
and ``docker/build-push-action``, which is run as the ``docker build`` it stands for.

Each template certifies the reference image (green) and a broken executor's (red), each built from
the user's project by the template's own build step. The job container shares the host's network,
as a runner's jobs do, so that the kit reaches the executor's ports on 127.0.0.1; the kit's files
reach the executor's container only through the engine's API (the engine does not see the job's
filesystem).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.results import Verdict
from tests.conftest import RESULTS_SCHEMA, ROOT
from tests.image.docker_env import IMAGE, PROBLEM, broken_context, image_present, left_by_the_run, needs

#: The job's image: the Debian base that the project's images are built on (python3 and venv, no
#: kit, no pip packages), made offline by `nox -s image`.
JOB_IMAGES = ("executor-conformance/debian-python:trixie", "python:3.13-slim")


MACHINE = platform.machine()
#: The engine's socket on this host, mounted where a job's Docker client looks for it.
DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
JOB_IMAGE = next((image for image in JOB_IMAGES if not PROBLEM and image_present(image)), None)


def _job_problem() -> str | None:
    if PROBLEM or not Path(DOCKER_SOCKET).is_socket():
        return PROBLEM or f"the engine is not at a local socket ({DOCKER_SOCKET}) that a job container can mount"
    return None if JOB_IMAGE else f"none of {JOB_IMAGES} is built (nox -s image)"


pytestmark = needs(_job_problem(), "Docker")

TEMPLATES = ROOT / "ci-templates"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PROJECT["project"]["version"]
#: The action's repository, as the workflow names it (pinned to the kit's release tag).
ACTION = "executor-conformance/executor-conformance"
SUBJECT = f"executor-conformance/ci-template-subject-{uuid.uuid4().hex[:8]}:latest"
#: The broken executor's fault (tests/kit/broken.py): stderr comes back named stdout, EXEC-2.
FAULT, FAULT_ID = "stderr_as_stdout", "EXEC-2"
#: Options the user gives through the templates' CONFORMANCE_ARGS: the core profile (a short run,
#: with the workspace requirements), or the broken executor's requirement alone.
SUBJECTS = {
    "reference": (f"FROM {IMAGE}\n", "--profile core"),
    "broken": (None, f"--requirement {FAULT_ID}"),
}
#: Bounds, in seconds: a step (a whole certification at most), and the job container's own life.
STEP_WITHIN, JOB_LIFETIME = 900, 1800

IN_JOB = "/builds/project"  # the job's working folder, as GitLab names it
KIT_IN_JOB = "/kit"
WHEELS_IN_JOB = "/wheelhouse"
RUNNER_IN_JOB = "/runner"  # the runner's own files: RUNNER_TEMP, GITHUB_OUTPUT, the step summary


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's dependencies and build backend as wheels for the job image's Python (the host's pip,
    which reaches the package index; the job container does not)."""
    assert JOB_IMAGE is not None
    version = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", JOB_IMAGE, "python3", "-c",
         "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    folder = tmp_path_factory.mktemp("wheelhouse")
    requirements = [*PROJECT["project"]["dependencies"], *PROJECT["build-system"]["requires"]]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
         "-d", str(folder), "--python-version", version, "--implementation", "cp",
         "--platform", f"manylinux2014_{MACHINE}", "--platform", f"manylinux_2_28_{MACHINE}",
         "--platform", f"manylinux_2_17_{MACHINE}", *requirements],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def kit_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as its release archive holds it: a folder (the action's checkout) and a .tar.gz
    of it (what the GitLab job installs), from the files git tracks or would track here."""
    folder = tmp_path_factory.mktemp("kit")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    checkout = folder / f"executor-conformance-{VERSION}"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    with tarfile.open(folder / f"v{VERSION}.tar.gz", "w:gz") as archive:
        archive.add(checkout, arcname=checkout.name)
    return folder


@dataclass
class Job:
    """A fresh job container: Debian, the host's Docker (socket and client), the host's network."""

    project: Path
    runner: Path
    container: str = ""
    done: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def start(self, kit: Path, wheels: Path) -> None:
        docker = shutil.which("docker")
        assert docker and JOB_IMAGE
        mounts = {
            DOCKER_SOCKET: "/var/run/docker.sock",
            str(Path(docker).resolve()): "/usr/local/bin/docker:ro",
            str(self.project): IN_JOB,
            str(self.runner): RUNNER_IN_JOB,
            str(kit): KIT_IN_JOB,  # writable, as a checkout is: pip builds the kit in its folder
            str(wheels): f"{WHEELS_IN_JOB}:ro",
        }
        volumes = [argument for host, inside in mounts.items() for argument in ("-v", f"{host}:{inside}")]
        started = subprocess.run(
            ["docker", "run", "-d", "--rm", "--network", "host", "--label", "executor-conformance.ci-job=1",
             *volumes, "-w", IN_JOB, "-e", "PIP_NO_INDEX=1", "-e", f"PIP_FIND_LINKS={WHEELS_IN_JOB}",
             JOB_IMAGE, "sleep", str(JOB_LIFETIME)],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        self.container = started.stdout.strip()

    def run(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """``script`` with bash as GitHub and GitLab run a step: errexit and pipefail."""
        variables = [argument for key, value in env.items() for argument in ("-e", f"{key}={value}")]
        step = subprocess.run(
            ["docker", "exec", *variables, "-w", IN_JOB, self.container,
             "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            capture_output=True, text=True, timeout=STEP_WITHIN, check=False,
        )  # fmt: skip
        self.done.append(step)
        return step

    def failed(self) -> bool:
        return any(step.returncode != 0 for step in self.done)

    def output(self) -> str:
        return "\n".join(f"$ {step.args[-1]}\n{step.stdout}{step.stderr}"[-4000:] for step in self.done)

    def stop(self) -> None:
        if self.container:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True, check=False, timeout=120)


@pytest.fixture(params=list(SUBJECTS))
def subject(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def job(tmp_path: Path, subject: str, kit_source: Path, wheelhouse: Path) -> Iterator[Job]:
    """A user's project (a Dockerfile for their executor) in a fresh job container; all removed after,
    the image the job builds too."""
    project, runner = tmp_path / "project", tmp_path / "runner"
    runner.mkdir()
    dockerfile = SUBJECTS[subject][0]
    if dockerfile is None:
        broken_context(project, FAULT)
    else:
        project.mkdir()
        (project / "Dockerfile").write_text(dockerfile)
    job = Job(project, runner)
    try:
        job.start(kit_source, wheelhouse)
        yield job
    finally:
        job.stop()
        subprocess.run(["docker", "image", "rm", "-f", SUBJECT], capture_output=True, check=False, timeout=120)
        left = subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter", f"id={job.container or 'none'}"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert not left.stdout.strip(), "the job container outlived the test"


_EXPRESSION = re.compile(r"\$\{\{\s*(\w+)\.([\w-]+)\s*\}\}")


def _evaluate(text: Any, contexts: dict[str, dict[str, str]]) -> str:
    """GitHub's ``${{ context.name }}``, for the contexts given; any other expression fails the test."""

    def value(found: re.Match[str]) -> str:
        context, name = found.groups()
        assert context in contexts, f"the test does not evaluate {found[0]!r}"
        return contexts[context].get(name, "")

    return _EXPRESSION.sub(value, str(text))


def _verdict(results: Path) -> dict[str, Any]:
    report = json.loads((results / "results.json").read_text())
    RESULTS_SCHEMA.validate(report)
    return dict(report)


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["outcome"] for item in report["requirements"]}


def _check_subject(subject: str, report: dict[str, Any]) -> None:
    outcomes = _outcomes(report)
    assert report["target"]["image"] == SUBJECT
    assert left_by_the_run(report["target"]["label"]) == {}, "the kit in the job left containers or volumes"
    if subject == "reference":
        # The core profile, the workspace's requirements among them: the kit's files reached the
        # executor through the engine, although the engine cannot see the job's folders.
        assert report["verdict"] == "conformant" and report["profile"] == "core", outcomes
        assert outcomes["CODE-1"] == outcomes["CODE-2"] == "passed", outcomes
    else:
        failed = {requirement for requirement, outcome in outcomes.items() if outcome == "failed"}
        assert report["verdict"] == "non_conformant" and failed == {FAULT_ID}, outcomes


def _run_action(job: Job, step: dict[str, Any], env: dict[str, str]) -> None:
    """This repository's action.yml, as the runner runs a composite action: its inputs from the
    step's ``with`` (or their defaults), its steps in order, stopping at the first that fails."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    given = {name: _evaluate(value, {"env": env}) for name, value in step.get("with", {}).items()}
    assert set(given) <= set(action["inputs"]), f"inputs the action does not have: {set(given) - set(action['inputs'])}"
    missing = {name for name, spec in action["inputs"].items() if spec.get("required") and name not in given}
    assert not missing, f"required inputs not given: {missing}"
    inputs = {name: given.get(name, str(spec.get("default", ""))) for name, spec in action["inputs"].items()}
    for inner in action["runs"]["steps"]:
        assert inner["shell"] == "bash" and "run" in inner, inner
        inner_env = {key: _evaluate(value, {"inputs": inputs}) for key, value in inner.get("env", {}).items()}
        action_env = {**env, **inner_env, "GITHUB_ACTION_PATH": f"{KIT_IN_JOB}/executor-conformance-{VERSION}"}
        if job.run(inner["run"], action_env).returncode != 0:
            return


def _run_workflow(job: Job, subject: str) -> dict[str, dict[str, Any]]:
    """The workflow's job, step by step; returns the inputs of the actions that were checked, not run."""
    workflow = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())
    assert set(workflow["permissions"]) == {"contents", "checks"} and workflow["permissions"]["contents"] == "read"
    spec = workflow["jobs"]["conformance"]
    env = {key: str(value) for key, value in spec["env"].items()}
    env |= {
        "IMAGE": SUBJECT,
        "CONFORMANCE_ARGS": SUBJECTS[subject][1],
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": f"{RUNNER_IN_JOB}/step-summary.md",
        "GITHUB_OUTPUT": f"{RUNNER_IN_JOB}/output",
        "RUNNER_TEMP": f"{RUNNER_IN_JOB}/temp",
    }
    (job.runner / "temp").mkdir()
    checked: dict[str, dict[str, Any]] = {}
    for step in spec["steps"]:
        if job.failed() and step.get("if") != "always()":
            continue
        if "run" in step:
            job.run(step["run"], env)
            continue
        name, _, ref = step["uses"].partition("@")
        runner = {"os": "Linux", "temp": env["RUNNER_TEMP"]}
        inputs = {key: _evaluate(value, {"env": env, "runner": runner}) for key, value in step.get("with", {}).items()}
        if name == ACTION:
            assert ref == f"v{VERSION}", f"the workflow pins {ref}, the kit's release is v{VERSION}"
            _run_action(job, step, env)
        elif name == "docker/build-push-action":
            assert inputs["load"] == "True" and inputs["tags"] == SUBJECT, inputs
            job.run(f"docker build -q -t {SUBJECT} {inputs.get('context', '.')}", env)
        else:
            checked[name] = inputs
    return checked


def test_the_github_actions_workflow_and_action_certify_in_a_fresh_container(job: Job, subject: str) -> None:
    checked = _run_workflow(job, subject)
    assert not job.failed() if subject == "reference" else job.done[-1].returncode == 1, job.output()
    results = job.project / checked["actions/upload-artifact"]["path"]
    report = _verdict(results)
    _check_subject(subject, report)
    # The action's output, the kit's summary on the job's page (once), the reports kept.
    assert (job.runner / "output").read_text().splitlines() == [f"verdict={report['verdict']}"]
    assert (job.runner / "step-summary.md").read_text() == (results / "summary.md").read_text()
    assert (job.project / checked["mikepenz/action-junit-report"]["report_paths"]).is_file()
    assert set(checked) == {
        "actions/checkout", "docker/setup-buildx-action", "actions/cache",
        "mikepenz/action-junit-report", "actions/upload-artifact",
    }  # fmt: skip


def test_the_gitlab_job_certifies_in_a_fresh_container(job: Job, subject: str) -> None:
    spec = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())["executor-conformance"]
    variables = {key: str(value) for key, value in spec["variables"].items()}
    # The kit's archive, as the pinned URL would give it (a variable the user may point at a mirror).
    assert variables["KIT"].endswith(f"/v{VERSION}.tar.gz"), variables["KIT"]
    variables |= {
        "KIT": f"{KIT_IN_JOB}/v{VERSION}.tar.gz",
        "IMAGE": SUBJECT,
        "CONFORMANCE_ARGS": SUBJECTS[subject][1],
        "CI_PROJECT_DIR": IN_JOB,
    }
    # GitLab expands variables that name others.
    env = {key: re.sub(r"\$(\w+)", lambda found: variables.get(found[1], found[0]), value)
           for key, value in variables.items()}  # fmt: skip
    for line in spec["script"]:
        if job.run(line, env).returncode != 0:
            break
    certified = [line for line in spec["script"] if "executor-conformance --image" in line]
    assert len(job.done) == len(spec["script"]) and len(certified) == 1, job.output()
    expected = [0] * (len(spec["script"]) - 1) + [0 if subject == "reference" else 1]
    assert [step.returncode for step in job.done] == expected, job.output()
    report = _verdict(job.project / "conformance-results")
    _check_subject(subject, report)
    after = job.run(" && ".join(spec["after_script"]), env)
    assert after.returncode == 0 and f"## Executor conformance: **{Verdict(report['verdict']).label}**" in after.stdout
    assert (job.project / spec["artifacts"]["reports"]["junit"]).is_file()
    assert spec["artifacts"]["when"] == "always"
