"""The README's generated sections: what it shows of the code, written by ``nox -s docs`` and
checked by the tests, so that it stays true.

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.kit.broken import detection_table

#: The width the README's copy of ``--help`` is wrapped at.
HELP_COLUMNS = "100"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def section(text: str, name: str) -> str | None:
    found = _pattern(name).search(text)
    return found.group(2) if found else None


def kit_help() -> str:
    """``executor-conformance --help`` as it prints, fenced."""
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--help"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": HELP_COLUMNS},
    )  # fmt: skip
    return f"```text\n{done.stdout}```\n"


def generated() -> dict[str, str]:
    """Each generated section's content: the gallery's table, the kit's help."""
    return {"detection": detection_table(), "help": kit_help()}


def write_generated(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    for name, content in generated().items():
        text = _pattern(name).sub(lambda m, c=content: m.group(1) + c + m.group(3), text)
    readme.write_text(text, encoding="utf-8")
