"""The suite folded into a user's own pytest run (the third front door), and partial runs."""

from __future__ import annotations

import email.message
import http.server
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import __version__, catalogue
from conformance.catalogue import CONTRACT_VERSION
from conformance.timeouts import KitTimeouts
from tests.conftest import EXAMPLE_EXECUTOR, ROOT, interrupted_kit, run_kit
from tests.readme import kit_help, section


def test_pytest_pyargs_runs_the_suite_and_a_partial_selection_is_incomplete(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-k", "health", "-p", "no:cacheprovider",
         "--conformance-report-dir", str(tmp_path / "results")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in results["requirements"]}
    assert outcomes["HEALTH-1"] == outcomes["HEALTH-2"] == "passed", done.stdout[-3000:]
    assert outcomes["STATE-1"] == "not_run"  # deselected: never reported as passed
    # One of INPUT-3's seven cases has "health" in its name: it passed, the other six did not run.
    assert outcomes["INPUT-3"] == "partial", [r for r in results["requirements"] if r["id"] == "INPUT-3"]
    assert results["verdict"] == "incomplete" and done.returncode == 2


#: What the web page below was asked: "METHOD /path" in order.
ASKED: list[str] = []


@pytest.fixture
def web_page() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that is not an executor: every path is an HTML 404 page."""
    ASKED.clear()

    class NotAnExecutor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ASKED.append(f"{self.command} {self.path}")
            page = b"<html><body><h1>404 Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAnExecutor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_that_is_not_an_executor_ends_as_an_error_at_once(tmp_path: Path, web_page: str) -> None:
    """Not a broken executor after two minutes of waiting: an error, said in every report."""
    run = run_kit(["--url", web_page], tmp_path / "results")
    assert run.returncode == 3 and run.results["verdict"] == "error", run.output[-3000:]
    # The run ends at once: one look at each probe, no waiting for /ready, no retry. Judged by what
    # the kit asked, not by the time it took: beside the other tests' workers its process once took
    # 41 s (5.6 s of them the run's own), 1.5 s on an idle machine.
    assert ASKED == ["GET /health", "GET /ready"], ASKED
    assert run.results["duration_s"] < KitTimeouts().startup, "the run waited out the start-up bound"
    assert f"no executor answers at {web_page}" in run.results["error"] and "HTTP 404" in run.results["error"]
    # Said in the kit's words once, not again as a pytest crash ("! _pytest.outcomes.Exit: ... !").
    assert "_pytest.outcomes.Exit" not in run.output and run.output.count("no executor answers at") == 1, run.output
    assert run.results["target"]["base_url"] == web_page
    junit = ET.parse(tmp_path / "results" / "junit.xml").getroot()
    suite = junit.find("testsuite")
    assert junit.tag == "testsuites" and junit.get("errors") == "1"
    assert suite is not None and suite.get("errors") == "1"
    errors = suite.findall("testcase/error")
    assert len(errors) == 1 and f"no executor answers at {web_page}" in (errors[0].get("message") or "")
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert f"`{web_page}`" in summary and "no executor answers" in summary


def test_a_report_folder_that_cannot_be_written_stops_the_run_before_it_begins(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--command", "false", "--report-dir", str(blocker / "results")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"--report-dir {blocker / 'results'} cannot be written" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_ends_the_run_as_interrupted(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C, or SIGTERM (a CI job's timeout): an `interrupted` verdict in the reports, exit 130,
    and the executor stopped. SIGTERM left no report before (issue #32)."""
    run = interrupted_kit(["--executor-command", " ".join(EXAMPLE_EXECUTOR)], tmp_path / "results", stop)
    assert run.returncode == 130, run.output[-3000:]
    results = run.results
    assert results["verdict"] == "interrupted" and "interrupted" in (results["error"] or ""), results["error"]
    assert "interrupted" in (run.report_dir / "summary.md").read_text()
    assert "Verdict: interrupted" in run.output


