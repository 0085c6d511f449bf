"""The benchmark: how fast an executor answers, how fast it starts and restarts, what it weighs.

    executor-conformance bench [--image IMG | --url URL | --executor-command CMD] [--out DIR]

Any executor is measured the same way, through the contract's four endpoints only:

- start to ready: from the executor's process or container beginning to run (the kit's Popen, or
  Docker's ``State.StartedAt``: creating a container is Docker's time, not the executor's) to the
  first ``/ready`` true (not for ``--url``);
- ``/execute`` latency of ``1+1``: p50, p95 and p99 over a few hundred calls;
- throughput of back-to-back calls from one client and from several at once;
- ``/restart`` to ready again;
- a 1 MB output: time and bytes per second;
- memory at idle and after 200 calls (the container's, or the process tree's RSS).

Each figure is the median of ``repeats`` runs, with min and max. Before every figure that a
background task could disturb (idle memory, a restart), the kit waits, with a deadline, for the
executor's CPU to go quiet. In the same run, the floor is measured: a bare ``jupyter_client``
driving a default ``ipykernel`` (``bench/floor_kernel.py``), inside a container of the image
under test with the same limits when it can, on the host otherwise. Figures are reported as
ratios to that floor, because absolute times vary from machine to machine.
"""

from __future__ import annotations

from .command import main
from .measure import GOALS, BenchError, BenchSettings
from .report import to_markdown
from .run import run_bench

__all__ = ["GOALS", "BenchError", "BenchSettings", "main", "run_bench", "to_markdown"]
