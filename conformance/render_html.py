"""report.html: the report as one self-contained page, for a CI job's artifacts or a browser.

The verdict, the counts by level, and a row per requirement, filtered by level and outcome
(checkboxes, or the page's address: ``report.html#level=MUST&outcome=failed``); each requirement
that did not pass opens on what the kit saw: the message, the exchange (request, status,
response), the curl line that reproduces it, and the executor's log tail. Nothing is loaded from
anywhere, and only the page's own style and script run (a Content-Security-Policy with their
digests); every text from the executor is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from itertools import takewhile
from typing import Any

from .catalogue import Level
from .results import Outcome, Report, RequirementResult

__all__ = ["to_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
.meta { color: #59636e; margin-bottom: 1rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; }
th, td { border: 1px solid #d1d9e0; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.passed { background: #dafbe1; } .failed { background: #ffebe9; } .skipped, .not_run { background: #f6f8fa; }
.partial, .inconclusive { background: #fff8c5; }
fieldset { display: inline-block; border: 1px solid #d1d9e0; margin: 0 .8rem .5rem 0; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; padding: .4rem; margin: .2rem 0; }
details summary { cursor: pointer; }
.verdict-conformant { color: #1a7f37; } .verdict-non_conformant, .verdict-error { color: #cf222e; }
"""

#: Filters from the checkboxes, first set from the address (``#level=MUST,SHOULD&outcome=failed``).
_SCRIPT = """
const boxes = [...document.querySelectorAll('input[data-filter]')];
function chosen(kind) {
  return new Set(boxes.filter(b => b.dataset.filter === kind && b.checked).map(b => b.value));
}
function apply() {
  const levels = chosen('level'), outcomes = chosen('outcome');
  let shown = 0;
  for (const row of document.querySelectorAll('tr[data-level]')) {
    const visible = levels.has(row.dataset.level) && outcomes.has(row.dataset.outcome);
    row.hidden = !visible;
    shown += visible ? 1 : 0;
  }
  document.getElementById('shown').textContent = shown;
}
function fromAddress() {
  const wanted = new URLSearchParams(location.hash.slice(1));
  for (const box of boxes) {
    const values = wanted.get(box.dataset.filter);
    if (values !== null) box.checked = values.split(',').includes(box.value);
  }
  apply();
}
boxes.forEach(b => b.addEventListener('change', apply));
window.addEventListener('hashchange', fromAddress);
fromAddress();
"""


def _digest(text: str) -> str:
    """A Content-Security-Policy source for the inline ``text``: only that style or script runs,
    never one that executor text might slip in."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def to_html(report: Report, target_name: str, profiles: str) -> str:
    """The page; ``target_name`` and ``profiles`` as the other reports name them."""
    verdict = report.verdict
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        f'style-src {_digest(_STYLE)}; script-src {_digest(_SCRIPT)}">',
        f"<title>Executor conformance: {escape(verdict.label)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<h1>Executor conformance: <span class="verdict-{verdict.value}" id="verdict">{escape(verdict.label)}'
        f"</span></h1>",
        f'<div class="meta">{escape(profiles)} · target <code>{escape(target_name)}</code> · contract '
        f"{escape(report.contract_version)} · kit {escape(report.kit_version)} · started {escape(report.started_at)}"
        f" · {report.duration_s:.0f} s</div>",
    ]
    if report.error:
        parts.append(f"<pre>{escape(report.error)}</pre>")
    parts += _counts(report)
    parts += _filters(report)
    parts += [
        '<table id="requirements"><thead><tr><th>Requirement</th><th>Level</th><th>Outcome</th><th>Title</th>'
        "<th>What the kit saw</th></tr></thead><tbody>",
        *(_row(result) for result in report.requirements),
        "</tbody></table>",
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _counts(report: Report) -> list[str]:
    shown = [o for o in Outcome if o is not Outcome.INCONCLUSIVE or any(r.outcome is o for r in report.requirements)]
    rows = [f"<tr><th>Level</th>{''.join(f'<th>{o.label}</th>' for o in shown)}</tr>"]
    for level, counts in report.counts().items():
        rows.append(f"<tr><th>{level}</th>{''.join(f'<td>{counts[o.value]}</td>' for o in shown)}</tr>")
    return ['<table id="counts">', *rows, "</table>"]


def _filters(report: Report) -> list[str]:
    present = {r.outcome for r in report.requirements}

    def box(kind: str, value: str, label: str) -> str:
        return f'<label><input type="checkbox" data-filter="{kind}" value="{value}" checked> {escape(label)}</label>'

    levels = " ".join(box("level", level.value, level.value) for level in Level)
    outcomes = " ".join(box("outcome", o.value, o.label) for o in Outcome if o in present)
    return [
        f"<div><fieldset><legend>Level</legend>{levels}</fieldset>",
        f"<fieldset><legend>Outcome</legend>{outcomes}</fieldset>",
        f'<span><span id="shown">{len(report.requirements)}</span> of {len(report.requirements)} shown</span></div>',
    ]


def _row(result: RequirementResult) -> str:
    outcome = result.outcome
    seen = "" if outcome is Outcome.PASSED else _seen(result)
    return (
        f'<tr class="{outcome.value}" data-level="{result.level.value}" data-outcome="{outcome.value}" '
        f'id="{escape(result.id)}"><td>{escape(result.id)}</td><td>{result.level.value}</td><td>{outcome.label}</td>'
        f"<td>{escape(result.title)}</td><td>{seen}</td></tr>"
    )


def _seen(result: RequirementResult) -> str:
    """What the kit saw of a requirement that did not pass: its reason, then each test's evidence."""
    # A reason's first line is the requirement's label and title, already in the row: what
    # follows it (expected, received) is what the kit saw; the exchange is in the evidence below.
    first, *rest = (result.reason or "").splitlines() or [""]
    seen = "\n".join(takewhile(lambda line: not line.startswith("Request: "), rest))
    parts = [f"<pre>{escape(seen)}</pre>" if seen else f"<div>{escape(first)}</div>"]
    opened = " open" if result.outcome is Outcome.FAILED else ""
    for evidence in result.evidence:
        test = escape(str(evidence.get("test", "evidence")))
        shown = _evidence(evidence, same_as_reason=evidence.get("message") == result.reason)
        parts.append(f"<details{opened}><summary>{test}</summary>{shown}</details>")
    return "".join(parts)


def _evidence(evidence: dict[str, Any], *, same_as_reason: bool) -> str:
    """A test's evidence: its message (unless the row shows it already), the exchange, the log."""
    exchange = evidence.get("exchange") or {}
    fields = [
        ("Message", None if same_as_reason else evidence.get("message")),
        ("Request", exchange.get("request")),
        ("Status", exchange.get("status")),
        ("Response", exchange.get("response")),
        ("Error", exchange.get("error")),
        ("Reproduce", exchange.get("curl")),
    ]
    shown = "".join(f"<div>{name}:</div><pre>{escape(str(value))}</pre>" for name, value in fields if value is not None)
    log = evidence.get("log_tail")
    if log:
        shown += f"<details><summary>The executor's log (last lines)</summary><pre>{escape(str(log))}</pre></details>"
    return shown