def test_requirements_are_selected_by_id_glob_and_area(tmp_path: Path) -> None:
    run = run_kit(
        ["--executor-command", " ".join(EXAMPLE_EXECUTOR), "--requirement", "HEALTH-1,READY-*",
         "--requirement", "timeout", "--skip-requirement", "TIMEOUT-7"],
        tmp_path / "results",
    )  # fmt: skip
    outcomes = run.outcomes()
    ran = {rid for rid, outcome in outcomes.items() if outcome != "not_run"}
    assert {"HEALTH-1", "READY-1", "READY-2", "TIMEOUT-1", "TIMEOUT-5"} <= ran, run.output[-3000:]
    # Judged on its members only (issue #30): the others are left out, not "not run".
    assert set(outcomes) == ran == set(run.results["selection"]) and "HEALTH-2" not in ran
    assert {rid.split("-")[0] for rid in ran} == {"HEALTH", "READY", "TIMEOUT"} and "TIMEOUT-7" not in ran
    # The example executor fails READY-3, a SHOULD, and no MUST of the selection.
    assert run.results["verdict"] == "conformant_with_warnings" and run.returncode == 0, run.output[-3000:]
    assert "Verdict: conformant with warnings (selection: HEALTH-1, READY-1, READY-2, READY-3 and" in run.output


def test_a_requirement_pattern_that_matches_nothing_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--command", "false", "--requirement", "HEALTH-1,NOPE-*",
         "--conformance-report-dir", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--requirement NOPE-*: no requirement" in done.stdout + done.stderr


def test_version_names_the_kit_and_the_contract() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout == f"executor-conformance {__version__} (contract {CONTRACT_VERSION})\n"


def test_installing_the_project_installs_a_working_kit() -> None:
    """`pip install executor-conformance` is the kit: its needs are not behind an extra; the
    reference executor and the deployment are (`[reference]`, `[pool]`); the licence ships."""
    distribution = importlib.metadata.distribution("executor-conformance")
    unconditional = {re.split(r"[<>=;\[ ]", r)[0].lower() for r in distribution.requires or [] if "extra" not in r}
    assert {"schemathesis", "jsonschema", "testcontainers", "pytest", "httpx"} <= unconditional
    assert {"reference", "pool"} <= set(distribution.metadata.get_all("Provides-Extra") or [])
    metadata = distribution.metadata
    assert isinstance(metadata, email.message.Message)  # PackageMetadata types get() from Python 3.12 only
    assert metadata.get("License-Expression") == "MIT"
    assert "LICENSE" in (distribution.metadata.get_all("License-File") or [])


