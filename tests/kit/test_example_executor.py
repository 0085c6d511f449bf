"""The kit's false-positive guard: the second executor, reached by URL like any running service.

It makes the choices the contract allows and the reference does not (200 while not ready, a
synchronous restart, 429 for concurrent calls, no /info, no rich output); the kit must not fail
a MUST for any of them. Through the manager, the kit must say exactly what it says directly.
The runs are made in tests/kit/conftest.py.
"""

from __future__ import annotations

from conformance import catalogue
from conformance.catalogue import Level
from tests.conftest import KitRun


def test_example_executor_by_url_is_conformant_with_warnings(kit_runs: dict[str, KitRun]) -> None:
    run = kit_runs["example-url"]
    failed_musts = {rid for rid in run.failed() if catalogue.get(rid).level is Level.MUST}
    assert failed_musts == set(), run.output[-3000:]
    assert run.results["verdict"] == "conformant with warnings" and run.returncode == 0
    assert run.outcomes()["CRASH-3"] == "not run"  # no memory limit was declared for a URL target
    assert run.outcomes()["EXEC-4"] == "failed"  # no rich display_data: a SHOULD not met
    assert run.results["features"]["source"].startswith("no GET /info")


def test_the_verdict_through_the_manager_equals_the_verdict_direct(kit_runs: dict[str, KitRun]) -> None:
    direct, proxied = kit_runs["example-url"], kit_runs["example-via-manager"]
    assert proxied.results["verdict"] == direct.results["verdict"]
    assert proxied.outcomes() == direct.outcomes()
