"""Folding test records into requirement outcomes and the verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from hypothesis.errors import FlakyFailure

from conformance import catalogue
from conformance.catalogue import Level
from conformance.client import answer_said
from conformance.outcomes import not_applicable, not_run, skip_kind_of, violation_in
from conformance.render import to_json, to_junit, to_markdown, to_terminal
from conformance.results import (
    REPORT_VERSION,
    Exit,
    Outcome,
    Report,
    SkipKind,
    TestRecord,
    Verdict,
    build_report,
    exit_code,
    results_schema,
    unstable_requirements,
    upgraded,
)
from conformance.violations import Violation


def _report(*records: TestRecord, error: str | None = None, interrupted: bool = False) -> Report:
    passing = [TestRecord(f"t::{rid}", [rid], "passed") for rid in catalogue.REQUIREMENTS]
    named = {rid for r in records for rid in r.requirements}
    base = [r for r in passing if r.requirements[0] not in named]
    return build_report(
        [*base, *records],
        target={"kind": "url", "base_url": "http://127.0.0.1:1"},
        configuration={},
        features={},
        strict=False,
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        error=error,
        interrupted=interrupted,
    )


def test_all_passed_is_conformant() -> None:
    report = _report()
    assert report.verdict is Verdict.CONFORMANT
    assert exit_code(report.verdict, strict=False) == 0


def test_a_failed_must_is_non_conformant() -> None:
    report = _report(TestRecord("t::x", ["STATE-1"], "failed", failed_requirement="STATE-1", reason="lost"))
    assert report.verdict is Verdict.NON_CONFORMANT
    assert exit_code(report.verdict, strict=False) == 1


def test_a_failed_should_is_a_warning_and_fails_only_when_strict() -> None:
    report = _report(TestRecord("t::x", ["SEC-1"], "failed", failed_requirement="SEC-1"))
    assert report.verdict is Verdict.WITH_WARNINGS
    assert exit_code(report.verdict, strict=False) == 0
    assert exit_code(report.verdict, strict=True) == 1


def test_a_must_not_run_for_lack_of_a_capability_is_incomplete() -> None:
    report = _report(TestRecord("t::x", ["CRASH-1"], "skipped", skip_kind=SkipKind.CAPABILITY, reason="no"))
    assert report.verdict is Verdict.INCOMPLETE
    assert exit_code(report.verdict, strict=False) == 2


@pytest.mark.parametrize("kind", [SkipKind.DECLARATION, SkipKind.NOT_APPLICABLE])
def test_skipped_by_declaration_or_not_applicable_keeps_the_verdict(kind: SkipKind) -> None:
    report = _report(TestRecord("t::x", ["CODE-1"], "skipped", skip_kind=kind, reason="r"))
    assert {r.id: r.outcome for r in report.requirements}["CODE-1"] is Outcome.SKIPPED
    assert report.verdict is Verdict.CONFORMANT


def test_a_violation_counts_against_the_requirement_it_names() -> None:
    record = TestRecord("t::x", ["RESTART-2"], "failed", failed_requirement="RESTART-1", reason="bad restart")
    outcomes = {r.id: r.outcome for r in _report(record).requirements}
    assert outcomes["RESTART-1"] is Outcome.FAILED
    assert outcomes["RESTART-2"] is Outcome.NOT_RUN


def test_one_failing_test_fails_the_requirement_even_if_others_pass() -> None:
    report = _report(
        TestRecord("t::a", ["INPUT-1"], "passed"),
        TestRecord("t::b", ["INPUT-1"], "failed", reason="500"),
    )
    result = next(r for r in report.requirements if r.id == "INPUT-1")
    assert result.outcome is Outcome.FAILED and result.evidence[0]["test"] == "t::b"


def test_renderers_are_pure_functions_of_the_report() -> None:
    report = _report(TestRecord("t::x", ["EXEC-4"], "failed", failed_requirement="EXEC-4", reason="[SHOULD EXEC-4] no"))
    data = json.loads(to_json(report))
    assert data["verdict"] == "conformant_with_warnings" and data["report_version"] == 3
    suite = ET.fromstring(to_junit(report))
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("EXEC-4"))
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {"requirement": "EXEC-4", "level": "SHOULD", "feature": "rich_output"}
    run_properties = {p.get("name"): p.get("value") for p in suite.find("testsuite/properties") or []}
    assert run_properties["profile"] == "full" and run_properties["verdict_core"] == "conformant"
    assert case.find("failure") is not None
    assert case.get("time") == "0.00"  # its tests' time (issue #32: a test case had none)
    timed = _report(TestRecord("t::slow", ["EXEC-4"], "passed", duration_s=1.25))
    timed_case = next(
        c for c in ET.fromstring(to_junit(timed)).iter("testcase") if c.get("name", "").startswith("EXEC-4")
    )
    assert timed_case.get("time") == "1.25"
    assert "| ❌ | EXEC-4 | SHOULD | failed |" in to_markdown(report)
    assert to_terminal(report).splitlines()[-1] == "Verdict: conformant with warnings (full profile; core: conformant)"


def test_a_target_error_gives_the_error_verdict() -> None:
    assert _report(error="image missing").verdict is Verdict.ERROR
    assert exit_code(Verdict.ERROR, strict=False) == 3


def test_each_verdict_has_an_exit_code_of_its_own() -> None:
    """CI tells the verdicts apart by exit code alone (only a warning shares 0, or 1 under --strict)."""
    codes = {verdict: exit_code(verdict, strict=False) for verdict in Verdict if verdict is not Verdict.WITH_WARNINGS}
    assert len(set(codes.values())) == len(codes) and Exit.USAGE not in codes.values()
    assert codes[Verdict.INTERRUPTED] == 130 and codes[Verdict.ERROR] == 3


def test_an_interrupted_run_says_so_whatever_had_run() -> None:
    report = _report(interrupted=True)
    assert report.verdict is Verdict.INTERRUPTED and "interrupted" in (report.error or "")


def test_unstable_requirements_are_those_whose_outcome_changed() -> None:
    first = {"requirements": [{"id": "A-1", "outcome": "passed"}, {"id": "B-1", "outcome": "failed"}]}
    second = {"requirements": [{"id": "A-1", "outcome": "passed"}, {"id": "B-1", "outcome": "passed"}]}
    assert unstable_requirements([first, second]) == {"B-1": ["failed", "passed"]}
    assert unstable_requirements([first, first]) == {}


def test_reports_of_version_1_compare_with_reports_of_this_version() -> None:
    """Version 1 wrote words ("not run", "conformant with warnings"); read back, they are this version's values."""
    old = {"report_version": "1", "verdict": "conformant with warnings",
           "requirements": [{"id": "A-1", "outcome": "not run"}, {"id": "B-1", "outcome": "passed"}]}  # fmt: skip
    new = {"report_version": REPORT_VERSION, "verdict": Verdict.WITH_WARNINGS.value,
           "requirements": [{"id": "A-1", "outcome": "not_run"}, {"id": "B-1", "outcome": "passed"}]}  # fmt: skip
    assert upgraded(old)["verdict"] == upgraded(new)["verdict"] == "conformant_with_warnings"
    assert unstable_requirements([upgraded(old), upgraded(new)]) == {}
    assert upgraded({**old, "verdict": "non-conformant"})["verdict"] == Verdict.NON_CONFORMANT.value


