"""Sessions: tests, conformance, image, lint (and bench). Run `nox -l` to list them.

Nothing here downloads an interpreter: machines without internet access (air-gapped CI) use
the Python they have.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
IMAGE = "executor-conformance/reference-executor:latest"
EXAMPLE_IMAGE = "executor-conformance/subprocess-executor:latest"
NODE_IMAGE = "executor-conformance/node-executor:latest"


def _readable_by_everyone(path: Path) -> bool:
    """Every folder above ``path`` is searchable, and ``path`` readable, by other users."""
    path = path.resolve()
    if not path.exists() or not path.stat().st_mode & stat.S_IROTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def _python() -> str | None:
    """The interpreter for the sessions' virtualenvs.

    When nox runs as root, the reference executor runs its kernels as an unprivileged user
    (SEC-1, SEC-2), which must be able to run the interpreter: a Python under root's private
    home (pyenv, say) cannot be. The system Python is used then, if it is 3.11 or newer.
    """
    if os.geteuid() != 0 or _readable_by_everyone(Path(sys.executable)):
        return None
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin")
    if system and _readable_by_everyone(Path(system)):
        return system
    return None


PYTHON = _python()


#: pytest-xdist workers for `nox -s tests`: most tests wait on kernels, containers and the kit's
#: runs, so three share two cores well (about 10 min here against 14 to 15 min on one). A module's
#: tests stay on one worker; those marked `alone` run after, on one (tests/conftest.py).
TEST_WORKERS = 3
#: pytest's exit codes that pass a part of the tests: all passed, or the selection (a file given
#: after --, say) holds none of that part.
SOME_OR_NONE = [0, 5]


def _install(session: nox.Session, extras: str = "dev") -> None:
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The project's own tests: catalogue, executor, kit, pool (Docker-backed ones where Docker runs),
    less the gallery of broken executors (`nox -s gallery`)."""
    _install(session)
    _images_for_tests(session)
    session.run(
        "pytest", "-m", "not gallery and not alone", "-n", str(TEST_WORKERS), "--dist", "loadgroup",
        "--durations=15", *session.posargs, success_codes=SOME_OR_NONE,
    )  # fmt: skip
    session.run("pytest", "-m", "alone and not gallery", "--durations=5", *session.posargs, success_codes=SOME_OR_NONE)


@nox.session(python=PYTHON)
def gallery(session: nox.Session) -> None:
    """The kit certifies every broken executor of tests/kit/broken.py, by command and by image, and
    must fail each with exactly its expected requirement IDs (CI runs it after `nox -s tests`)."""
    _install(session)
    _images_for_tests(session)
    session.run("pytest", "-m", "gallery", "--durations=15", *session.posargs)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Certify an executor: `nox -s conformance -- --image IMG` or `-- --url URL`; no target: the reference."""
    _install(session)
    session.run("executor-conformance", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark an executor against the bare jupyter_client floor: `nox -s bench -- --image IMG`.

    No target: the reference executor as a local process. Writes results/bench/bench.{json,md}.
    """
    _install(session)
    session.run("executor-conformance", "bench", *session.posargs)


@nox.session(python=PYTHON)
def pool_latency(session: nox.Session) -> None:
    """What recycling costs a pool's users: allocate and deallocate p50/p99 of a generated compose
    pool, restarting and then recycling (tests/image/pool_latency.py; Docker and the reference image)."""
    _install(session)
    _require_docker(session)
    session.run("python", "-m", "tests.image.pool_latency")


@nox.session(python=PYTHON)
def stability(session: nox.Session) -> None:
    """Certify the same subject N times and check every requirement's outcome never changes.

    `nox -s stability -- [--runs 10] [kit options...]`; a flaky outcome is a defect of the kit.
    """
    parser = argparse.ArgumentParser(prog="nox -s stability --")
    parser.add_argument("--runs", type=int, default=10)
    args, kit_args = parser.parse_known_args(session.posargs)
    _install(session)
    folder = ROOT / "results" / "stability"
    shutil.rmtree(folder, ignore_errors=True)
    for run in range(args.runs):
        session.run("executor-conformance", "--report-dir", str(folder / str(run)), *kit_args, success_codes=[0, 1, 2])
    session.run(
        "executor-conformance", "compare", *(str(folder / str(run) / "results.json") for run in range(args.runs))
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict (settings in pyproject.toml), the import rules (import-linter), and the
    contract's table against the catalogue."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")  # the architecture's import rules: pyproject.toml's [tool.importlinter]
    session.run("executor-conformance", "catalogue", "--check", "docs/contract.md")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate what the docs show of the code: the contract's requirement table (from the
    catalogue), the README's table of broken executors (from the gallery) and copy of
    `executor-conformance --help`, and the language packs' snippet table. Lint and the tests
    check them."""
    session.install("-e", ".[dev]")
    session.run("executor-conformance", "catalogue", "--write", "docs/contract.md")
    session.run(
        "python",
        "-c",
        "from pathlib import Path; from tests.readme import DOCUMENTS, write_generated; "
        "[write_generated(Path(document)) for document in DOCUMENTS]",
    )


#: The image's default base, and the Debian base made with debootstrap where it cannot be pulled.
OFFICIAL_BASE = "python:3.13-slim"
LOCAL_BASE = "executor-conformance/debian-python:trixie"
LOCAL_BASE_PACKAGES = "python3,python3-venv,ca-certificates"
#: The Node.js executor's base: Debian's nodejs, and tini (its init, and the reaper of its workers'
#: orphans), made with debootstrap (no registry). The tag names what it holds: a base made before
#: tini was added is not taken for this one.
NODE_BASE = "executor-conformance/debian-node:trixie-tini"
NODE_BASE_PACKAGES = "nodejs,tini,ca-certificates"


def _executor_requirements() -> list[str]:
    """The `reference` and `pool` extras of pyproject.toml: what the image installs besides the project."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = data["project"]["optional-dependencies"]
    return sorted({*extras["reference"], *extras["pool"]})


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def _require_docker(session: nox.Session) -> None:
    if not _docker_answers():
        session.error("no Docker engine answers: start dockerd (see .ci/run) and try again")


