"""The report model: per-test records folded into per-requirement outcomes and one verdict.

One versioned ``Report`` object; JUnit, JSON, Markdown and the terminal summary are pure
functions of it (``render.py``). The verdict is computed here, and only here.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from . import __version__, catalogue
from .catalogue import Label, Level, Profile, Requirement

__all__ = [
    "REPORT_VERSION",
    "Exit",
    "Outcome",
    "Report",
    "RequirementResult",
    "SkipKind",
    "TestRecord",
    "Verdict",
    "build_report",
    "exit_code",
    "published_schema",
    "results_schema",
    "unstable_requirements",
    "upgraded",
]

#: results.json's version: 2 has identifiers without spaces for every enumerated value, an
#: integer version, and the ``partial`` outcome; 3 adds the ``inconclusive`` outcome (and skip
#: kind). ``compare`` reads the earlier versions too.
REPORT_VERSION = 3


def published_schema(document: str, version: int) -> dict[str, Any]:
    """The JSON Schema the package ships for ``document`` (results, bench) at ``version``."""
    path = resources.files("conformance") / "schemas" / f"{document}-{version}.schema.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json for this report version."""
    return published_schema("results", REPORT_VERSION)


class Outcome(Label):
    PASSED = "passed"
    FAILED = "failed"
    #: Skipped by declaration: the executor (or the user) turned the requirement's feature off.
    SKIPPED = "skipped"
    #: Some of its tests passed, the rest did not run (not selected, or could not run here).
    #: A MUST partial makes the verdict "incomplete", as one not run does: it is never a pass.
    PARTIAL = "partial"
    #: Could not be run here; says why. A MUST not run makes the verdict "incomplete".
    NOT_RUN = "not_run"
    #: A time bound missed twice on a machine too loaded to say whose the time was
    #: (``conformance.pace``): never failed, never passed. A MUST inconclusive makes the verdict
    #: "incomplete"; run it again on a quieter machine.
    INCONCLUSIVE = "inconclusive"

    @property
    def gap(self) -> bool:
        """Not checked in full: a MUST with this outcome leaves the certification incomplete."""
        return self in (Outcome.PARTIAL, Outcome.NOT_RUN, Outcome.INCONCLUSIVE)


class SkipKind(Label):
    DECLARATION = "declaration"  # feature not declared or switched off
    CAPABILITY = "capability"  # the target cannot be tested for it (no workspace, not destructive)
    NOT_APPLICABLE = "not_applicable"  # the test found nothing to check (e.g. an optional behaviour not used)
    BROKEN_BY_EARLIER = "broken_by_earlier"  # the executor was unusable before the test began
    TRUSTED = "taken_on_trust"  # the kit could not choose what it checks (a URL's settings): the user vouches
    INCONCLUSIVE = "inconclusive"  # late twice on a loaded machine: see Outcome.INCONCLUSIVE

    @property
    def benign(self) -> bool:
        """Not a gap in the certification: the requirement is skipped (or passed beside a pass), not "not run"."""
        return self in (SkipKind.DECLARATION, SkipKind.NOT_APPLICABLE, SkipKind.TRUSTED)


class Verdict(Label):
    CONFORMANT = "conformant"
    WITH_WARNINGS = "conformant_with_warnings"
    NON_CONFORMANT = "non_conformant"
    INCOMPLETE = "incomplete"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class Exit(enum.IntEnum):
    """The kit's exit codes, one per verdict (and one for a usage error, found before anything runs);
    ``meaning`` is what the help and the docs say of each."""

    CONFORMANT = 0
    NON_CONFORMANT = 1
    INCOMPLETE = 2
    ERROR = 3
    USAGE = 4  # an unknown option, a bad value, a report folder that cannot be written
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it; SIGTERM too (the same interrupted run)

    @property
    def meaning(self) -> str:
        return _EXIT_MEANINGS[self]


