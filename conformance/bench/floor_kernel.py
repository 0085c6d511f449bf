"""The floor of the benchmark: a bare ``jupyter_client`` driving a default ``ipykernel``.

Run as a script (``python floor.py --repeats 3 --calls 300``), on the host or inside a container
of the image under test, so that the floor runs under the same limits as the executor. It
needs nothing but the standard library, ``jupyter_client`` and ``ipykernel``, and prints one
JSON object: kernel start times, ``1+1`` round-trip times and restart times, in seconds.

Everything is left at its default (kernel spec ``python3``, TCP transport, history on): this is
what anyone gets from the Jupyter stack without tuning, the figure an executor is compared to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

#: One kernel start or restart must not take longer than this (seconds).
KERNEL_READY_TIMEOUT = 120.0
#: One ``1+1`` round trip must not take longer than this (seconds).
ROUND_TRIP_TIMEOUT = 30.0


def _start() -> tuple[Any, Any]:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its warnings are not figures
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
    return km, kc


def _round_trip(kc: Any) -> float:
    started = time.perf_counter()
    reply = kc.execute_interactive("1+1", timeout=ROUND_TRIP_TIMEOUT, output_hook=lambda msg: None)
    elapsed = time.perf_counter() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"1+1 failed in the floor kernel: {reply['content']}")
    return elapsed


def measure(repeats: int, calls: int, warmup: int) -> dict[str, object]:
    import ipykernel
    import jupyter_client

    starts: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        km, kc = _start()
        starts.append(time.perf_counter() - started)
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    km, kc = _start()
    try:
        for _ in range(warmup):
            _round_trip(kc)
        round_trips = [[_round_trip(kc) for _ in range(calls)] for _ in range(repeats)]
        restarts: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            km.restart_kernel(now=True)
            kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
            restarts.append(time.perf_counter() - started)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "start_s": starts,
        "round_trip_s": round_trips,
        "restart_s": restarts,
        "versions": {
            "python": sys.version.split()[0],
            "jupyter_client": jupyter_client.__version__,  # type: ignore[attr-defined]
            "ipykernel": ipykernel.__version__,  # type: ignore[attr-defined]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    json.dump(measure(args.repeats, args.calls, args.warmup), sys.stdout)


if __name__ == "__main__":
    main()
