"""Every run of the kit that the kit's tests look at, made once: all at once, or six at a time with the gallery.

A run mostly waits (timeouts, restarts), so the runs share one pool: the reference executor as a
process, the example executor by command and by URL (directly and through the manager), and
every broken executor. Executors reached by URL are started here and stopped afterwards.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.cli import main as kit_command
from tests.conftest import (
    EXAMPLE_EXECUTOR,
    ROOT,
    KitRun,
    RunningExecutor,
    reachable_by_every_user,
    run_kit,
    start_executor,
    start_manager,
    stop_executor,
)
from tests.kit.broken import FAULTS, LOADED, LOADED_TIMEOUT_FACTOR, NODE_FAULTS, VARIANTS

BROKEN = Path(__file__).with_name("broken.py")
ORIGINAL_SHAPE = Path(__file__).with_name("original_shape.py")
#: Broken executors certified under the core profile too (tests/kit/test_profiles.py).
CORE_FAULTS = ("state_lost",)
#: The runs that took longest (60-140 s, measured in a full run on 2 cores), started first: the
#: pool then ends with short runs, not with one long run alone (about 50 s less in all).
LONGEST_RUNS = (
    "server_shares_the_user", "default_timeout_ignored", "crash_noticed_late", "restart_in_background",
    "timeouts_never_fire", "timeout_leaves_busy", "no_crash_recovery", "reference",
)  # fmt: skip
PARALLEL_RUNS = 6
#: For the example and broken executors: a short default timeout and a small memory cap (the
#: memory-exhaustion scenario) keep each run quick.
QUICK = ("--execution-timeout", "1", "--process-memory-limit", "512m")
#: The Node.js executor (JavaScript sessions), and its quick settings. Node reserves more address
#: space than 512 MB at start, so its cap is the kit's default.
NODE_EXECUTOR = ROOT / "examples" / "node_executor" / "server.js"
NODE_QUICK = ("--language", "javascript", "--execution-timeout", "1")
NODE_PROBLEM = None if shutil.which("node") else "no node (apt-get install nodejs)"
#: An executor reached by URL is told how it was started.
BY_URL = ("--workspace-mounted", "--allow-destructive", "--execution-timeout", "1")


def only(ids: frozenset[str]) -> list[str]:
    """Kit arguments that certify only the requirements ``ids``: how a broken executor is certified
    by command (the unbroken baseline is certified whole, so what the fault breaks beyond its IDs
    is not looked for; by image, ``only_the_areas_of`` looks for it in their areas)."""
    return ["--requirement", ",".join(sorted(ids))]


def only_the_areas_of(ids: frozenset[str]) -> list[str]:
    """Kit arguments that certify only the requirement areas of ``ids``: how a broken executor is
    certified (the unbroken baseline is certified whole, so a fault's failures elsewhere in its
    areas still show; a broken executor is judged where its fault can show, at a fraction of a
    whole certification's time)."""
    return ["--requirement", ",".join(sorted({catalogue.get(rid).area for rid in ids}))]


def _example_by_url(log: Path, workspace: Path) -> RunningExecutor:
    env = {"WORKSPACE_FOLDER": str(workspace), "EXECUTION_TIMEOUT": "1"}
    return start_executor(EXAMPLE_EXECUTOR, env, log)


@pytest.fixture(scope="session")
def kit_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KitRun]]:
    """name -> the kit's run: "reference", "baseline", "example-url", "example-via-manager",
    "loaded_machine" (TIMEOUT-1 only), "loaded_machine:siblings" (CODE-5 only), the
    original README's shape under each profile ("original-core", "original-full"), the Node.js
    executor ("node-baseline"); and, when a test of the gallery runs (marker ``gallery``), each
    fault, each valid variant ("variant:NAME"), a few faults under the core profile ("core:FAULT")
    and the broken Node.js executors ("node:FAULT")."""
    gallery = any(item.get_closest_marker("gallery") for item in request.session.items)
    root = reachable_by_every_user(tmp_path_factory.mktemp("kit-runs"))
    workspace = root / "workspace"
    assert kit_command(["workspace", str(workspace)]) == 0
    direct = _example_by_url(root / "example-direct.log", workspace)
    behind = _example_by_url(root / "example-behind-manager.log", workspace)
    manager = start_manager({"0": {"url": behind.base_url, "type": "python"}}, root)
    jobs: dict[str, list[str]] = {
        "reference": [],
        "baseline": ["--command", " ".join(EXAMPLE_EXECUTOR), *QUICK],
        "example-url": ["--url", direct.base_url, *BY_URL],
        "example-via-manager": ["--url", f"{manager.base_url}/session/0", *BY_URL],
        # TIMEOUT-1 on a machine too loaded to judge it (conformance.pace): inconclusive.
        LOADED.name: ["--command", f"{sys.executable} {BROKEN} {LOADED.name}", *QUICK, *only(frozenset({"TIMEOUT-1"}))],
        # CODE-5's second executors start slowly there: past their short wait, within the whole one.
        f"{LOADED.name}:siblings": [
            *("--command", f"{sys.executable} {BROKEN} {LOADED.name}", *QUICK),
            *("--timeout-factor", str(LOADED_TIMEOUT_FACTOR), *only(frozenset({"CODE-5"}))),
        ],
    }
    for name, fault in FAULTS.items() if gallery else ():
        if not fault.by_command:
            continue
        selection = [] if fault.whole else only(fault.expected)
        jobs[name] = ["--command", f"{sys.executable} {BROKEN} {name}", *QUICK, *fault.kit_args, *selection]
    for name, variant in VARIANTS.items() if gallery else ():  # certified whole, as the baseline is
        jobs[f"variant:{name}"] = ["--command", f"{sys.executable} {BROKEN} {name}", *QUICK, *variant.kit_args]
    for name in CORE_FAULTS if gallery else ():
        jobs[f"core:{name}"] = [*jobs[name], "--profile", "core"]
    if NODE_PROBLEM is None:
        jobs["node-baseline"] = ["--command", f"node {NODE_EXECUTOR}", *NODE_QUICK]
        for name, node_fault in NODE_FAULTS.items() if gallery else ():
            jobs[f"node:{name}"] = ["--command", node_fault.command(), *NODE_QUICK, *only(node_fault.expected)]
    for profile in ("core", "full"):
        jobs[f"original-{profile}"] = ["--command", f"{sys.executable} {ORIGINAL_SHAPE}", *QUICK, "--profile", profile]
    try:
        first = [name for name in LONGEST_RUNS if name in jobs]
        order = first + [name for name in jobs if name not in first]
        # Without the gallery, the few whole certifications all run at once.
        with ThreadPoolExecutor(max_workers=PARALLEL_RUNS if gallery else len(jobs)) as pool:
            futures = {name: pool.submit(run_kit, jobs[name], root / name / "results") for name in order}
            runs = {name: future.result() for name, future in futures.items()}
        yield runs
    finally:
        for running in (manager, direct, behind):
            stop_executor(running)
