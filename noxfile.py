"""Sessions: tests, conformance, image, lint (and bench). Run `nox -l` to list them.

Nothing here downloads an interpreter: machines without internet access (air-gapped CI) use
the Python they have.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
IMAGE = "executor-conformance/reference-executor:latest"


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


def _install(session: nox.Session, extras: str = "dev") -> None:
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The project's own tests: catalogue, executor, kit (Docker-backed tests run where Docker does)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Certify an executor: `nox -s conformance -- --image IMG` or `-- --url URL`; no target: the reference."""
    _install(session)
    session.run("executor-conformance", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, and the contract's requirement table against the catalogue."""
    session.install("ruff>=0.5", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("executor-conformance", "catalogue", "--check", "docs/contract.md")
