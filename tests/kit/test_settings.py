"""The settings the kit starts executors with: apart from the defaults, on the side the checks can see."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.options import TARGET_OPTIONS, settings_from
from conformance.render import to_markdown, to_terminal
from conformance.results import build_report
from conformance.settings import (
    CHOSEN,
    CONTRACT_DEFAULTS,
    KIT_SETTINGS,
    SESSION_ENV_PROBE,
    SETTINGS,
    ExecutorSettings,
    SettingsSource,
    declared_settings,
    settings_report,
)
from tests.conftest import ROOT, RunningExecutor, run_kit
from tests.kit.test_results import _report

KIT, DEFAULT = KIT_SETTINGS, CONTRACT_DEFAULTS


def test_each_value_the_kit_sets_gives_another_outcome_than_the_default() -> None:
    # TIMEOUT-7: code sleeping 1.3x the kit's timeout ends `timeout` here and `ok` under the default.
    assert KIT.execution_timeout * 1.3 < DEFAULT.execution_timeout * 0.95
    # OUTPUT-2: twice the kit's limit printed is cut here and not under the default.
    assert KIT.max_output_bytes * 2 < DEFAULT.max_output_bytes
    # INPUT-2: three quarters of the kit's limit is accepted here and refused under the default.
    assert KIT.max_request_bytes * 3 // 4 > DEFAULT.max_request_bytes
    # INPUT-5: a timeout just over the kit's maximum is refused here and accepted under the default.
    assert KIT.max_execution_timeout is not None and DEFAULT.max_execution_timeout is not None
    assert KIT.max_execution_timeout + 1 < DEFAULT.max_execution_timeout
    assert KIT.port != DEFAULT.port
    assert KIT.session_env and not DEFAULT.session_env


def test_the_environment_leaves_unset_settings_out() -> None:
    env = KIT.environment()
    assert env["PORT"] == "9432" and env["EXECUTION_TIMEOUT"] == "2" and env["SESSION_ENV"] == "CONFORMANCE_PASSED_ON"
    assert "CONFORMANCE_SERVER_ONLY" in env  # the variable SESSION_ENV does not name (ISO-6)
    unset = dataclasses.replace(KIT, port=None, session_env=None)
    assert "PORT" not in unset.environment() and "CONFORMANCE_SERVER_ONLY" not in unset.environment()


def test_whole_numbers_are_written_as_whole_numbers_so_that_int_reads_them() -> None:
    """Issue #30: `EXECUTION_TIMEOUT=2.0` stopped an executor that reads it with int() at start-up."""
    env = KIT.environment()
    assert env["EXECUTION_TIMEOUT"] == "2" and env["MAX_EXECUTION_TIMEOUT"] == "120"
    for variable in ("EXECUTION_TIMEOUT", "MAX_OUTPUT_BYTES", "MAX_REQUEST_BYTES", "MAX_EXECUTION_TIMEOUT"):
        int(env[variable])
    assert dataclasses.replace(KIT, execution_timeout=0.5).environment()["EXECUTION_TIMEOUT"] == "0.5"


def test_every_requirement_that_checks_a_setting_is_in_the_catalogue() -> None:
    for setting in SETTINGS:
        for rid in setting.checked_by:
            catalogue.get(rid)  # raises for an unknown ID


def test_the_contract_documents_every_setting_and_how_the_kit_checks_it() -> None:
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    section = text[text.index("## Configuration") : text.index("## Health")]
    for setting in SETTINGS:
        first = setting.variable.split(",")[0]
        assert section.count(f"`{first}`") >= 2, f"{first}: in the table of settings and in how the kit checks it"
        for rid in setting.checked_by:
            assert re.search(rf"`{first}`[^\n]*{rid}", section), f"{first}: the contract says {rid} checks it"


def _options(**given: object) -> Callable[[str], object]:
    defaults = {option.kwargs["dest"]: option.kwargs.get("default") for option in TARGET_OPTIONS}
    values = {**defaults, **given}
    return lambda name: values[name]


def test_the_kit_chooses_the_settings_of_a_target_it_starts_and_trusts_a_url() -> None:
    assert settings_from(_options()) == KIT
    assert settings_from(_options(execution_timeout=1.0)).execution_timeout == 1.0
    declared = settings_from(_options(executor_url="http://127.0.0.1:1", max_output_bytes=4096))
    assert declared.max_output_bytes == 4096 and declared.execution_timeout == DEFAULT.execution_timeout
    assert declared.max_execution_timeout is None  # unknown: the kit did not set it


@pytest.mark.parametrize("source", [SettingsSource.KIT, SettingsSource.TRUSTED])
def test_the_report_says_who_chose_each_setting(source: SettingsSource, tmp_path: Path) -> None:
    rows = settings_report(KIT if source is SettingsSource.KIT else DEFAULT, source)
    report = _report()
    report = build_report(
        report.tests,
        target=report.target,
        configuration={"settings": rows},
        features={},
        strict=False,
        started_at=report.started_at,
        duration_s=1.0,
    )
    markdown, terminal = to_markdown(report), to_terminal(report)
    assert f"| `EXECUTION_TIMEOUT` | `{rows[2]['value']}` | `3.0` | {source.label} |" in markdown
    if source is SettingsSource.TRUSTED:
        assert "Taken on trust (the kit did not start the executor): PORT, WORKSPACE_FOLDER" in terminal
        assert all(not row["checked_by"] for row in rows)
    else:
        assert "Taken on trust" not in terminal
        assert {"CONFIG-1", "TIMEOUT-7", "OUTPUT-2", "INPUT-2"} <= {rid for row in rows for rid in row["checked_by"]}


