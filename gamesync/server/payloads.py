"""Each tick's snapshots: every client's baseline chosen, each distinct payload built once."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import protocol as p
from ..core.delta import compress_payload, encode_delta
from ..core.plan import PlanCounts, plan_payloads
from ..core.schema import Schema
from ..core.state import History, State
from .roomstats import RoomStats
from .session import Outgoing, Session


def encode_payloads(schema: Schema, state: State, hist: History, live: Sequence[Session], cap: int,
                    counts: PlanCounts, stats: RoomStats) -> list[tuple[Session, Outgoing]]:
    """(session, its snapshot) for every live session that gets one this tick; a session
    waiting for its turn past the payload cap (``cap`` per tick) gets none, its events wait too."""
    keys = plan_payloads(state.tick, [s.acks for s in live], hist, cap, counts)
    payloads: dict[tuple[int, int], Outgoing] = {}
    plan = []
    for s, key in zip(live, keys, strict=True):
        if key is None:
            continue
        out = payloads.get(key)
        if out is None:
            out = payloads[key] = build_payload(schema, state, hist, key)
            stats.payloads_built += 1
            stats.payload_bytes += len(out.payload)
        plan.append((s, out))
    return plan


def build_payload(schema: Schema, state: State, hist: History, key: tuple[int, int]) -> Outgoing:
    """The snapshot of ``state`` against baseline and reference ``key``, compressed, framed once."""
    base, ref = key
    raw = encode_delta(schema, state, hist.get(base) if base != p.NO_TICK else None,
                       hist.get(ref) if ref != p.NO_TICK else None)
    flags, data = compress_payload(raw)
    head, mid = p.snapshot_parts(state.tick, base, ref, flags, data)
    return Outgoing(state.tick, base, ref, flags, data, head, mid)
