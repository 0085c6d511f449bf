"""How the kit's suite is written: what its pytest settings rely on."""

from __future__ import annotations

import ast
import configparser

from tests.conftest import ROOT

SUITE = ROOT / "conformance" / "suite"


def test_the_suite_reports_through_violations_never_a_bare_assert() -> None:
    """The suite runs with ``--assert=plain`` (no rewriting, 4 s less per run), which is only
    harmless while no suite module uses ``assert``: a failure must name its requirement."""
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(SUITE.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == [], f"bare asserts in the suite (raise a Violation instead): {', '.join(found)}"
    ini = configparser.ConfigParser()
    ini.read(SUITE / "pytest.ini", encoding="utf-8")
    assert "--assert=plain" in ini["pytest"]["addopts"].split()
