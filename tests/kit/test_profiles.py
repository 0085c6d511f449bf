"""Profiles: ``core`` (what a manager needs of any executor) and ``full`` (the whole contract).

The subject is an executor written to the original executor README only (tests/kit/original_shape.py):
``core`` finds it conformant, ``full`` lists what it must change, each with its ID. A few broken
executors show that ``core`` still catches what breaks its own requirements. The runs are made in
tests/kit/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conformance import catalogue
from conformance.catalogue import CORE_PROFILE, Profile, Selection
from conformance.cli import main as kit_command
from tests.conftest import KitRun
from tests.kit.broken import FAULTS
from tests.kit.conftest import CORE_FAULTS

#: What the original README's shape must change to meet the full contract: its own failures.
#: Every other requirement is judged too (issue #30: they were "not run" past EXEC-1), but
#: CRASH-2, which needs CRASH-1's crashed session.
ORIGINAL_SHAPE_MUST_CHANGE = {
    "EXEC-1": "execute responses carry only `outputs`",
    "EXEC-3": "a trailing expression's value is a `result` item, not `execute_result`",
    "EXEC-4": "rich display output comes back printed",
    "ERROR-1": "error items hold only `text`: no `ename`, `evalue` or `traceback`",
    "READY-2": "not-ready answers have no `reason`",
    "READY-3": "not-ready answers use HTTP 200",
    "TIMEOUT-5": "a restart after uninterruptible code is not said (`restarted`)",
    "TIMEOUT-7": "code past its timeout gives `status: error` (a TimeoutError), not `timeout`",
    "OUTPUT-2": "output that was cut is not marked (`truncated`)",
    "CRASH-1": "a dying session gives `status: error`, not `crashed`",
    "SCHEMA-1": "/ready's body lacks `reason`, which openapi.yaml requires",
}


def test_core_finds_the_original_readme_executor_conformant(kit_runs: dict[str, KitRun]) -> None:
    run = kit_runs["original-core"]
    assert run.results["verdict"] == "conformant" and run.returncode == 0, run.output[-3000:]
    assert run.results["profile"] == "core" and run.results["profiles"] == {"core": "conformant"}
    assert {r["id"] for r in run.results["requirements"]} == CORE_PROFILE  # the profile's own, no other
    assert set(run.outcomes().values()) == {"passed"}
    assert "Verdict: conformant (core profile)" in run.output


def test_full_lists_what_the_original_readme_executor_must_change(kit_runs: dict[str, KitRun]) -> None:
    run = kit_runs["original-full"]
    assert run.results["verdict"] == "non_conformant" and run.returncode == 1
    assert run.failed() == set(ORIGINAL_SHAPE_MUST_CHANGE), run.output[-3000:]
    for rid in ORIGINAL_SHAPE_MUST_CHANGE:
        level = catalogue.get(rid).level.value
        assert f"FAILED [{level} {rid}]" in run.output
    # Every other requirement judged, none left behind EXEC-1 (CRASH-2 needs CRASH-1's crash):
    # core, judged as strictly as full, holds, as under --profile core.
    not_passed = {
        rid: o for rid, o in run.outcomes().items() if o != "passed" and rid not in ORIGINAL_SHAPE_MUST_CHANGE
    }
    assert not_passed == {"CONC-3": "skipped", "CRASH-2": "not_run", "SCHEMA-2": "partial", "INFO-1": "skipped",
                          "CONFIG-2": "not_run"}, not_passed  # fmt: skip
    assert run.results["profiles"] == {"core": "conformant", "full": "non_conformant"}
    assert "Verdict: non-conformant (full profile; core: conformant)" in run.output


def test_a_conformant_executor_holds_core_too(kit_runs: dict[str, KitRun]) -> None:
    assert kit_runs["reference"].results["profiles"] == {"core": "conformant", "full": "conformant"}


@pytest.mark.gallery
def test_core_catches_what_breaks_its_own_requirements(kit_runs: dict[str, KitRun]) -> None:
    for name in CORE_FAULTS:
        run = kit_runs[f"core:{name}"]
        expected = FAULTS[name].expected & CORE_PROFILE
        assert expected, f"{name} breaks no core requirement: it proves nothing here"
        assert run.failed() == expected, f"{name}: expected {sorted(expected)}, kit failed {sorted(run.failed())}"
        assert run.results["verdict"] == "non_conformant"


def test_the_core_profile_is_a_part_of_full_with_a_must_of_every_promise() -> None:
    core = [r for r in catalogue.REQUIREMENTS.values() if r.in_profile(Profile.CORE)]
    assert {r.id for r in core} == CORE_PROFILE
    # Every executor requirement is in full; the pool contract's are in pool alone.
    assert all(r.profiles == (Profile.POOL,) for r in catalogue.REQUIREMENTS.values() if r.area.of_pool)
    assert all(r.in_profile(Profile.FULL) != r.area.of_pool for r in catalogue.REQUIREMENTS.values())
    areas = {r.area.value for r in core if r.level is catalogue.Level.MUST}
    assert areas == {"health", "ready", "execute", "state", "timeout", "restart", "code", "configuration"}


def test_the_profile_selects_the_tests_and_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert Selection.of([], [], "core").keeps(["STATE-1"]) and not Selection.of([], [], "core").keeps(["EXEC-1"])
    assert Selection.of(["EXEC-1"], [], "full").keeps(["EXEC-1"])
    assert kit_command(["--list", "--json", "--profile", "core"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in rows} == CORE_PROFILE
    assert all(row["profiles"] == ["core", "full"] for row in rows)


@pytest.mark.parametrize("profile", ["full", "core", "pool"])
def test_a_run_collects_the_tests_of_its_profile_alone(profile: str) -> None:
    """An executor's certification runs none of the pool contract's tests (CI's certification of
    the Node.js image ran all twelve against the executor, and printed them failed), and a pool's
    none of the executor's."""
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--url", "http://127.0.0.1:9", "--profile", profile,
         "--", "--collect-only"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    collected = [line.split(": ")[0] for line in done.stdout.splitlines() if line.startswith("test_")]  # FILE: N
    pool_tests = [name for name in collected if name.startswith("test_pool_")]
    assert collected, done.stdout[-2000:] + done.stderr[-2000:]
    assert pool_tests == collected if profile == "pool" else pool_tests == [], collected
