"""What every test of a certification did, folded into the report at the end and written out: the
outcomes (``Recorder``), and where a CI service shows them (``CiPage``). The target is
``session``'s; the plugin (``plugin.py``) hands both what they need.
"""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .catalogue import Profile
from .options import HEADER_FLAGS
from .outcomes import (
    INCONCLUSIVE_ON,
    SETUP_SECONDS,
    SKIP_KIND,
    NotApplicable,
    NotRun,
    describe,
    requirement_ids,
    skip_kind_of,
    violation_in,
)
from .render import write_reports
from .results import Report, TestRecord, build_report, exit_code
from .violations import cut

__all__ = ["CiPage", "Recorder"]


@dataclass(frozen=True)
class CiPage:
    """Where a CI service shows the run, read once from its environment. Under GitHub Actions
    (GITHUB_ACTIONS=true): an annotation per failure in the log, and the summary on the job's
    page (GITHUB_STEP_SUMMARY)."""

    annotations: bool = False
    step_summary: Path | None = None
    #: The log carries the executor's own text (responses, reasons): GitHub would run a line of
    #: it that starts with ``::`` as a workflow command. So commands are stopped from the run's
    #: first line (``stop``) and resumed with this token for the kit's annotations alone.
    resume_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiPage:
        if env.get("GITHUB_ACTIONS") != "true":
            return cls()
        summary = env.get("GITHUB_STEP_SUMMARY")
        return cls(True, Path(summary) if summary else None, secrets.token_hex(16))

    @property
    def stop(self) -> str:
        """The workflow command that stops GitHub reading the log's commands until resumed."""
        return f"::stop-commands::{self.resume_token}"

    def annotated(self, annotations: str) -> str:
        """``annotations`` between a resume and a new stop: only they are read as commands."""
        return f"::{self.resume_token}::\n{annotations}{self.stop}\n"


@dataclass(eq=False)
class Recorder:
    """The outcome of every test of one certification, and the report made of them."""

    #: Every test of each requirement, as collected before any selection (requirement ID -> node IDs).
    cases: dict[str, list[str]]
    #: The requirements ``--requirement`` and ``--skip-requirement`` chose (None: the whole profile).
    selection: frozenset[str] | None
    ci_page: CiPage = field(default_factory=CiPage)
    records: dict[str, TestRecord] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    started: float = field(default_factory=time.monotonic)
    #: The area of the last live line (a heading is written when it changes).
    current_area: str = ""
    #: Stopped by Ctrl-C: the verdict is ``interrupted``, whatever had run.
    interrupted: bool = False
    #: Why the kit ended the run early (``pytest.exit``'s message), said in the kit's summary.
    exit_message: str | None = None
    report: Report | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)

    def record(
        self,
        item: pytest.Item,
        call: pytest.CallInfo[None],
        report: pytest.TestReport,
        log_tail: Callable[[], str | None],
    ) -> TestRecord:
        """Fold one phase's report into the test's record; ``log_tail``: the executor's last log
        lines (None: none to read), read only for a failure."""
        ids = requirement_ids(item)
        record = self.records.setdefault(item.nodeid, TestRecord(item.nodeid, ids, "passed"))
        setup = item.stash.get(SETUP_SECONDS, 0.0) if report.when == "call" else 0.0
        record.duration_s = round(record.duration_s + setup + report.duration, 3)
        if report.skipped:
            record.outcome = "skipped"
            record.skip_kind = item.stash.get(SKIP_KIND, None) or skip_kind_of(call)
            record.failed_requirement = item.stash.get(INCONCLUSIVE_ON, None)
            error = call.excinfo.value if call.excinfo else None
            longrepr = report.longrepr
            if isinstance(error, NotRun | NotApplicable):
                record.reason = str(error.msg)  # without the exception's name, which pytest puts first
            elif isinstance(longrepr, tuple):
                record.reason = str(longrepr[2]).removeprefix("Skipped: ")
            else:
                record.reason = str(longrepr)
        elif report.failed and record.outcome != "failed":
            record.outcome = "failed"
            error = violation_in(call.excinfo.value) if call.excinfo else None
            if error is not None:
                record.failed_requirement = error.requirement.id
                record.own_passed = error.after_own_checks
                record.reason = error.message
                record.evidence = error.evidence()
            else:
                where = "while setting up" if report.when == "setup" else "in the test"
                text = describe(call.excinfo.value) if call.excinfo else str(report.longrepr)
                record.reason = f"{where}: {cut(text, 3000)}"
                record.evidence = {}
            tail = log_tail()
            if tail is not None:
                record.evidence["log_tail"] = tail
        return record

    def finish(
        self,
        config: pytest.Config,
        *,
        target: dict[str, Any],
        configuration: dict[str, Any],
        features: dict[str, Any],
        error: str | None,
        profile: Profile,
    ) -> int:
        """Fold the records into the report, write it where ``--report-dir`` says: the run's exit code."""
        option = config.getoption
        configuration = {
            **configuration,
            "skip_features": option("skip_feature"),
            "strict": option("conformance_strict"),
            "pytest_args": _without_secrets(config.invocation_params.args),
        }
        self.report = build_report(
            list(self.records.values()),
            target=target,
            configuration=configuration,
            features=features,
            strict=option("conformance_strict"),
            started_at=self.started_at,
            duration_s=time.monotonic() - self.started,
            error=error,
            interrupted=self.interrupted,
            cases=self.cases,
            profile=profile,
            selection=self.selection,
        )
        self.report_paths = write_reports(self.report, Path(option("report_dir")), self.ci_page.step_summary)
        return exit_code(self.report.verdict, option("conformance_strict"))


def _without_secrets(args: Iterable[str]) -> list[str]:
    """The run's arguments as the reports show them: each header's value (a token) left out."""
    shown, after_header = [], False
    for arg in map(str, args):
        flag, equals, value = arg.partition("=")
        if after_header:
            arg = _header_shown(arg)
        elif equals and flag in HEADER_FLAGS:
            arg = f"{flag}={_header_shown(value)}"
        after_header = not after_header and arg in HEADER_FLAGS
        shown.append(arg)
    return shown


def _header_shown(header: str) -> str:
    """A header as the reports show it: its name, never its value (nothing of one without a name)."""
    name, colon, _ = header.partition(":")
    return f"{name}: <not shown>" if colon else "<not shown>"
