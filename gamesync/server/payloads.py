"""Each tick's snapshots: every client's baseline chosen, each distinct payload built once."""

from __future__ import annotations

from collections.abc import Iterable

from .. import native
from ..core import protocol as p
from ..core.delta import compress_payload, encode_delta
from ..core.plan import PlanCounts, plan_payloads
from ..core.schema import Schema
from ..core.state import History, State
from ..native import packing
from .roomstats import RoomStats
from .session import Outgoing, Session


def encode_payloads(schema: Schema, state: State, hist: History, sessions: Iterable[Session], cap: int,
                    counts: PlanCounts, stats: RoomStats) -> list[tuple[Session, Outgoing]]:
    """(session, its snapshot) for every live session (not closing) of ``sessions`` that gets
    one this tick; a session waiting for its turn past the payload cap (``cap`` per tick) gets
    none, its events wait too. On the native path ``native.plan_pass`` plans the usual tick."""
    payloads: dict[tuple[int, int], Outgoing] = {}

    def build(key: tuple[int, int]) -> Outgoing:
        out = payloads[key] = build_payload(schema, state, hist, key)
        stats.payloads_built += 1
        stats.payload_bytes += len(out.payload)
        return out

    if native.active():
        done = native.plan_pass(sessions, state.tick, hist, cap, build)
        if done is not None:
            counts.full_snapshots += done[1]
            return done[0]
    live = [s for s in sessions if not s.proto.closing]
    keys = plan_payloads(state.tick, [s.acks for s in live], hist, cap, counts)
    plan = []
    for s, key in zip(live, keys, strict=True):
        if key is None:
            continue
        out = payloads.get(key)
        plan.append((s, out if out is not None else build(key)))
    return plan


def build_payload(schema: Schema, state: State, hist: History, key: tuple[int, int]) -> Outgoing:
    """The snapshot of ``state`` against baseline and reference ``key``, compressed, framed once."""
    base, ref = key
    raw = encode_delta(schema, state, hist.get(base) if base != p.NO_TICK else None,
                       hist.get(ref) if ref != p.NO_TICK else None, packing.encode_rows)
    flags, data = compress_payload(raw)
    head, mid = p.snapshot_parts(state.tick, base, ref, flags, data)
    return Outgoing(state.tick, base, ref, flags, data, head, mid)
