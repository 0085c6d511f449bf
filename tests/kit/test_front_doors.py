"""The suite folded into a user's own pytest run (the third front door), and partial runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_pytest_pyargs_runs_the_suite_and_a_partial_selection_is_incomplete(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-k", "health", "-p", "no:cacheprovider",
         "--report-dir", str(tmp_path / "results")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in results["requirements"]}
    assert outcomes["HEALTH-1"] == outcomes["HEALTH-2"] == "passed", done.stdout[-3000:]
    assert outcomes["STATE-1"] == "not run"  # deselected: never reported as passed
    assert results["verdict"] == "incomplete" and done.returncode == 2