def test_a_requirement_some_of_whose_tests_did_not_run_is_partial_never_passed() -> None:
    """Deselected or unable to run beside a pass: partial, a gap like not run (a MUST leaves the run incomplete)."""
    cases = {"INPUT-3": ["t::a", "t::b"]}
    records = [TestRecord(f"t::{rid}", [rid], "passed") for rid in catalogue.REQUIREMENTS if rid != "INPUT-3"]
    common: dict[str, Any] = {"target": {"kind": "url"}, "configuration": {}, "features": {}, "strict": False,
              "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0, "cases": cases}  # fmt: skip
    one_ran = build_report([*records, TestRecord("t::a", ["INPUT-3"], "passed")], **common)
    assert {r.id: r.outcome for r in one_ran.requirements}["INPUT-3"] is Outcome.PARTIAL
    assert one_ran.verdict is Verdict.INCOMPLETE and one_ran.counts()["MUST"]["partial"] == 1
    could_not = TestRecord("t::b", ["INPUT-3"], "skipped", skip_kind=SkipKind.CAPABILITY, reason="no workspace")
    both = build_report([*records, TestRecord("t::a", ["INPUT-3"], "passed"), could_not], **common)
    assert {r.id: r.outcome for r in both.requirements}["INPUT-3"] is Outcome.PARTIAL
    none_ran = build_report([*records, could_not], **common)
    assert {r.id: r.outcome for r in none_ran.requirements}["INPUT-3"] is Outcome.NOT_RUN
    assert "PARTIAL [MUST INPUT-3]" in to_terminal(one_ran) and "| ◐ | INPUT-3 | MUST | partial |" in to_markdown(
        one_ran
    )


def _violation(rid: str) -> Violation:
    return Violation(rid, expected="something", received="something else")


def test_a_violation_that_hypothesis_could_not_replay_still_names_its_requirement() -> None:
    """A schema test proves SCHEMA-1 and SCHEMA-2; hypothesis wraps a failure that did not
    reproduce on replay in a group, and that failure must still count against one of them only."""
    schema_1 = _violation("SCHEMA-1")
    assert violation_in(schema_1) is schema_1
    assert violation_in(FlakyFailure("flaky", [schema_1])) is schema_1
    assert violation_in(ExceptionGroup("two", [schema_1, _violation("SCHEMA-1")])) is schema_1
    assert violation_in(ExceptionGroup("mixed", [schema_1, _violation("SCHEMA-2")])) is None  # both failed
    assert violation_in(ExceptionGroup("other", [schema_1, ValueError("not a violation")])) is None
    assert violation_in(ValueError("not a violation")) is None


def _skip_kind_of(error: Callable[[], None]) -> SkipKind:
    return skip_kind_of(pytest.CallInfo.from_call(error, "call"))


def test_a_skip_inside_a_test_is_not_run_unless_it_says_not_applicable() -> None:
    assert _skip_kind_of(lambda: not_applicable("an allowed choice")) is SkipKind.NOT_APPLICABLE
    assert _skip_kind_of(lambda: not_run("the kit could not check it")) is SkipKind.CAPABILITY
    assert _skip_kind_of(lambda: pytest.skip("no kind said")) is SkipKind.CAPABILITY  # never folded into a pass


def test_a_must_taken_on_trust_is_skipped_and_keeps_the_verdict() -> None:
    report = _report(TestRecord("t::x", ["CONFIG-1"], "skipped", skip_kind=SkipKind.TRUSTED, reason="a URL"))
    assert {r.id: r.outcome for r in report.requirements}["CONFIG-1"] is Outcome.SKIPPED
    assert report.verdict is Verdict.CONFORMANT


def test_every_requirement_is_in_a_known_area_and_every_need_says_what_is_missing() -> None:
    assert {r.area for r in catalogue.REQUIREMENTS.values()} <= set(catalogue.Area)
    assert all(need.missing for need in catalogue.Need)


def test_the_published_schema_names_every_value_the_code_can_write() -> None:
    """The schema of results.json is a promise: its enumerations are exactly the code's, and the
    reports of every path (a pass, a failure, an error, an interruption) keep to it."""
    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    requirement, test = schema["$defs"]["requirement"]["properties"], schema["$defs"]["test"]["properties"]
    assert schema["properties"]["verdict"]["enum"] == [v.value for v in Verdict]
    assert requirement["outcome"]["enum"] == [o.value for o in Outcome]
    assert requirement["level"]["enum"] == [level.value for level in Level]
    assert test["skip_kind"]["enum"] == [None, *(k.value for k in SkipKind)]
    assert schema["properties"]["report_version"]["const"] == REPORT_VERSION
    failing = TestRecord("t::x", ["STATE-1"], "failed", failed_requirement="STATE-1", reason="no", evidence={})
    for report in (_report(), _report(failing), _report(error="no executor"), _report(interrupted=True)):
        jsonschema.Draft202012Validator(schema).validate(json.loads(to_json(report)))


def test_the_summary_says_what_was_expected_and_what_came_back() -> None:
    violation = Violation("STATE-1", expected="[42] from the earlier definitions", received="NameError: state_value")
    record = TestRecord("t::x", ["STATE-1"], "failed", failed_requirement="STATE-1", reason=violation.message,
                        evidence=violation.evidence())  # fmt: skip
    row = next(line for line in to_markdown(_report(record)).splitlines() if "| STATE-1 |" in line)
    assert "Expected [42] from the earlier definitions; received NameError: state_value" in row, row


def test_the_reports_name_a_command_target_by_its_command() -> None:
    """Not by the URL of the port it happened to listen on, which says nothing once the run is over."""
    report = _report()
    report.target = {"kind": "process", "command": ["python3", "server.py"], "base_url": "http://127.0.0.1:40123"}
    assert "Target: `python3 server.py`" in to_markdown(report)
    properties = {p.get("name"): p.get("value") for p in ET.fromstring(to_junit(report)).iter("property")}
    assert properties["target"] == "python3 server.py"


def _inconclusive(test_of: str, on: str) -> TestRecord:
    """A test of ``test_of`` skipped as inconclusive on ``on``'s time bound, as the plugin records it."""
    reason = f"{catalogue.get(on).label} inconclusive on a loaded machine: ..."
    return TestRecord("t::late", [test_of], "skipped", skip_kind=SkipKind.INCONCLUSIVE, failed_requirement=on,
                      reason=reason)  # fmt: skip


def test_a_test_skipped_as_inconclusive_makes_its_requirement_inconclusive_and_a_must_one_incomplete() -> None:
    report = _report(_inconclusive("TIMEOUT-3", on="TIMEOUT-1"))
    outcomes = {r.id: r.outcome for r in report.requirements}
    assert outcomes["TIMEOUT-1"] is Outcome.INCONCLUSIVE and outcomes["TIMEOUT-3"] is Outcome.INCONCLUSIVE
    assert report.verdict is Verdict.INCOMPLETE and exit_code(report.verdict, strict=False) == Exit.INCOMPLETE
    assert report.counts()["MUST"]["inconclusive"] == 2
    jsonschema.Draft202012Validator(results_schema()).validate(json.loads(to_json(report)))
    terminal = to_terminal(report)
    assert "INCONCLUSIVE [MUST TIMEOUT-1] inconclusive on a loaded machine" in terminal
    assert "2 inconclusive" in terminal and "inconclusive" in to_markdown(report)
    # A run without one shows the table it always did.
    assert "inconclusive" not in to_terminal(_report()) and "inconclusive" not in to_markdown(_report())


def test_an_inconclusive_should_leaves_the_verdict_conformant_and_says_so() -> None:
    report = _report(_inconclusive("TIMEOUT-4", on="TIMEOUT-4"))
    assert {r.id: r.outcome for r in report.requirements}["TIMEOUT-4"] is Outcome.INCONCLUSIVE
    assert report.verdict is Verdict.CONFORMANT  # as a SHOULD not run: never failed
    assert "INCONCLUSIVE [SHOULD TIMEOUT-4]" in to_terminal(report)


def test_a_test_that_failed_on_another_requirement_after_its_own_checks_passed_counts_for_both() -> None:
    """Issue #30: ERROR-2's test saw a SyntaxError item in the wrong shape (ERROR-1's fault) and
    stopped there: ERROR-2 was *not run*, though the state it is about had survived."""
    shape = TestRecord(
        "t::syntax", ["ERROR-2"], "failed", failed_requirement="ERROR-1", own_passed=True,
        reason="[MUST ERROR-1] no ename",
    )  # fmt: skip
    outcomes = {r.id: r.outcome for r in _report(shape).requirements}
    assert outcomes["ERROR-2"] is Outcome.PASSED and outcomes["ERROR-1"] is Outcome.FAILED
    blocked = TestRecord("t::syntax", ["ERROR-2"], "failed", failed_requirement="ERROR-1", reason="no ename")
    assert {r.id: r.outcome for r in _report(blocked).requirements}["ERROR-2"] is Outcome.NOT_RUN


def test_a_selection_is_judged_on_its_members_only() -> None:
    """Issue #30: a --requirement subset was always incomplete (the rest "not run"), and failed on
    requirements it had not chosen."""
    records = [TestRecord("t::health", ["HEALTH-1"], "passed"), TestRecord("t::ready", ["READY-3"], "failed",
               failed_requirement="READY-3", reason="[SHOULD READY-3] 200")]  # fmt: skip
    kwargs = {"target": {"kind": "url", "base_url": "http://127.0.0.1:1"}, "configuration": {}, "features": {},
              "strict": False, "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0}  # fmt: skip
    report = build_report(records, selection=["READY-3", "HEALTH-1"], **kwargs)  # type: ignore[arg-type]
    assert [r.id for r in report.requirements] == ["HEALTH-1", "READY-3"] == report.selection
    assert report.verdict is Verdict.WITH_WARNINGS and exit_code(report.verdict, strict=False) == Exit.CONFORMANT
    assert "Verdict: conformant with warnings (selection: HEALTH-1, READY-3; full profile" in to_terminal(report)
    jsonschema.Draft202012Validator(results_schema()).validate(json.loads(to_json(report)))
    whole = build_report(records, **kwargs)  # type: ignore[arg-type]
    assert whole.verdict is Verdict.INCOMPLETE and whole.selection is None


def test_what_an_execute_response_said_names_its_error_in_any_shape() -> None:
    """Issue #30: TIMEOUT-7 said only "Received: status 'error'"; the exception was in results.json alone."""
    jupyter = {"status": "error", "outputs": [{"type": "error", "ename": "NameError", "evalue": "x", "text": "..."}]}
    other = {"status": "error", "outputs": [{"type": "error", "name": "ValueError", "value": "bad"}]}
    text_only = {"status": "error", "outputs": [{"type": "error", "text": "Traceback ...\nKeyError: 'k'\n"}]}
    assert answer_said(jupyter) == "status 'error': NameError: x"
    assert answer_said(other) == "status 'error': ValueError: bad"
    assert answer_said(text_only) == "status 'error': KeyError: 'k'"
    assert answer_said({"status": "ok", "outputs": []}) == "status 'ok'"
