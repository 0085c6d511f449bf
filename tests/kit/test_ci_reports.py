"""The reports a CI page shows (issue #32): report.html opened in a real headless browser, the
badge, and, under GitHub Actions, an annotation per failure and the summary on the job's page.

The browser is Debian's chromium (``apt-get install chromium``; .ci/run installs it); without it
these tests skip, saying so, unless REQUIRE_DOCKER_TESTS=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import catalogue
from tests.conftest import KitRun, run_kit
from tests.image.docker_env import needs
from tests.kit.conftest import BROKEN, QUICK

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: How long the browser has to load a page and draw it.
BROWSER_TIMEOUT = 60
WINDOW = (1200, 900)

needs_browser = needs(None if CHROMIUM else "no chromium (apt-get install chromium)", "A real browser")


def _browser(page: Path, fragment: str, *args: str) -> str:
    """Run headless chromium on ``page#fragment`` with ``args``; its standard output."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         f"--user-data-dir={page.parent / '.browser'}", *args, f"{page.as_uri()}#{fragment}"],
        capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False,
    )  # fmt: skip
    shutil.rmtree(page.parent / ".browser", ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[KitRun, Path]:
    """A broken executor (/health says "healthy") certified on three requirements, as under
    GitHub Actions: the run, and the job page's summary file it appended to."""
    folder = tmp_path_factory.mktemp("ci-reports")
    page = folder / "step-summary.md"
    page.write_text("# an earlier step's summary\n")
    run = run_kit(
        ["--command", f"{sys.executable} {BROKEN} health_wrong_body", *QUICK,
         "--requirement", "HEALTH-1,HEALTH-2,READY-1"],
        folder / "results",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(page)},
    )  # fmt: skip
    assert run.outcomes() == {"HEALTH-1": "failed", "HEALTH-2": "passed", "READY-1": "passed"}, run.output[-3000:]
    return run, page


def test_under_github_actions_each_failure_is_annotated_and_the_summary_reaches_the_job_page(
    failing_run: tuple[KitRun, Path],
) -> None:
    run, page = failing_run
    lines = run.output.splitlines()
    commands = [line for line in lines if line.startswith("::")]
    # The executor's text fills the log, so GitHub is told to read no command in it from the first
    # line, but for the kit's own annotations: a resume with the token, the annotations, a stop.
    stop, resume, annotation, stop_again = commands
    token = stop.removeprefix("::stop-commands::")
    assert lines[0] == stop and len(token) == 32 and resume == f"::{token}::" and stop_again == stop
    assert annotation.startswith("::error title=MUST HEALTH-1 failed::[MUST HEALTH-1]")
    assert "%0AExpected: " in annotation  # one line, as GitHub reads it
    summary = (run.report_dir / "summary.md").read_text()
    assert page.read_text() == "# an earlier step's summary\n" + summary  # appended, never overwritten


def test_outside_github_actions_nothing_is_annotated(kit_runs: dict[str, KitRun]) -> None:
    assert not [line for line in kit_runs["baseline"].output.splitlines() if line.startswith("::")]


def test_the_badge_says_the_verdict_in_shields_endpoint_format(
    failing_run: tuple[KitRun, Path], kit_runs: dict[str, KitRun]
) -> None:
    failing = json.loads((failing_run[0].report_dir / "badge.json").read_text())
    assert failing == {
        "schemaVersion": 1, "label": "executor contract 1.6", "message": "non-conformant (selection)", "color": "red",
    }  # fmt: skip
    reference = json.loads((kit_runs["reference"].report_dir / "badge.json").read_text())
    assert (reference["message"], reference["color"]) == ("conformant", "brightgreen")


@needs_browser
def test_the_html_report_filters_by_outcome_and_shows_each_failures_exchange_in_a_browser(
    failing_run: tuple[KitRun, Path],
) -> None:
    html = failing_run[0].report_dir / "report.html"
    failed_only = _browser(html, "outcome=failed", "--dump-dom")  # the DOM once its script ran
    assert '<span id="shown">1</span> of 3 shown' in failed_only
    assert '<tr class="failed" data-level="MUST" data-outcome="failed" id="HEALTH-1">' in failed_only
    for passed in ("HEALTH-2", "READY-1"):
        assert f'data-outcome="passed" id="{passed}" hidden=""' in failed_only
    assert 'Received: {"status": "healthy"}' in failed_only  # text, as the browser read it
    assert "curl -sS -i -X GET http://127.0.0.1:" in failed_only  # the line that reproduces it
    assert failed_only.count("<script") == 1  # the page's own, whose digest the policy allows
    everything = _browser(html, "", "--dump-dom")
    assert '<span id="shown">3</span> of 3 shown' in everything and 'hidden=""' not in everything


@needs_browser
def test_the_html_report_of_a_whole_certification_draws_its_table(kit_runs: dict[str, KitRun], tmp_path: Path) -> None:
    """The reference's report: a row per requirement of the contract, drawn in a screenshot."""
    html = kit_runs["reference"].report_dir / "report.html"
    dom = _browser(html, "", "--dump-dom")
    assert dom.count("<tr class=") == len(catalogue.of_profile(catalogue.Profile.FULL))
    assert 'class="verdict-conformant" id="verdict">conformant</span>' in dom
    shot = tmp_path / "report.png"
    _browser(html, "level=MUST", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    shot.unlink()
