"""Renderers of the report: pure functions from a ``Report`` to text.

``write_reports`` is the only function here that touches the disk.
"""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from .catalogue import Level, Profile
from .render_html import to_html
from .results import Outcome, Report, RequirementResult, Verdict
from .settings import SettingsSource

TRUSTED = SettingsSource.TRUSTED.value

__all__ = [
    "check_writable",
    "to_badge",
    "to_github_annotations",
    "to_json",
    "to_junit",
    "to_markdown",
    "to_terminal",
    "write_reports",
]

_ICON = {
    Outcome.PASSED: "✅",
    Outcome.FAILED: "❌",
    Outcome.SKIPPED: "⏭️",
    Outcome.PARTIAL: "◐",
    Outcome.NOT_RUN: "⚪",
    Outcome.INCONCLUSIVE: "❔",
}


def _target_name(report: Report) -> str:
    """What was certified, as its user named it: the image, the command, or the URL."""
    target = report.target
    command = target.get("command")
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return str(target.get("image") or command or target.get("base_url") or target.get("kind", "?"))


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def to_junit(report: Report) -> str:
    """JUnit XML: ``<testsuites>`` holding one suite, one test case per requirement (its ID and
    level as properties), and one more with an ``<error>`` when the run could not be made."""
    counts = {o: sum(1 for r in report.requirements if r.outcome is o) for o in Outcome}
    totals = {
        "tests": str(len(report.requirements) + (1 if report.error else 0)),
        "failures": str(counts[Outcome.FAILED]),
        "errors": "1" if report.error else "0",
        "skipped": str(sum(n for outcome, n in counts.items() if outcome not in (Outcome.PASSED, Outcome.FAILED))),
        "time": f"{report.duration_s:.2f}",
    }
    root = ET.Element("testsuites", {"name": "executor-conformance", **totals})
    suite = ET.SubElement(root, "testsuite", {"name": "executor-conformance", "timestamp": report.started_at, **totals})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", report.verdict.value),
        ("profile", report.profile.value),
        *((f"verdict_{name}", verdict.value) for name, verdict in report.profiles.items() if name != report.profile),
        ("contract_version", report.contract_version),
        ("kit_version", report.kit_version),
        ("target", _target_name(report)),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    if report.error:  # the run itself: what CI widgets show as an error, with the reason
        run = ET.SubElement(suite, "testcase", classname="conformance.run", name=f"the run ({report.verdict.value})")
        error = ET.SubElement(run, "error", message=report.error.split("\n")[0][:500])
        error.text = report.error
    seconds: dict[str, float] = {}
    for record in report.tests:  # a requirement's time: its tests' (a test of two counts for both)
        for rid in record.requirements:
            seconds[rid] = seconds.get(rid, 0.0) + record.duration_s
    for result in report.requirements:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"conformance.{result.area}",
            name=f"{result.id} {result.title}",
            time=f"{seconds.get(result.id, 0.0):.2f}",
        )
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="requirement", value=result.id)
        ET.SubElement(props, "property", name="level", value=result.level.value)
        if result.feature:
            ET.SubElement(props, "property", name="feature", value=result.feature)
        if result.outcome is Outcome.FAILED:
            failure = ET.SubElement(case, "failure", message=(result.reason or "").split("\n")[0][:500])
            failure.text = "\n\n".join(str(e.get("message", "")) for e in result.evidence)
        elif result.outcome is not Outcome.PASSED:
            ET.SubElement(case, "skipped", message=f"{result.outcome.label}: {result.reason or ''}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _outcomes_shown(table: dict[str, dict[str, int]]) -> list[Outcome]:
    """The columns of a table of counts: inconclusive only when the run had one (a quiet run's
    table is the same as before the outcome existed)."""
    return [o for o in Outcome if o is not Outcome.INCONCLUSIVE or any(row[o.value] for row in table.values())]


def _cell(text: str | None) -> str:
    return (text or "").split("\n")[0].replace("|", "\\|")[:160]


def to_markdown(report: Report) -> str:
    """A short summary for a CI job page: the verdict, counts by level, a table by requirement."""
    lines = [
        f"## Executor conformance: **{report.verdict.label}** ({profiles(report)})",
        "",
        f"Target: `{_target_name(report)}` · contract {report.contract_version} · kit {report.kit_version}"
        f" · {report.duration_s:.0f} s",
        "",
    ]
    if report.error:
        lines += [f"> {report.error.splitlines()[0]}", ""]
    table = report.counts()
    shown = _outcomes_shown(table)
    lines += [f"| Level | {' | '.join(o.label for o in shown)} |", "| --- " * (len(shown) + 1) + "|"]
    for level, row in table.items():
        lines.append(f"| {level} | {' | '.join(str(row[o.value]) for o in shown)} |")
    lines += ["", "| | Requirement | Level | Outcome | Note |", "| --- | --- | --- | --- | --- |"]
    for r in report.requirements:
        lines.append(f"| {_ICON[r.outcome]} | {r.id} | {r.level.value} | {r.outcome.label} | {_note(r)} |")
    settings = report.configuration.get("settings") or []
    if settings:
        lines += ["", "| Setting | Value | Default | Source | Checked by |", "| --- | --- | --- | --- | --- |"]
        for row in settings:
            value, default, checked = _value(row["value"]), _value(row["default"]), ", ".join(row["checked_by"])
            source = SettingsSource(row["source"]).label
            lines.append(f"| `{row['variable']}` | {value} | {default} | {source} | {checked or '-'} |")
    return "\n".join(lines) + "\n"


def _note(result: RequirementResult) -> str:
    """A requirement's note: for a failure, what was expected and what came back, not its title."""
    evidence = result.evidence[0] if result.evidence else {}
    if result.outcome is Outcome.FAILED and evidence.get("expected") is not None:
        return _cell(f"Expected {evidence['expected']}; received {evidence.get('received', '')}")
    return _cell(result.reason)


def _value(value: object) -> str:
    return "-" if value is None else f"`{value}`"


def trusted_settings(report: Report) -> list[str]:
    """The settings the kit could not choose, and so took on trust (a URL target)."""
    return [row["variable"] for row in report.configuration.get("settings") or [] if row["source"] == TRUSTED]


def to_terminal(report: Report) -> str:
    """One screen: failures first, then counts and the verdict."""
    lines = []
    for level in Level:
        lines += [f"FAILED {_labelled(r)}" for r in report.failed(level)]
    for r in report.requirements:
        if r.outcome.gap and (r.level is Level.MUST or r.outcome is Outcome.INCONCLUSIVE):
            lines.append(f"{r.outcome.label.upper()} {_labelled(r)}")
    table = report.counts()
    for level_name, row in table.items():
        counts = "  ".join(f"{row[o.value]:>3} {o.label}" for o in _outcomes_shown(table))
        lines.append(f"{level_name:<6} {counts}")
    trusted = trusted_settings(report)
    if trusted:
        lines.append(f"Taken on trust (the kit did not start the executor): {', '.join(trusted)}")
    if report.error:
        lines.append(f"ERROR: {report.error}")
    strict = " (strict)" if report.strict and report.verdict is Verdict.WITH_WARNINGS else ""
    lines.append(f"Verdict: {report.verdict.label}{strict} ({profiles(report)})")
    return "\n".join(lines)


def _labelled(r: RequirementResult) -> str:
    """The first line of ``r``'s reason, after its label ("[MUST TIMEOUT-1]") unless it has one."""
    reason, label = _cell(r.reason), f"[{r.level.value} {r.id}]"
    return reason if reason.startswith(label) else f"{label} {reason}"


def profiles(report: Report) -> str:
    """The profile the verdict is for, and the verdicts of the smaller ones: "full profile; core: conformant"."""
    others = "".join(
        f"; {name}: {verdict.label}" for name, verdict in report.profiles.items() if name != report.profile
    )
    chosen = report.selection
    if chosen is not None:  # a verdict for the selection alone, never for the contract
        shown = ", ".join(chosen[:4]) + (f" and {len(chosen) - 4} more" if len(chosen) > 4 else "")
        return f"selection: {shown}; {report.profile.value} profile{others}"
    return f"{report.profile.value} profile{others}"


#: The badge's colour for each verdict (shields.io's named colours).
_BADGE_COLOUR = {
    Verdict.CONFORMANT: "brightgreen",
    Verdict.WITH_WARNINGS: "yellow",
    Verdict.NON_CONFORMANT: "red",
    Verdict.INCOMPLETE: "lightgrey",
    Verdict.ERROR: "lightgrey",
    Verdict.INTERRUPTED: "lightgrey",
}


def to_badge(report: Report) -> str:
    """badge.json: shields.io's endpoint format (``https://img.shields.io/endpoint?url=...``),
    the verdict, and the part of the contract it is for unless it is the whole."""
    if report.selection is not None:
        scope = " (selection)"
    else:
        scope = "" if report.profile is Profile.FULL else f" ({report.profile.value})"
    badge = {
        "schemaVersion": 1,
        "label": f"executor contract {report.contract_version}",
        "message": report.verdict.label + scope,
        "color": _BADGE_COLOUR[report.verdict],
    }
    return json.dumps(badge) + "\n"


def _workflow_text(text: str, *, in_property: bool = False) -> str:
    """Text escaped for a GitHub Actions workflow command (its message, or a property's value)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if in_property else text


def to_github_annotations(report: Report) -> str:
    """GitHub Actions workflow commands: an error per failed MUST (and for a run that could not be
    made), a warning per failed SHOULD or MAY; each titled with its level and ID."""
    lines = []
    for result in report.failed():
        kind = "error" if result.level is Level.MUST else "warning"
        title = _workflow_text(f"{result.level.value} {result.id} failed", in_property=True)
        lines.append(f"::{kind} title={title}::{_workflow_text(result.reason or result.title)}")
    if report.error:
        lines.append(f"::error title=executor conformance::{_workflow_text(report.error)}")
    return "".join(line + "\n" for line in lines)


def check_writable(folder: Path) -> None:
    """OSError unless the reports can be written into ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable-"):
        pass


def write_reports(report: Report, folder: Path, step_summary: Path | None = None) -> dict[str, Path]:
    """Write results.json, junit.xml, summary.md, report.html and badge.json into ``folder``, and
    append the summary to ``step_summary`` (a CI job's page: GITHUB_STEP_SUMMARY) if given; return
    the reports' paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "junit": folder / "junit.xml",
        "markdown": folder / "summary.md",
        "html": folder / "report.html",
        "badge": folder / "badge.json",
    }
    summary = to_markdown(report)
    paths["json"].write_text(to_json(report), encoding="utf-8")
    paths["junit"].write_text(to_junit(report), encoding="utf-8")
    paths["markdown"].write_text(summary, encoding="utf-8")
    paths["html"].write_text(to_html(report, _target_name(report), profiles(report)), encoding="utf-8")
    paths["badge"].write_text(to_badge(report), encoding="utf-8")
    if step_summary is not None:
        with step_summary.open("a", encoding="utf-8") as page:
            page.write(summary)
    return paths