def _base_image(session: nox.Session, requested: str | None) -> str:
    """The base to build on: as requested, else the official slim image if present, else a local Debian one."""
    base = requested or (OFFICIAL_BASE if _docker_has(OFFICIAL_BASE) else LOCAL_BASE)
    if base == LOCAL_BASE:
        _make_base(session, LOCAL_BASE, LOCAL_BASE_PACKAGES)
    return base


def _make_base(session: nox.Session, tag: str, packages: str) -> None:
    """Make the Debian base ``tag`` with ``packages`` (debootstrap, no registry), unless it is there."""
    if not _docker_has(tag):
        session.log(f"making {tag} with debootstrap ({packages})")
        session.run("bash", "docker/make-base-image.sh", tag, "trixie", "", packages, external=True)


def _image_arguments(session: nox.Session, default_tag: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"nox -s {session.name} --")
    parser.add_argument("--tag", default=default_tag)
    parser.add_argument("--base", default=None, help="base image (default: official slim if present, else local)")
    return parser.parse_args(session.posargs)


@nox.session(python=PYTHON)
def image(session: nox.Session) -> None:
    """Build the reference image offline: `nox -s image -- [--tag TAG] [--base IMAGE]`.

    Python packages come from a wheelhouse made here (build/wheelhouse), for the base image's
    Python, installed in the image with --no-index. With no --base, the official slim image is
    used if it is present locally, else a Debian base made with debootstrap (never a pull).
    """
    args = _image_arguments(session, IMAGE)
    _require_docker(session)
    _build_reference_image(session, args.tag, args.base)


def _build_reference_image(session: nox.Session, tag: str, requested_base: str | None) -> None:
    base = _base_image(session, requested_base)
    python_version = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", base, "python3", "-c",
         "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    wheelhouse = ROOT / "build" / "wheelhouse"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    wheelhouse.mkdir(parents=True)
    requirements = wheelhouse / "executor-requirements.txt"
    requirements.write_text("\n".join(_executor_requirements()) + "\n")
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)  # setuptools would put stale modules in the wheel
    session.run("python", "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheelhouse), ".")
    machine = platform.machine()
    session.run(
        "python", "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(wheelhouse),
        "--python-version", python_version, "--implementation", "cp",
        "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
        "--platform", f"manylinux_2_17_{machine}", "-r", str(requirements),
    )  # fmt: skip
    session.run("docker", "build", "--build-arg", f"BASE={base}", "-t", tag, ".", external=True)
    session.log(f"built {tag} on {base} (Python {python_version}); certify it: nox -s conformance -- --image {tag}")


@nox.session(python=False)
def example_image(session: nox.Session) -> None:
    """Build the second executor's image (examples/subprocess_executor), offline like the reference's."""
    args = _image_arguments(session, EXAMPLE_IMAGE)
    _require_docker(session)
    _build_example_image(session, args.tag, args.base)


def _build_example_image(session: nox.Session, tag: str, requested_base: str | None) -> None:
    base = _base_image(session, requested_base)
    context = ROOT / "examples" / "subprocess_executor"
    session.run("docker", "build", "--build-arg", f"BASE={base}", "-t", tag, str(context), external=True)


@nox.session(python=False)
def node_image(session: nox.Session) -> None:
    """Build the Node.js executor's image (examples/node_executor), offline: Debian's nodejs, no Python."""
    args = _image_arguments(session, NODE_IMAGE)
    _require_docker(session)
    _build_node_image(session, args.tag, args.base)


def _build_node_image(session: nox.Session, tag: str, requested_base: str | None) -> None:
    base = requested_base or NODE_BASE
    if base == NODE_BASE:
        _make_base(session, NODE_BASE, NODE_BASE_PACKAGES)
    context = ROOT / "examples" / "node_executor"
    session.run("docker", "build", "--build-arg", f"BASE={base}", "-t", tag, str(context), external=True)


def _images_for_tests(session: nox.Session) -> None:
    """Where a Docker engine answers, build the images the Docker-backed tests use that are missing
    (a fresh clone has none): the tests skip without them, and CI's would fail."""
    if not _docker_answers():
        session.log("no Docker engine answers: the Docker-backed tests will skip, saying so")
        return
    builders = {IMAGE: _build_reference_image, EXAMPLE_IMAGE: _build_example_image, NODE_IMAGE: _build_node_image}
    for tag, build in builders.items():
        if not _docker_has(tag):
            session.log(f"{tag} is not built: building it for the tests")
            build(session, tag, None)


def _docker_has(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0
