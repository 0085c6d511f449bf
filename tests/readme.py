"""The generated sections of the README and the docs: what they show of the code, written by
``nox -s docs`` and checked by the tests, so that they stay true.

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conformance import catalogue, languages
from tests.kit.broken import detection_table

ROOT = Path(__file__).resolve().parent.parent
#: The width the README's copy of ``--help`` is wrapped at.
HELP_COLUMNS = "100"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def section(text: str, name: str) -> str | None:
    found = _pattern(name).search(text)
    return found.group(2) if found else None


def _replaced_by(content: str) -> Callable[[re.Match[str]], str]:
    """What a section's match becomes: its start and end lines around ``content``, taken literally."""
    return lambda found: found.group(1) + content + found.group(3)


def kit_help() -> str:
    """``executor-conformance --help`` as it prints, fenced."""
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--help"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": HELP_COLUMNS},
    )  # fmt: skip
    return f"```text\n{done.stdout}```\n"


#: The documents with generated sections.
DOCUMENTS = ("README.md", "docs/language-packs.md", "docs/pool-contract.md")


def generated() -> dict[str, str]:
    """Each generated section's content: the gallery's table, the kit's help, the snippets, the pool
    contract's requirements."""
    workflow = (ROOT / "ci-templates" / "github-actions.yml").read_text(encoding="utf-8")
    return {
        "detection": detection_table(),
        "help": kit_help(),
        "snippets": languages.markdown_table(),
        "pool-requirements": catalogue.markdown_table(catalogue.of_profile(catalogue.Profile.POOL)),
        "github-workflow": f"```yaml\n{workflow}```\n",
    }


def write_generated(document: Path) -> None:
    """Rewrite the generated sections ``document`` has."""
    text = document.read_text(encoding="utf-8")
    for name, content in generated().items():
        text = _pattern(name).sub(_replaced_by(content), text)
    document.write_text(text, encoding="utf-8")
