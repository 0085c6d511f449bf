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


def test_example_executor_by_url_fails_no_must_and_says_what_it_could_not_check(kit_runs: dict[str, KitRun]) -> None:
    run = kit_runs["example-url"]
    failed_musts = {rid for rid in run.failed() if catalogue.get(rid).level is Level.MUST}
    assert failed_musts == set(), run.output[-3000:]
    # ISO-5's signals are not sent to an executor in the kit's own PID namespace: not run, never
    # passed, so the verdict is incomplete (by image, the same executor is conformant with warnings).
    not_run_musts = {r["id"]: r["reason"] for r in run.results["requirements"]
                     if r["outcome"] == "not run" and r["level"] == "MUST"}  # fmt: skip
    assert list(not_run_musts) == ["ISO-5"] and "PID namespace" in not_run_musts["ISO-5"], not_run_musts
    assert run.results["verdict"] == "incomplete" and run.returncode == 2
    assert run.outcomes()["CRASH-3"] == "not run"  # no memory limit was declared for a URL target
    # The kit could not choose a URL's settings: taken on trust, said so, never passed.
    for rid in ("CONFIG-1", "CONFIG-2", "ISO-6"):
        assert run.outcomes()[rid] == "skipped", rid
    assert "Taken on trust (the kit did not start the executor): PORT" in run.output
    assert run.outcomes()["EXEC-4"] == "failed"  # no rich display_data: a SHOULD not met
    assert run.results["features"]["source"].startswith("no GET /info")


def test_the_verdict_through_the_manager_equals_the_verdict_direct(kit_runs: dict[str, KitRun]) -> None:
    direct, proxied = kit_runs["example-url"], kit_runs["example-via-manager"]
    assert proxied.results["verdict"] == direct.results["verdict"]
    assert proxied.outcomes() == direct.outcomes()
