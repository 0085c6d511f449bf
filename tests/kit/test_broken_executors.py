"""The kit catches every broken executor with exactly the expected requirement IDs.

By command each broken executor is certified on its expected IDs alone (``only``), or whole where
the fault once made the kit blame other requirements too (``Fault.whole``); whether the others
fail anything beyond their IDs is looked for by image, in their areas (tests/image/test_broken_images.py).

Each broken executor is the subprocess executor of examples/ with one fault (tests/kit/broken.py).
The unbroken example is the baseline: a SHOULD it already misses (run as root, no rich output,
not-ready answers with 200) is not the fault's doing. The runs are made in tests/kit/conftest.py.
"""

from __future__ import annotations

import pytest

from conformance import catalogue
from conformance.catalogue import Level
from tests.conftest import ROOT, KitRun
from tests.kit.broken import FAULTS, VARIANTS, detection_table
from tests.readme import section


def test_the_unbroken_example_meets_every_must(kit_runs: dict[str, KitRun]) -> None:
    baseline = kit_runs["baseline"]
    assert baseline.results["verdict"] in ("conformant", "conformant_with_warnings"), baseline.output[-3000:]
    assert {rid for rid in baseline.failed() if catalogue.get(rid).level is Level.MUST} == set()


@pytest.mark.gallery
@pytest.mark.parametrize("name", [name for name, fault in FAULTS.items() if fault.by_command])
def test_the_kit_fails_exactly_the_expected_requirements(kit_runs: dict[str, KitRun], name: str) -> None:
    run, baseline = kit_runs[name], kit_runs["baseline"].failed()
    caught = run.failed() - baseline
    assert caught == FAULTS[name].expected, (
        f"{name}: expected {sorted(FAULTS[name].expected)}, kit failed {sorted(caught)}"
    )
    assert run.results["verdict"] != "conformant"
    if any(catalogue.get(rid).level is Level.MUST for rid in FAULTS[name].expected):
        assert run.results["verdict"] == "non_conformant" and run.returncode == 1
    if FAULTS[name].whole:  # every other requirement judged as on the baseline: none left not run
        # Beside a failure in the same test, a requirement is judged only on what ran before it.
        beside = {
            rid for test in run.results["tests"] if caught & set(test["requirements"]) for rid in test["requirements"]
        }
        others = {rid: outcome for rid, outcome in run.outcomes().items() if rid not in caught | beside}
        expected = {rid: o for rid, o in kit_runs["baseline"].outcomes().items() if rid not in caught | beside}
        assert others == expected, {rid: (o, expected[rid]) for rid, o in others.items() if o != expected[rid]}


@pytest.mark.gallery
@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_valid_executor_built_another_way_fails_nothing_the_baseline_does_not(
    kit_runs: dict[str, KitRun], name: str
) -> None:
    """Issue #30: settings read as integers could not start (the kit sent 2.0), and an executor
    without per-request timeouts failed INPUT-1 and INPUT-5 although it declared so."""
    run, baseline = kit_runs[f"variant:{name}"], kit_runs["baseline"].failed()
    assert run.results["verdict"] in ("conformant", "conformant_with_warnings"), run.output[-3000:]
    assert run.failed() - baseline == set(), run.output[-3000:]


def test_every_must_that_an_executor_can_break_is_caught_by_some_broken_executor() -> None:
    caught = set().union(*(fault.expected | (fault.expected_by_image or set()) for fault in FAULTS.values()))
    musts = {rid for rid, r in catalogue.REQUIREMENTS.items() if r.level is Level.MUST and not r.area.of_pool}
    assert musts - caught == set()


def test_readme_shows_the_detection_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert section(readme, "detection") == detection_table(), "run: nox -s docs"


@pytest.mark.gallery
def test_a_failure_carries_its_exchange_and_a_command_that_sends_it_again(kit_runs: dict[str, KitRun]) -> None:
    """Issue #30: SCHEMA-1's failure said only "ServerError: Server error.", with no method, path,
    status or way to send the request again; schemathesis itself prints a curl line."""
    schema_2 = next(r for r in kit_runs["wrong_method_is_404"].results["requirements"] if r["id"] == "SCHEMA-2")
    message = schema_2["evidence"][0]["message"]
    assert "Request: " in message and "Response: HTTP 404" in message, message
    assert "Reproduce: curl -X " in message and "http://127.0.0.1:" in message, message  # schemathesis's own
    health_1 = next(r for r in kit_runs["health_wrong_body"].results["requirements"] if r["id"] == "HEALTH-1")
    message = health_1["evidence"][0]["message"]
    assert "Response: HTTP 200" in message and "Reproduce: curl -sS -i -X GET http://127.0.0.1:" in message, message
    assert health_1["evidence"][0]["exchange"]["curl"].endswith("/health")