_EXIT_MEANINGS = {
    Exit.CONFORMANT: "conformant (also conformant with warnings, unless --strict)",
    Exit.NON_CONFORMANT: "non-conformant (or conformant with warnings, under --strict)",
    Exit.INCOMPLETE: "incomplete: no MUST failed, but one was not run (or only in part, or inconclusive)",
    Exit.ERROR: "error: the run could not be made (no executor at the URL, no Docker, a missing image)",
    Exit.USAGE: "usage error, found before anything runs",
    Exit.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


@dataclass
class TestRecord:
    """What one test of the suite did."""

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    requirements: list[str]
    outcome: str  # passed, failed, skipped
    duration_s: float = 0.0
    skip_kind: SkipKind | None = None
    reason: str | None = None
    #: The requirement a violation named, when the test failed with one (or that it found
    #: inconclusive, when it was skipped so).
    failed_requirement: str | None = None
    evidence: dict[str, Any] | None = None
    #: Failed on ``failed_requirement`` only after every other check had passed: its other
    #: requirements count it as passed (``outcomes.deferred``).
    own_passed: bool = False


@dataclass
class RequirementResult:
    id: str
    level: Level
    area: str
    title: str
    feature: str | None
    outcome: Outcome
    reason: str | None = None
    tests: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    kit_version: str
    contract_version: str
    target: dict[str, Any]
    configuration: dict[str, Any]
    features: dict[str, Any]
    requirements: list[RequirementResult]
    tests: list[TestRecord]
    verdict: Verdict
    strict: bool
    started_at: str
    duration_s: float
    error: str | None = None
    #: The profile the verdict is for, and the verdict of each profile it holds (a full run
    #: says whether core holds too).
    profile: Profile = Profile.FULL
    profiles: dict[str, Verdict] = field(default_factory=dict)
    #: The requirements a ``--requirement`` selection judged (None: the whole profile): the verdict
    #: is theirs alone, and the others are left out of the report.
    selection: list[str] | None = None
    report_version: int = REPORT_VERSION

    def counts(self) -> dict[str, dict[str, int]]:
        """Outcomes counted by level: {"MUST": {"passed": n, ...}, ...}."""
        table: dict[str, dict[str, int]] = {level.value: {o.value: 0 for o in Outcome} for level in Level}
        for result in self.requirements:
            table[result.level.value][result.outcome.value] += 1
        return table

    def failed(self, *levels: Level) -> list[RequirementResult]:
        return [r for r in self.requirements if r.outcome is Outcome.FAILED and (not levels or r.level in levels)]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = self.counts()
        return data


def _fold(requirement: Requirement, records: list[TestRecord], cases: Collection[str] = ()) -> RequirementResult:
    """One requirement's outcome from the tests that prove it (``cases``: all of them, run or not)."""
    result = RequirementResult(
        requirement.id,
        requirement.level,
        requirement.area,
        requirement.title,
        requirement.feature,
        Outcome.NOT_RUN,
        tests=[record.nodeid for record in records],
    )
    if not records:
        result.reason = "no test of this requirement ran"
        return result
    failures = [r for r in records if r.outcome == "failed" and r.failed_requirement in (None, requirement.id)]
    if failures:
        result.outcome = Outcome.FAILED
        result.reason = failures[0].reason
        result.evidence = [{"test": r.nodeid, "message": r.reason, **(r.evidence or {})} for r in failures]
        return result
    # Whatever did not run leaves a gap: partial beside a pass, not run alone.
    gap = Outcome.PARTIAL if any(r.outcome == "passed" or r.own_passed for r in records) else Outcome.NOT_RUN
    ran = {record.nodeid for record in records}
    missing = [case for case in cases if case not in ran]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        result.outcome = gap
        result.reason = f"only {len(cases) - len(missing)} of its {len(cases)} tests ran; not {missing[0]}{more}"
        return result
    blocked = [r for r in records if r.outcome == "failed" and not r.own_passed]  # on another requirement first
    skipped = [r for r in records if r.outcome == "skipped"]
    if not skipped and not blocked:
        result.outcome = Outcome.PASSED
        return result
    # Skipped by declaration, or the situation the requirement is about never arose: not a
    # gap in the certification. A missing capability or a broken executor is.
    # A requirement some of whose tests passed, the rest not applicable, has passed.
    inconclusive = [r for r in skipped if r.skip_kind is not None and SkipKind(r.skip_kind) is SkipKind.INCONCLUSIVE]
    if inconclusive and not blocked:
        result.outcome, result.reason = Outcome.INCONCLUSIVE, inconclusive[0].reason
        return result
    benign = all(r.skip_kind is not None and SkipKind(r.skip_kind).benign for r in skipped)
    if skipped and not blocked and benign:
        result.outcome = Outcome.PASSED if gap is Outcome.PARTIAL else Outcome.SKIPPED
    else:
        result.outcome = gap
    first = (skipped or blocked)[0]
    result.reason = first.reason if skipped else f"not reached: {first.nodeid} failed on {first.failed_requirement}"
    return result


def compute_verdict(results: Iterable[RequirementResult]) -> Verdict:
    """conformant: every MUST passed (or skipped by declaration) and no SHOULD or MAY failed."""
    results = list(results)
    if any(r.level is Level.MUST and r.outcome is Outcome.FAILED for r in results):
        return Verdict.NON_CONFORMANT
    if any(r.level is Level.MUST and r.outcome.gap for r in results):
        return Verdict.INCOMPLETE
    if any(r.outcome is Outcome.FAILED for r in results):
        return Verdict.WITH_WARNINGS
    return Verdict.CONFORMANT


def exit_code(verdict: Verdict, strict: bool) -> Exit:
    """The exit code of a run with ``verdict`` (see ``Exit``)."""
    if verdict is Verdict.CONFORMANT or (verdict is Verdict.WITH_WARNINGS and not strict):
        return Exit.CONFORMANT
    return {
        Verdict.WITH_WARNINGS: Exit.NON_CONFORMANT,
        Verdict.NON_CONFORMANT: Exit.NON_CONFORMANT,
        Verdict.INCOMPLETE: Exit.INCOMPLETE,
        Verdict.INTERRUPTED: Exit.INTERRUPTED,
    }.get(verdict, Exit.ERROR)


def upgraded(report: dict[str, Any]) -> dict[str, Any]:
    """A results.json document of any report version, with this version's verdict and outcome
    values (version 1 wrote words: "not run", "conformant with warnings", "non-conformant")."""
    if report.get("report_version") == REPORT_VERSION:
        return report

    def identifier(word: str) -> str:
        return str(word).replace(" ", "_").replace("-", "_")

    requirements = [{**r, "outcome": identifier(r["outcome"])} for r in report["requirements"]]
    return {**report, "verdict": identifier(report["verdict"]), "requirements": requirements}


def unstable_requirements(reports: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Requirements whose outcome differs between runs (results.json documents, ``upgraded``):
    id -> outcome per run."""
    outcomes: dict[str, list[str]] = {}
    for report in reports:
        for requirement in report["requirements"]:
            outcomes.setdefault(requirement["id"], []).append(requirement["outcome"])
    return {rid: seen for rid, seen in outcomes.items() if len(set(seen)) > 1}


def build_report(
    records: list[TestRecord],
    *,
    target: dict[str, Any],
    configuration: dict[str, Any],
    features: dict[str, Any],
    strict: bool,
    started_at: str,
    duration_s: float,
    error: str | None = None,
    interrupted: bool = False,
    cases: Mapping[str, Collection[str]] | None = None,
    profile: Profile = Profile.FULL,
    selection: Collection[str] | None = None,
) -> Report:
    """Fold test records into the report; requirements keep the catalogue's order.

    ``error``: why the run could not be made (verdict ``error``); ``interrupted``: it was stopped
    by Ctrl-C (verdict ``interrupted``, whatever had run). ``cases``: every test of each requirement
    (ID -> node IDs), selected or not; a requirement some of whose tests did not run is not run,
    never passed, unless one that ran failed. ``profile``: the requirements reported and judged
    (the others are left out); the verdict of each smaller profile is reported beside.
    ``selection``: the requirements a ``--requirement`` selection chose; only they are reported
    and judged (a CI job that checks one requirement gets that requirement's verdict)."""
    by_requirement: dict[str, list[TestRecord]] = {
        rid: []
        for rid, requirement in catalogue.REQUIREMENTS.items()
        if requirement.in_profile(profile) and (selection is None or rid in selection)
    }
    for record in records:
        named = {*record.requirements, *([record.failed_requirement] if record.failed_requirement else [])}
        for rid in named & by_requirement.keys():
            by_requirement[rid].append(record)
    results = [
        _fold(catalogue.REQUIREMENTS[rid], recs, (cases or {}).get(rid, ())) for rid, recs in by_requirement.items()
    ]
    if interrupted:
        error = error or "interrupted (Ctrl-C or SIGTERM) before the run was over; what had run is reported"
    verdict = Verdict.INTERRUPTED if interrupted else Verdict.ERROR if error else compute_verdict(results)
    # The run's own profile, and each smaller one: a full run says whether core holds.
    profiles = {
        p.value: compute_verdict(r for r in results if catalogue.get(r.id).in_profile(p))
        if p is not profile and verdict not in (Verdict.INTERRUPTED, Verdict.ERROR)
        else verdict
        for p in Profile
        if _within(p, profile)
    }
    return Report(
        kit_version=__version__,
        contract_version=catalogue.contract_version(profile),
        target=target,
        configuration=configuration,
        features=features,
        requirements=results,
        tests=records,
        verdict=verdict,
        strict=strict,
        started_at=started_at,
        duration_s=round(duration_s, 2),
        error=error,
        profile=profile,
        profiles=profiles,
        selection=None if selection is None else sorted(selection, key=list(catalogue.REQUIREMENTS).index),
    )


def _within(smaller: Profile, larger: Profile) -> bool:
    """Every requirement of ``smaller`` is in ``larger``."""
    return all(r.in_profile(larger) for r in catalogue.REQUIREMENTS.values() if r.in_profile(smaller))
