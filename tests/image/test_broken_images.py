"""The gallery certified by image, under the production limits (256 MB, 0.25 CPU, 1,024 pids): the
setting shortcuts, the kit's former blind spots (#33: ready early at start-up, a teardown by
SIGTERM alone, a teardown that waits) and what only a container shows (#27: no process limit
under a pids limit), caught with their own IDs, and the slowest members, judged within three
minutes.

Each fault is certified in the areas of its expected IDs (``only_the_areas_of``), against the
unbroken image certified whole: the question is whether the container's limits and defaults let
the kit see the fault, and blame no other requirement of its areas. The slowest three run whole:
their whole certification is what is timed.

An executor that ignores a setting and uses the contract's default passed the kit by image while
the kit started containers with the defaults' own values (PORT 8432, WORKSPACE_FOLDER /code) or
values the check could not tell from them. Each such broken executor (``tests/kit/broken.py``,
faults with ``expected_by_image``) runs here in an image built from the second executor's, and
must fail exactly its own requirement beyond what the unbroken second executor fails.

Needs a Docker engine and the second executor's image (``nox -s example_image``); without them
these tests skip, saying so, unless REQUIRE_DOCKER_TESTS=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Set
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.catalogue import Level
from tests.conftest import KitRun, run_kit
from tests.image.docker_env import EXAMPLE_IMAGE, PROBLEM, broken_context, needs
from tests.kit.broken import FAULTS
from tests.kit.conftest import only_the_areas_of

pytestmark = [needs(PROBLEM, "Docker-backed"), pytest.mark.gallery]

BROKEN_IMAGE = "executor-conformance/broken-executor:latest"
BY_IMAGE = {name: fault for name, fault in FAULTS.items() if fault.expected_by_image is not None}
#: The gallery's slowest by image: those that hang (a timeout that never fires, a call that never
#: ends after one) or never become ready (a second executor without a workspace), which a
#: conformant executor never makes the kit wait out (the unbroken one takes about 70 s). The whole
#: gallery by image was measured once: see the README.
SLOWEST = ("timeouts_never_fire", "timeout_leaves_busy", "missing_folder_is_fatal")
#: However broken, an executor is certified within this under the production limits (#17), or
#: within this many times the unbroken one's certification in the same run, whichever is longer:
#: on a slow or busy machine the runs slow down together (CI once took 359 s, three at a time on a
#: slower runner), and the question is what a hang costs, not how fast the machine is.
CERTIFIED_WITHIN_S, CERTIFIED_WITHIN_BASELINES = 180.0, 2.5
#: Runs at once: each is several containers at a quarter of a CPU (the executor, and CODE-5's
#: and CONFIG-2's second executors), on a machine of two cores; a run mostly waits.
PARALLEL_RUNS = 3


def _build_broken_image(context: Path) -> None:
    """The second executor's image, plus the gallery; the fault is chosen by BROKEN_FAULT."""
    subprocess.run(["docker", "build", "-q", "-t", BROKEN_IMAGE, str(broken_context(context))], check=True, timeout=300)


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KitRun]]:
    """name -> the kit's run by image: "baseline" (the unbroken second executor), and each fault."""
    root = tmp_path_factory.mktemp("broken-images")
    _build_broken_image(root / "context")
    # The slowest start first, beside the baseline, so that the runs they are judged against met
    # the same load (in CI the baseline once ran beside two short runs, at 91 s, and a slowest
    # run later beside two others took 364 s).
    jobs = {"baseline": ["--image", EXAMPLE_IMAGE]}
    for name in (*SLOWEST, *BY_IMAGE):
        jobs[name] = ["--image", BROKEN_IMAGE, "--executor-env", f"BROKEN_FAULT={name}"]
        if name not in SLOWEST:
            jobs[name] += only_the_areas_of(BY_IMAGE[name].expected_by_image or frozenset())
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        futures = {name: pool.submit(run_kit, args, root / name / "results") for name, args in jobs.items()}
        yield {name: future.result() for name, future in futures.items()}
    subprocess.run(["docker", "image", "rm", "-f", BROKEN_IMAGE], capture_output=True, check=False)


@pytest.mark.parametrize("name", list(BY_IMAGE))
def test_each_broken_executor_by_image_is_caught_with_its_own_id(image_runs: dict[str, KitRun], name: str) -> None:
    run, baseline = image_runs[name], image_runs["baseline"]
    assert baseline.results["verdict"] in ("conformant", "conformant_with_warnings"), baseline.output[-3000:]
    assert baseline.results["target"]["memory"] == "256m" and baseline.results["target"]["cpus"] == 0.25
    assert baseline.outcomes()["CONFIG-2"] == "passed"  # its defaults are the contract's, with no ENV of its own
    caught: Set[str] = run.failed() - baseline.failed()
    assert caught == BY_IMAGE[name].expected_by_image, (
        f"{name}: expected {sorted(BY_IMAGE[name].expected_by_image or ())}, kit failed {sorted(caught)}\n"
        f"{run.output[-3000:]}"
    )
    musts = {rid for rid in caught if catalogue.get(rid).level is Level.MUST}
    # Certified in its areas only, an executor with no MUST failed there is not judged whole.
    assert run.results["verdict"] in (("non_conformant",) if musts else ("conformant_with_warnings", "incomplete"))


@pytest.mark.parametrize("name", SLOWEST)
def test_the_slowest_broken_executors_are_certified_within_three_minutes_or_a_few_baselines(
    image_runs: dict[str, KitRun], name: str
) -> None:
    """A hang observed once is the evidence for every scenario that needs the same behaviour."""
    run, baseline = image_runs[name], image_runs["baseline"]
    caught = run.failed() - baseline.failed()
    assert FAULTS[name].expected <= caught, f"{name}: kit failed {sorted(caught)}\n{run.output[-3000:]}"
    assert run.results["verdict"] == "non_conformant" and run.returncode == 1
    bound = max(CERTIFIED_WITHIN_S, CERTIFIED_WITHIN_BASELINES * baseline.results["duration_s"])
    assert run.results["duration_s"] < bound, (
        f"{name} took {run.results['duration_s']} s, the baseline {baseline.results['duration_s']} s; "
        f"their slowest tests: {_slowest_tests(run)} and {_slowest_tests(baseline)}"
    )


def _slowest_tests(run: KitRun, count: int = 6) -> list[tuple[str, float]]:
    """Where a run's time went: its slowest tests and their durations."""
    timed = sorted(run.results["tests"], key=lambda test: -(test["duration_s"] or 0.0))[:count]
    return [(test["nodeid"], test["duration_s"]) for test in timed]
