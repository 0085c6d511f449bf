"""The benchmark, run for real on small settings: against the reference and the example executor.

Figures are not asserted against times (that would be a timed unit test); what is checked is
that every figure is measured and consistent, that the floor ran, and that any executor is
measured the same way: one without Jupyter, started by the kit or reached by URL. (The image's
bench is in tests/image.) Of the reference executor's goals, only those that are stable
on a noisy machine are asserted, with room to spare: restart (a swap, whatever the machine) and
idle memory (not a time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    EXAMPLE_EXECUTOR,
    assert_measured_in_every_run,
    assert_stable_goals_hold,
    reachable_by_every_user,
    run_bench,
    start_executor,
    stop_executor,
)


@pytest.fixture(scope="module")
def reference_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return run_bench([], tmp_path_factory.mktemp("bench-reference"))


def test_every_figure_is_measured_with_median_min_and_max(reference_bench: tuple[dict[str, Any], str]) -> None:
    bench, _ = reference_bench
    figures = bench["figures"]
    for name in ("start_to_ready_s", "restart_to_ready_s", "output_1mb_s", "throughput_1_client"):
        assert_measured_in_every_run(figures[name], name)
    p50, p95, p99 = (figures["execute_ms"][key]["median"] for key in ("p50", "p95", "p99"))
    assert 0 < p50 <= p95 <= p99
    assert figures["throughput_3_clients"]["median"] > 0
    assert 20 < figures["memory_idle_mb"] < 2000 and 20 < figures["memory_after_calls_mb"] < 2000
    assert bench["machine"]["cpus"] and bench["versions"]["executor-conformance"]


def test_the_floor_runs_in_the_same_run_and_figures_become_ratios(reference_bench: tuple[dict[str, Any], str]) -> None:
    bench, table = reference_bench
    floor = bench["floor"]
    assert floor["where"] == "host" and floor["round_trip_ms"]["p50"]["median"] > 0
    expected = bench["figures"]["execute_ms"]["p50"]["median"] / floor["round_trip_ms"]["p50"]["median"]
    assert bench["ratios"]["execute_p50"] == pytest.approx(expected)
    assert {goal["figure"] for goal in bench["goals"]} >= {"ratio.execute_p50", "memory_idle_mb"}
    assert all(goal["met"] in (True, False) for goal in bench["goals"])
    assert "| /execute 1+1 p50 (ms) |" in table and "x |" in table


def test_the_stable_goals_hold_with_room_to_spare(reference_bench: tuple[dict[str, Any], str]) -> None:
    assert_stable_goals_hold(reference_bench[0])


def test_an_executor_without_jupyter_is_measured_the_same_way(tmp_path: Path) -> None:
    bench, _ = run_bench(["--executor-command", " ".join(EXAMPLE_EXECUTOR), "--no-floor"], tmp_path)
    assert bench["floor"] is None and bench["ratios"] == {}
    assert bench["figures"]["execute_ms"]["p50"]["median"] > 0
    assert bench["figures"]["restart_to_ready_s"]["median"] > 0
    # It refuses a second concurrent call (429): the throughput clients are asked again, and counted.
    assert bench["figures"]["busy_answers"] > 0


def test_an_executor_reached_by_url_is_measured_and_compared_where_the_kit_can(tmp_path: Path) -> None:
    """By URL the kit neither started the executor nor sees its processes: no start, no memory, and it says so."""
    workspace = reachable_by_every_user(tmp_path)
    running = start_executor(EXAMPLE_EXECUTOR, {"WORKSPACE_FOLDER": str(workspace)}, tmp_path / "example.log")
    try:
        bench, table = run_bench(["--url", running.base_url], tmp_path / "bench")
        assert running.process.poll() is None, "the bench must leave an executor it did not start running"
        assert running.execute("1+1")["status"] == "ok"
    finally:
        stop_executor(running)
    assert bench["subject"]["kind"] == "url" and bench["subject"]["base_url"] == running.base_url
    figures = bench["figures"]
    assert figures["start_to_ready_s"] is None and figures["memory_idle_mb"] is None and bench["memory_source"] is None
    assert figures["execute_ms"]["p50"]["median"] > 0 and figures["throughput_3_clients"]["median"] > 0
    assert_measured_in_every_run(figures["restart_to_ready_s"], "restart_to_ready_s")
    assert figures["output_1mb_s"]["median"] > 0
    assert any("start to ready is not measured" in note for note in bench["notes"])
    assert any("memory is not measured" in note for note in bench["notes"])
    assert bench["floor"]["where"] == "host"
    assert bench["ratios"]["start_to_ready"] is None and bench["ratios"]["execute_p50"] > 0
    assert bench["ratios"]["restart_to_ready"] > 0
    assert "| start to ready (s) | n/a |" in table and "| memory at idle (MB) | n/a |" in table
