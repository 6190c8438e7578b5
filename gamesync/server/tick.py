"""Fixed-rate tick scheduling on absolute deadlines."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import trio


@dataclass
class TickStats:
    """Counters kept by the scheduler; times in seconds."""

    ticks: int = 0
    overruns: int = 0  # ticks whose work took longer than the period
    skipped: int = 0  # deadlines dropped after a long overrun instead of bursting to catch up
    late: int = 0  # ticks started after their deadline had passed (run at once, not skipped)
    last_s: float = 0.0
    max_s: float = 0.0
    total_s: float = 0.0
    recent: list[float] = field(default_factory=list)

    @property
    def mean_s(self) -> float:
        return self.total_s / self.ticks if self.ticks else 0.0


RECENT_TICKS = 256  # tick durations kept for percentiles


async def run_ticks(rate: float, body: Callable[[int, float], None], stats: TickStats,
                    first_tick: int = 0) -> None:
    """Call ``body(tick, now)`` at ``rate`` Hz forever.

    Deadlines are ``start + k / rate``, so timing never drifts. When a tick overruns, the
    newest deadline it missed is run at once (a tick a little over the period costs a little
    rate, not half of it) and any older ones are skipped (counted in ``stats.skipped``): the
    schedule never runs two ticks for one deadline and never lags by more than one period.
    """
    period = 1.0 / rate
    start = trio.current_time()
    k = 0
    tick = first_tick
    while True:
        deadline = start + k * period
        await trio.sleep_until(deadline)
        t0 = trio.current_time()
        body(tick, t0)
        t1 = trio.current_time()
        took = t1 - t0
        stats.ticks += 1
        stats.last_s = took
        stats.total_s += took
        stats.max_s = max(stats.max_s, took)
        stats.recent.append(took)
        if len(stats.recent) > RECENT_TICKS:
            del stats.recent[: len(stats.recent) - RECENT_TICKS]
        if took > period:
            stats.overruns += 1
        tick += 1
        k += 1
        behind = math.floor((t1 - start) / period) + 1 - k  # deadlines already in the past
        if behind > 0:  # late: the newest missed deadline runs now, the older ones are dropped
            stats.late += 1
            stats.skipped += behind - 1
            k += behind - 1
