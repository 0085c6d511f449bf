"""Time bounds judged on the executor's time, not the machine's.

A bound missed once may be the machine's fault (a busy CI runner, a neighbour's run), so a late
answer counts against the executor only when it is *confirmed* on a *quiet* path:

1. **Confirmed**: a second observation is late too. A scenario that can be run again is run
   again (``ExecutorClient.judge_time``'s ``again``); one that cannot (an attack, watched from
   a thread) needs two late observations of its own.
2. **Quiet**: the kit's own path to the executor, the round trip of no-ops while the executor is
   idle (``ExecutorClient.path_delay``: ``GET /health`` and an execute of trivial code, each on a
   connection of its own), measured before and after the confirming observation, stayed within
   ``KitTimeouts.quiet_path``.

Confirmed on a quiet path, the lateness is the executor's: the requirement fails, with both
observations and the path's delay in its message. Confirmed on a loaded path, nobody can say
whose the time was: the requirement is *inconclusive* (``Inconclusive``), never failed and never
passed; a MUST inconclusive leaves the verdict incomplete. Not confirmed, it passes: the first was
the machine's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .violations import Exchange

__all__ = ["Late", "Timing"]

#: How many late observations confirm a lateness.
CONFIRMATIONS = 2


@dataclass(frozen=True)
class Late:
    """One observation past its bound: how long it took, and the exchange that showed it."""

    elapsed: float
    exchange: Exchange | None


@dataclass
class Timing:
    """What one run of a timed scenario saw of one bound: the observations past it."""

    bound: float
    #: What the requirement expects, in the words of a violation's "Expected:".
    expected: str
    late: list[Late] = field(default_factory=list)

    def saw(self, elapsed: float, exchange: Exchange | None = None) -> Timing:
        """Note one observation that took ``elapsed`` seconds; ``self``, to chain."""
        if elapsed > self.bound:
            self.late.append(Late(elapsed, exchange))
        return self

    def saw_answer(self, exchange: Exchange) -> Timing:
        """Note the time ``exchange`` took; one that had no answer in time is late, however long
        the kit waited for it."""
        elapsed = exchange.elapsed
        if exchange.timed_out:
            elapsed = max(elapsed, math.nextafter(self.bound, math.inf))
        return self.saw(elapsed, exchange)

    @property
    def confirmed(self) -> bool:
        """Late often enough, on its own, to need no second run."""
        return len(self.late) >= CONFIRMATIONS

    @property
    def received(self) -> str:
        """The late observations, as a violation's "Received:" says them."""
        took = ", ".join(f"{late.elapsed:.2f} s" for late in self.late[:5])
        more = f" and {len(self.late) - 5} more" if len(self.late) > 5 else ""
        return f"{took}{more} against a bound of {self.bound:.2f} s"
