"""The Node.js executor (examples/node_executor): a server in another runtime, JavaScript sessions.

Certified with the JavaScript language pack, it must meet every MUST, and the kit must catch each
of its broken modes (tests/kit/broken_node.js) with exactly the expected IDs. The runs are made
in tests/kit/conftest.py.
"""

from __future__ import annotations

import pytest

from conformance import catalogue
from conformance.catalogue import Level
from tests.conftest import KitRun
from tests.image.docker_env import needs
from tests.kit.broken import NODE_FAULTS
from tests.kit.conftest import NODE_PROBLEM

pytestmark = needs(NODE_PROBLEM, "Node.js-backed")

#: What the unbroken Node.js executor leaves unchecked by command, and why.
BY_COMMAND_ONLY = {
    "CONFIG-2": "not_run",  # the contract's defaults need a container: a local command is always given PORT
    "CONC-3": "skipped",  # it refuses a second call (429) rather than queue it: nothing to drop
}


def test_the_node_executor_meets_every_requirement_it_can_be_checked_for(kit_runs: dict[str, KitRun]) -> None:
    run = kit_runs["node-baseline"]
    assert run.results["configuration"]["language"]["name"] == "javascript"
    assert run.results["configuration"]["language"]["missing_snippets"] == []
    unpassed = {rid: outcome for rid, outcome in run.outcomes().items() if outcome != "passed"}
    assert unpassed == BY_COMMAND_ONLY, run.output[-3000:]
    assert run.results["verdict"] == "conformant" and run.returncode == 0


@pytest.mark.parametrize("name", list(NODE_FAULTS))
def test_the_kit_fails_exactly_the_expected_requirements_of_a_broken_node_executor(
    kit_runs: dict[str, KitRun], name: str
) -> None:
    run, baseline = kit_runs[f"node:{name}"], kit_runs["node-baseline"].failed()
    caught = run.failed() - baseline
    assert caught == NODE_FAULTS[name].expected, (
        f"{name}: expected {sorted(NODE_FAULTS[name].expected)}, kit failed {sorted(caught)}"
    )
    if any(catalogue.get(rid).level is Level.MUST for rid in caught):
        assert run.results["verdict"] == "non_conformant" and run.returncode == 1
