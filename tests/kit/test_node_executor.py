"""The Node.js executor (examples/node_executor): a server in another runtime, JavaScript sessions.

Certified with the JavaScript language pack, it must meet every MUST, and the kit must catch each
of its broken modes (tests/kit/broken_node.js) with exactly the expected IDs. The runs are made
in tests/kit/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conformance import catalogue
from conformance.catalogue import Level
from conformance.targets import Workspace
from conformance.targets.process import ProcessTarget
from conformance.timeouts import KitTimeouts
from tests.conftest import KitRun
from tests.image.docker_env import needs
from tests.kit.broken import NODE_FAULTS
from tests.kit.conftest import NODE_EXECUTOR, NODE_PROBLEM

pytestmark = needs(NODE_PROBLEM, "Node.js-backed")

#: Ten user ids for the Node.js executor's workers (its WORKER_UIDS), all but the last held by other
#: servers: a claim starts at a random one, so it meets a held one in nine runs of ten.
FIRST_WORKER_UID = 63000
WORKER_UIDS = 10
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


@pytest.mark.gallery
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


def test_a_worker_user_id_held_by_another_server_is_never_claimed(tmp_path: Path) -> None:
    """Each server holds its worker's user id by an abstract socket named for it: a second server
    never takes an id a live one holds. Lock files, before, could be taken over in the moment
    between one server creating its file and writing its PID in it: two gallery runs then shared
    an id, each sweep killed the other's worker, and a message to the dead worker ended a server."""
    if os.geteuid() != 0:
        pytest.skip("only a server run as root runs its worker as another user id")
    # Held as a server holds it (Node's name of an abstract socket is not Python's byte for byte).
    held = range(FIRST_WORKER_UID, FIRST_WORKER_UID + WORKER_UIDS - 1)
    hold = (
        f"let n = 0; for (const uid of {list(held)}) require('net').createServer()"
        f".listen({{path: `\\0node-executor-uid-${{uid}}`}}, () => ++n === {len(held)} && console.log('held'))"
    )
    holder = subprocess.Popen(["node", "-e", hold], stdout=subprocess.PIPE, text=True)
    uids = {"WORKER_UIDS": f"{FIRST_WORKER_UID}-{FIRST_WORKER_UID + WORKER_UIDS - 1}"}
    target = ProcessTarget(KitTimeouts(), command=["node", str(NODE_EXECUTOR)], workspace=Workspace.MISSING, env=uids)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        target.start()
        answer = httpx.post(f"{target.base_url}/execute", json={"code": "process.geteuid()"}, timeout=10).json()
        uid = int(answer["outputs"][0]["text"])
        assert uid == FIRST_WORKER_UID + WORKER_UIDS - 1, answer
    finally:
        target.stop()
        holder.kill()
        holder.wait(timeout=10)


def test_the_worker_not_the_server_is_what_the_oom_killer_takes() -> None:
    """CRASH-3 failed on the Node.js image in CI, certified beside two others: a memory bomb in a
    256 MiB container had the kernel's OOM killer end the server (the connection dropped in 0.7 s),
    whose score was the worker's. The worker raises its own score to the most (as the reference's
    kernels do), so that under any pressure the OOM killer takes user code, never the server."""
    target = ProcessTarget(KitTimeouts(), command=["node", str(NODE_EXECUTOR)], workspace=Workspace.MISSING)
    try:
        target.start()
        code = "require('fs').readFileSync('/proc/self/oom_score_adj', 'utf8').trim()"
        answer = httpx.post(f"{target.base_url}/execute", json={"code": code}, timeout=10).json()
        assert answer["status"] == "ok" and answer["outputs"][0]["text"].strip("'\"\n") == "1000", answer
        server = Path(f"/proc/{target.capabilities.signal_scope}/oom_score_adj").read_text().strip()
        assert server != "1000"
    finally:
        target.stop()
