"""The kit's false-positive guard: the second executor, reached by URL like any running service.

It makes the choices the contract allows and the reference does not (200 while not ready, a
synchronous restart, 429 for concurrent calls, no /info, no rich output); the kit must not fail
a MUST for any of them. The example is started by hand here, with the kit's exported workspace.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance import catalogue
from conformance.catalogue import Level
from conformance.cli import main as kit_command
from tests.conftest import EXAMPLES, run_kit, start_executor, stop_executor


def test_example_executor_by_url_is_conformant_with_warnings(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    assert kit_command(["workspace", str(workspace)]) == 0
    executor = start_executor(
        [sys.executable, str(EXAMPLES / "subprocess_executor" / "server.py")],
        {"WORKSPACE_FOLDER": str(workspace), "EXECUTION_TIMEOUT": "1"},
        tmp_path / "executor.log",
    )
    try:
        run = run_kit(
            ["--url", executor.base_url, "--workspace-mounted", "--allow-destructive", "--execution-timeout", "1"],
            tmp_path / "results",
        )
    finally:
        stop_executor(executor)
    failed_musts = {rid for rid in run.failed() if catalogue.get(rid).level is Level.MUST}
    assert failed_musts == set(), run.output[-3000:]
    assert run.results["verdict"] == "conformant with warnings" and run.returncode == 0
    assert run.outcomes()["CRASH-3"] == "not run"  # no memory limit was declared for a URL target
    assert run.outcomes()["EXEC-4"] == "failed"  # no rich display_data: a SHOULD not met
    assert run.results["features"]["source"].startswith("no GET /info")
