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


def test_the_suite_sends_only_the_language_packs_code() -> None:
    """Every scenario's code comes from the language pack (``executor.code``): a string written in
    the suite would be Python sent to a session of any language."""
    sends = {"run", "execute", "execute_when_free", "evaluate", "run_past_its_timeout", "_timed_out", "_printed"}
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(SUITE.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in sends
        and any(isinstance(arg, ast.Constant | ast.JoinedStr) and isinstance(getattr(arg, "value", ""), str)
                for arg in node.args[:2])
    ]  # fmt: skip
    assert found == [], f"code written in the suite, not taken from the pack: {', '.join(found)}"