@pytest.mark.parametrize("reference_executor", [{"EXECUTION_TIMEOUT": "7", "MAX_OUTPUT_BYTES": "65536"}], indirect=True)
def test_an_executor_at_a_url_is_certified_with_the_settings_its_info_declares(
    reference_executor: RunningExecutor, tmp_path: Path
) -> None:
    """Issue #32: the pool by URL failed TIMEOUT-1 (its executors ran with EXECUTION_TIMEOUT=360,
    the kit assumed the contract's 3 s). An executor that declares its settings in GET /info
    (contract 1.6) is certified with them: code the kit makes outlast 7 s, not 3, and output cut
    at 64 KiB, not at 1 MiB. An option the user gives still wins over what is declared."""
    url = ["--url", reference_executor.base_url, "--allow-destructive"]
    run = run_kit([*url, "--requirement", "TIMEOUT-1,OUTPUT-2,INFO-1"], tmp_path / "declared")
    assert run.outcomes() == {"TIMEOUT-1": "passed", "OUTPUT-2": "passed", "INFO-1": "passed"}, run.output[-3000:]
    rows = {row["variable"]: (row["value"], row["source"]) for row in run.results["configuration"]["settings"]}
    assert rows["EXECUTION_TIMEOUT"] == (7.0, "declared_by_the_executor")
    assert rows["MAX_OUTPUT_BYTES"] == (65536, "declared_by_the_executor")
    assert rows["WORKSPACE_FOLDER"][1] == "taken_on_trust"  # not declarable
    assert "settings declared by the executor in GET /info, used by the kit: EXECUTION_TIMEOUT=7," in run.output
    assert "MAX_OUTPUT_BYTES=65536" in run.output

    chosen = run_kit([*url, "--execution-timeout", "9", "--requirement", "INFO-1"], tmp_path / "chosen")
    rows = {row["variable"]: (row["value"], row["source"]) for row in chosen.results["configuration"]["settings"]}
    assert rows["EXECUTION_TIMEOUT"] == (9.0, "taken_on_trust")
    assert rows["MAX_OUTPUT_BYTES"][1] == "declared_by_the_executor"


def test_declared_settings_that_are_not_positive_numbers_or_past_the_kits_bounds_are_refused_and_said() -> None:
    """A review: EXECUTION_TIMEOUT=1e9 would have made the kit wait for decades, 1e12 crash its
    sockets, MAX_REQUEST_BYTES=10**12 take its memory (INPUT-2 sends three quarters of it)."""
    values, unusable = declared_settings(
        {"EXECUTION_TIMEOUT": "7", "MAX_OUTPUT_BYTES": 1.5, "MAX_REQUEST_BYTES": True, "MAX_EXECUTION_TIMEOUT": 1e999,
         "OWN_SETTING": 3}
    )  # fmt: skip
    assert values == {}
    assert unusable == [
        "EXECUTION_TIMEOUT='7'", "MAX_OUTPUT_BYTES=1.5", "MAX_REQUEST_BYTES=True",
        "MAX_EXECUTION_TIMEOUT=inf (the kit takes at most 3600)",
    ]  # fmt: skip
    hostile = {"EXECUTION_TIMEOUT": 1e9, "MAX_REQUEST_BYTES": 10**400, "MAX_OUTPUT_BYTES": -1}
    values, unusable = declared_settings(hostile)
    assert values == {} and unusable[0] == "EXECUTION_TIMEOUT=1000000000.0 (the kit takes at most 600)"
    assert unusable[1].startswith("MAX_REQUEST_BYTES=1000000000")
    assert unusable[1].endswith("more characters] (the kit takes at most 67108864)")
    assert unusable[2] == "MAX_OUTPUT_BYTES=-1"
    assert declared_settings({"EXECUTION_TIMEOUT": 360, "MAX_OUTPUT_BYTES": 4096.0}) == (
        {"execution_timeout": 360.0, "max_output_bytes": 4096},
        [],
    )
    assert declared_settings([1, 2])[1] == ["`settings` is list, not an object"]


def test_the_settings_table_is_the_one_home_of_every_setting_the_kit_chooses() -> None:
    """Issue #31: the defaults, the kit's values, the environment and the options are made of the
    table's rows; a field of ExecutorSettings without a row (or a row naming no field) is caught."""
    fields = {field.name for field in dataclasses.fields(ExecutorSettings)}
    assert set(CHOSEN) == fields
    for name, setting in CHOSEN.items():
        assert getattr(DEFAULT, name) == setting.default and getattr(KIT, name) == setting.kit
    assert set(KIT.environment()) - set(SESSION_ENV_PROBE) == {setting.variable for setting in CHOSEN.values()}
    options = {option.kwargs["dest"]: option for option in TARGET_OPTIONS}
    for name, setting in CHOSEN.items():
        assert (name in options) is setting.option, f"{setting.variable}: an option exactly when its row says"
        if setting.option:
            assert options[name].flags == setting.flags and options[name].kwargs["type"] is setting.value_type
            assert setting.variable in options[name].kwargs["help"]
