"""Which payload each client of a room gets this tick: the room's snapshot policy, sans I/O.

Each client's ``AckTracker`` picks its (baseline, reference); a room builds every distinct
pair once and sends the same bytes to every client that shares it. Because clients choose
their pairs through their acks, the number of distinct pairs is theirs to choose too, so a
room builds at most ``cap`` a tick (plus the full snapshot), the pairs most clients want
first. A client whose pair did not make it rides the newest chosen pair it can decode; with
none, it waits up to ``CAP_WAIT_TICKS`` ticks for its turn (ties go to whoever is first in a
line that turns every tick) and only then gets the full snapshot, which is shared by
everyone who gets it but costs about ten times a delta's bytes.
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
    no snapshot this tick). At most ``cap`` distinct pairs, plus the full snapshot.

    The pairs most clients want are built first (everyone keeping up wants the same one),
    ties going to whoever is first in line this tick (the line turns every tick)."""
    counts = counts if counts is not None else PlanCounts()
    n = len(clients)
    floors = [a.base for a in clients]
    wanted = [a.choose(tick, history) for a in clients]
    full = (NO_TICK, NO_TICK)
    chosen: set[Key] = set(wanted)
    chosen.discard(full)
    newest_first: list[Key] = []  # the chosen pairs a client past the cap may ride, newest first
    if len(chosen) > cap:
        start = tick % n
        score: dict[Key, tuple[int, int]] = {}  # pair -> (clients wanting it, -first place in line)
        for j in range(n):
            k = wanted[(start + j) % n]
            c = score.get(k)
            score[k] = (c[0] + 1, c[1]) if c is not None else (1, -j)
        score.pop(full, None)
        chosen = set(sorted(score, key=score.__getitem__, reverse=True)[:cap])
        newest_first = sorted(chosen, reverse=True)
    if not newest_first:  # within the cap: every client gets the pair it chose
        for a in clients:
            if a.waits:
                a.waits = 0
        counts.full_snapshots += wanted.count(full)
        return list(wanted)
    return _past_cap(clients, wanted, floors, chosen, newest_first, counts)


def _past_cap(clients: Sequence[AckTracker], wanted: list[Key], floors: list[int], chosen: set[Key],
              newest_first: list[Key], counts: PlanCounts) -> list[Key | None]:
    """``plan_payloads`` over the cap: a client whose pair was not chosen rides the newest
    chosen pair it can decode, waits for its turn, or after waiting gets the full snapshot."""
    full = (NO_TICK, NO_TICK)
    keys: list[Key | None] = list(wanted)
    for i, acks in enumerate(clients):
        key = wanted[i]
        if key != full and key not in chosen:
            floor = floors[i]
            fit = next((k for k in newest_first if acks.usable(k, floor)), None)
            if fit is not None:
                key = acks.settle(fit)
                counts.cap_rides += 1
            elif acks.waits < CAP_WAIT_TICKS:
                acks.waits += 1  # nothing is sent: its baseline stays where it was
                acks.base = floor
                counts.cap_waits += 1
                keys[i] = None
                continue
            else:
                key = acks.restart()
                counts.cap_fulls += 1
            keys[i] = key
        acks.waits = 0
        if key == full:
            counts.full_snapshots += 1
    return keys
