"""Which payload each client of a room gets this tick: the room's snapshot policy, sans I/O.

Each client's ``AckTracker`` picks its (baseline, reference); a room builds every distinct
pair once and sends the same bytes to every client that shares it. Because clients choose
their pairs through their acks, the number of distinct pairs is theirs to choose too, so a
room builds at most ``cap`` a tick. Past the cap a client rides the newest pair already
chosen that it can decode; with none, it waits up to ``CAP_WAIT_TICKS`` ticks for its turn
(clients take turns at coming first) and only then gets the full snapshot, which is shared
by everyone who gets it but costs about ten times a delta's bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .acks import AckTracker, _Ticks
from .protocol import NO_TICK

#: ticks in a row a client past the cap with no pair it can decode waits for its turn
#: before it gets the full snapshot
CAP_WAIT_TICKS = 2

Key = tuple[int, int]  # (baseline tick, reference tick); (NO_TICK, NO_TICK) is a full snapshot


@dataclass
class PlanCounts:
    """Totals over the ticks planned, for stats."""

    full_snapshots: int = 0  # joins, resyncs, and clients past the cap with no fit
    cap_rides: int = 0  # past the cap, on an older pair the client could decode
    cap_waits: int = 0  # past the cap, no snapshot this tick
    cap_fulls: int = 0  # past the cap after waiting: the full snapshot


def plan_payloads(tick: int, clients: Sequence[AckTracker], history: _Ticks, cap: int,
                  counts: PlanCounts | None = None) -> list[Key | None]:
    """The pair each client's tick-``tick`` snapshot is built on, in the order given (None:
    no snapshot this tick). At most ``cap`` distinct pairs, plus the full snapshot."""
    counts = counts if counts is not None else PlanCounts()
    n = len(clients)
    keys: list[Key | None] = [None] * n
    chosen: set[Key] = set()
    start = tick % n if n > cap else 0  # who comes first gets its own pair: take turns
    for j in range(n):
        i = (start + j) % n
        acks = clients[i]
        floor = acks.base
        key = acks.choose(tick, history)
        if key not in chosen and len(chosen) >= cap:
            fits = [k for k in chosen if acks.usable(k, floor)]
            if fits:
                key = acks.settle(max(fits))
                counts.cap_rides += 1
            elif acks.waits < CAP_WAIT_TICKS and acks.acked != NO_TICK:
                acks.waits += 1  # skipping is safe: the next snapshot is built on what it acked
                counts.cap_waits += 1
                continue
            else:
                key = acks.restart()
                counts.cap_fulls += 1
        acks.waits = 0
        if key[0] == NO_TICK:
            counts.full_snapshots += 1
        chosen.add(key)
        keys[i] = key
    return keys
