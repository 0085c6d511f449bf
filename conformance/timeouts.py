"""Every wait of the kit, and the contract's time bounds, in one documented object.

Waits are deadlines, not sleeps: the kit polls with ``poll_interval`` until a condition holds
or the deadline passes, then fails with what it last saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["KitTimeouts"]


@dataclass(frozen=True)
class KitTimeouts:
    """Seconds. The contract's bounds are fixed by the contract; the rest are the kit's own."""

    # -- bounds set by the contract --------------------------------------------------------
    #: HEALTH-2: /health answers within this, even while code runs.
    health: float = 1.0
    #: TIMEOUT-1: a timed-out execute answers within its timeout plus this.
    timeout_slack: float = 5.0
    #: CRASH-1: a call whose environment died answers within this.
    crash_answer: float = 10.0
    #: TIMEOUT-3: "promptly": the execute after a timeout answers within this.
    prompt: float = 5.0
    #: INPUT-6: a connection that stopped sending its request is closed within this.
    slow_client: float = 30.0
    #: ISO-1: a process killed by a restart has this long, after /restart answered, to be gone.
    process_exit: float = 1.0
    #: ISO-5: after an attack by signals, /restart and /ready true within this, or three times
    #: what a restart took before the attack, whichever is longer.
    restart_after_attack: float = 15.0

    # -- the kit's own waits ---------------------------------------------------------------
    #: Judging a time bound (``conformance.pace``): a no-op round trip (GET /health, trivial code)
    #: past this means the machine is too loaded to say whose a late answer was (inconclusive).
    quiet_path: float = 0.25
    #: Past a contract bound, how much longer the kit waits for an answer before it records that
    #: none came (a hang: evidence for every later scenario that needs the same behaviour). Long
    #: enough that an answer that is only late (a restart after a missed deadline, say) still
    #: comes back and is judged as late, leaving the other scenarios to be judged on their own.
    grace: float = 10.0
    #: From starting a container or process to /ready true.
    startup: float = 120.0
    #: A second executor of the same image or command (CODE-5's, CONFIG-2's) has this many times
    #: what the first took to become ready, and at least ``sibling_startup_min`` (at most ``startup``):
    #: one that never becomes ready is judged in seconds, not in the full start-up wait.
    sibling_startup_factor: float = 3.0
    sibling_startup_min: float = 30.0
    #: For /ready to turn true again after a restart, a crash or a timeout.
    ready: float = 60.0
    #: READY-4: after /ready said true, how long the kit watches for a workspace that had not loaded
    #: yet to load after all (which shows that readiness came too early).
    late_loading: float = 10.0
    #: One ordinary HTTP request (not an execute with a long timeout).
    request: float = 30.0
    #: INPUT-7: how long one never-ending request head is sent for, at most.
    head_flood: float = 20.0
    #: Between two polls of a condition.
    poll_interval: float = 0.05
    #: While an attack goes on, between two looks at /health (each must answer within ``health``).
    health_watch: float = 0.2
    #: During a long wait (an executor starting), how often the kit says how long it has waited.
    progress_every: float = 10.0
    #: How long the kit keeps an idle connection open for reuse: shorter than the idle timeouts of
    #: servers (uvicorn's and the second executor's are 5 s), so that it seldom reuses one the
    #: server is closing.
    keepalive: float = 2.0
    #: A pool: how long user code waits for each connection it tries (all at once; a dropped packet
    #: never answers), and for an HTTP answer from its own executor.
    reach: float = 2.0
    #: A pool: how long the kit keeps sending calls on an allocation being deallocated (POOL-7),
    #: after the next user was handed the executor.
    handover_race: float = 1.0
    #: A pool: a lease longer than this is not waited out (POOL-8 is then not run).
    longest_lease: float = 30.0
    #: Benchmark: for the executor's CPU to go quiet (a background kernel start, say) before a measure.
    settle: float = 30.0
    #: Benchmark: the window over which "quiet" is judged (under 5% of one core).
    settle_window: float = 0.5

    def scaled(self, factor: float) -> KitTimeouts:
        """The kit's own waits multiplied by ``factor`` (for slow machines); contract bounds stay."""
        if factor <= 0:
            raise ValueError(f"timeout factor must be positive, got {factor}")
        return replace(
            self,
            startup=self.startup * factor,
            sibling_startup_min=self.sibling_startup_min * factor,
            ready=self.ready * factor,
            request=self.request * factor,
        )

    def sibling_startup(self, first: float | None) -> float:
        """How long a second executor like the first may take to become ready (``first``: what
        the first took, None if unknown)."""
        if first is None:
            return self.startup
        return min(self.startup, max(self.sibling_startup_min, first * self.sibling_startup_factor))