def kit(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_is_the_kits_own_with_its_options_grouped_and_the_exit_codes() -> None:
    done = kit("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert text.startswith("usage: executor-conformance") and "pytest.main" not in text and "--basetemp" not in text
    for heading in ("target:", "selection:", "reports:", "the executor's settings"):
        assert heading in text, heading
    assert "--image IMAGE" in text and "--requirement IDS" in text and "--report-dir DIR" in text
    assert "130" in text and "interrupted" in text and "bench" in text and "compare" in text
    assert len(text.splitlines()) < 120  # not pytest's 400 lines


def test_a_mistyped_option_is_a_usage_error_in_the_kits_words() -> None:
    done = kit("--urll", "http://127.0.0.1:1")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "executor-conformance: error: unrecognized arguments: --urll" in done.stderr
    assert "pytest" not in done.stderr


def test_the_pytest_plugin_adds_only_prefixed_options() -> None:
    """In a user's own pytest run, the kit's options cannot collide with theirs."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    group = done.stdout.split("executor conformance kit:")[1].split("\n\n")[0]
    flags = set(re.findall(r"^\s+(--[a-z-]+)", group, re.M))
    assert "--executor-url" in flags and "--conformance-report-dir" in flags
    assert all(flag.startswith(("--executor-", "--conformance-")) for flag in flags), sorted(flags)


def test_a_users_own_suite_keeps_its_own_markers(tmp_path: Path) -> None:
    """Markers named `requirement` and `needs` in a user's own suite are theirs: the kit leaves them alone."""
    (tmp_path / "test_own.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.requirement('JIRA-123')\n"
        "@pytest.mark.needs('network')\n"
        "def test_theirs():\n"
        "    assert True\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers", "-W", "ignore", "-q",
         "-o", "markers=requirement\nneeds", "test_own.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert not (tmp_path / "conformance-results").exists()  # no certification was made of it


def test_the_readme_shows_the_help_as_it_prints_and_the_github_workflow_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert section(readme, "help") == kit_help(), "run: nox -s docs"
    workflow = (ROOT / "ci-templates" / "github-actions.yml").read_text(encoding="utf-8")
    assert section(readme, "github-workflow") == f"```yaml\n{workflow}```\n", "run: nox -s docs"


def test_bench_takes_the_same_option_names_as_a_certification() -> None:
    done = kit("bench", "--help")
    assert done.returncode == 0 and "--report-dir" in done.stdout and "--image" in done.stdout, done.stderr
    wrong = kit("bench", "--no-such-option")
    assert wrong.returncode == 4 and "executor-conformance bench: error:" in wrong.stderr


def test_a_long_wait_says_how_long_it_has_lasted(tmp_path: Path) -> None:
    """An executor that never becomes ready: a line every 10 s, not minutes of silence."""
    broken = f"{sys.executable} {ROOT / 'tests' / 'kit' / 'broken.py'} never_ready"
    run = run_kit(["--command", broken, "--startup-timeout", "12", "--requirement", "READY-1"], tmp_path / "results")
    assert "waiting for /ready: 10 s of 12 s (last: HTTP 200" in run.output, run.output[-2000:]
    assert run.results["verdict"] == "non_conformant"


def test_outcomes_are_coloured_on_a_terminal_only(tmp_path: Path) -> None:
    command = ["--command", " ".join(EXAMPLE_EXECUTOR), "--requirement", "HEALTH-1", "--report-dir"]
    plain = subprocess.run(
        [sys.executable, "-m", "conformance", *command, str(tmp_path / "plain")], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    coloured = kit(*command, str(tmp_path / "coloured"), "--", "--color=yes", timeout=120)
    assert "PASS [MUST HEALTH-1]" in plain.stdout and "\x1b[" not in plain.stdout
    assert "\x1b[32m  PASS [MUST HEALTH-1]" in coloured.stdout, coloured.stdout[-2000:]


def test_list_shows_what_a_selection_would_run() -> None:
    table = kit("--list", "--requirement", "timeout", "--skip-requirement", "TIMEOUT-7")
    assert table.returncode == 0 and "| TIMEOUT-1 | MUST |" in table.stdout and "TIMEOUT-7" not in table.stdout
    rows = json.loads(kit("--list", "--json").stdout)
    assert len(rows) == len(catalogue.of_profile(catalogue.Profile.FULL)) and rows[0] == {
        "id": "HEALTH-1", "level": "MUST", "area": "health",
        "title": catalogue.REQUIREMENTS["HEALTH-1"].title, "feature": None, "profiles": ["core", "full"],
    }  # fmt: skip


def test_every_subcommand_reports_a_usage_error_with_exit_4_and_the_option_at_fault() -> None:
    skipped = kit("--list", "--skip-requirement", "NOPE-*")
    assert skipped.returncode == 4 and "--skip-requirement NOPE-*: no requirement" in skipped.stderr
    assert kit("catalogue", "--no-such-option").returncode == 4


def test_a_list_cut_short_by_its_reader_ends_quietly() -> None:
    """Issue #32: `--list --json | head` ended in a BrokenPipeError traceback."""
    done = subprocess.run(
        f"{sys.executable} -m conformance --list --json | head -1", shell=True, capture_output=True, text=True,
        timeout=60, check=False, executable="/bin/bash",
    )  # fmt: skip
    assert done.stdout == "[\n" and done.stderr == "", done.stderr


def test_a_mistyped_option_or_requirement_gets_a_did_you_mean() -> None:
    option = kit("--requirment", "HEALTH-1")
    assert option.returncode == 4 and "(did you mean --requirement?)" in option.stderr, option.stderr
    pattern = kit("--list", "--requirement", "timout")
    assert pattern.returncode == 4 and "did you mean timeout," in pattern.stderr, pattern.stderr


def test_quiet_prints_what_did_not_pass_only(tmp_path: Path) -> None:
    """Issue #32: -q still printed every PASS."""
    done = kit("--command", " ".join(EXAMPLE_EXECUTOR), "--requirement", "HEALTH-1,READY-3", "--report-dir",
               str(tmp_path / "results"), "--", "-q", timeout=120)  # fmt: skip
    assert "PASS [MUST HEALTH-1]" not in done.stdout and "FAIL [SHOULD READY-3]" in done.stdout, done.stdout[-3000:]
    assert "Verdict: conformant with warnings" in done.stdout
    loud = kit("--command", " ".join(EXAMPLE_EXECUTOR), "--requirement", "HEALTH-1", "--report-dir",
               str(tmp_path / "loud"), timeout=120)  # fmt: skip
    assert "PASS [MUST HEALTH-1]" in loud.stdout, loud.stdout[-3000:]  # by default, every outcome


@pytest.mark.skipif(os.geteuid() != 0, reason="the private-folder problem is the kit's as root")
def test_an_executor_in_a_private_folder_is_said_at_the_start(tmp_path: Path) -> None:
    """Run as root from a folder only its owner can enter (a checkout under /root): said before any
    test, with what to do; from a folder others can reach, nothing is said."""
    private = tmp_path / "private"
    (private / "executor").mkdir(parents=True)
    for source in (ROOT / "examples" / "subprocess_executor").glob("*.py"):
        (private / "executor" / source.name).write_text(source.read_text())
    private.chmod(0o700)
    server = private / "executor" / "server.py"
    # Its workers cannot read their own code: it never becomes ready (the meaningless verdict).
    command = ["--command", f"{sys.executable} {server}", "--requirement", "HEALTH-1", "--startup-timeout", "5"]
    run = run_kit(command, tmp_path / "results")
    said = run.output.index("warning: the kit runs as root, and an executor that runs user code as another user")
    assert said < run.output.index("= executor conformance ="), run.output[-3000:]
    assert str(server) in run.output and "chmod o+x" in run.output
    example = ["--command", " ".join(EXAMPLE_EXECUTOR), "--requirement", "HEALTH-1"]
    reachable = run_kit(example, tmp_path / "reachable")
    assert "warning:" not in reachable.output, reachable.output[-3000:]


def test_user_code_running_as_root_is_said_at_the_start(tmp_path: Path) -> None:
    """An executor whose user code runs as the server's user (root, run by root): said before any
    test; SEC-1 then fails as it always did."""
    broken = f"{sys.executable} {ROOT / 'tests' / 'kit' / 'broken.py'} user_code_as_the_server"
    run = run_kit(["--command", broken, "--requirement", "HEALTH-1,SEC-1"], tmp_path / "results")
    said = "warning: user code runs as root (user id 0) in this executor: SEC-1 will fail"
    if os.geteuid() != 0:  # not root, the server cannot be: nothing to say
        assert said not in run.output
        return
    assert run.output.index(said) < run.output.index("PASS [MUST HEALTH-1]"), run.output[-3000:]
    assert run.results["verdict"] == "conformant_with_warnings"  # SEC-1 is a SHOULD


def test_two_targets_named_at_once_are_a_usage_error_not_one_silently_chosen(tmp_path: Path) -> None:
    """Reading #31's registry: with --image and --url both given, the image was certified with the
    URL's settings (the contract's defaults, taken on trust) instead of the kit's."""
    both = ["--image", "never-started", "--url", "http://127.0.0.1:9"]
    done = kit(*both, "--report-dir", str(tmp_path / "results"))
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--image and --url name two executors" in done.stdout + done.stderr
    bench = kit("bench", *both, "--report-dir", str(tmp_path / "bench"))
    assert bench.returncode == 4 and "--image and --url name two executors" in bench.stderr, bench.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "bench").exists()
