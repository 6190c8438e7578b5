"""A room's counters, and the stats entry built from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: the input histograms' bins: 0, 1, 2, 3 and 4 or more inputs per client per tick
INPUT_HIST = 5


@dataclass
class RoomStats:
    """Counters of the room. The per-client ones (bytes, frames, skips, inputs, messages) are
    counted once each, either here or on the session: the native passes add theirs here for
    the whole tick (``native.read_pass``, ``send_pass``), the Python path counts on each
    session, and a session that leaves adds its own here; the live sessions' counts are added
    when reported."""

    bytes_out: int = 0
    frames_out: int = 0
    skipped: int = 0
    inputs_in: int = 0
    messages_in: int = 0
    payloads_built: int = 0
    payload_bytes: int = 0
    joins: int = 0
    leaves: int = 0
    #: client-ticks by the inputs that arrived in the tick's read (0, 1, 2, 3, 4 or more) ...
    inputs_arrived: list[int] = field(default_factory=lambda: [0] * INPUT_HIST)
    #: ... and by the inputs the tick handed the game
    inputs_applied: list[int] = field(default_factory=lambda: [0] * INPUT_HIST)


def room_stats(room: Any) -> dict[str, Any]:
    """Counters of a ``Room`` for monitoring and benchmarks (totals since the room opened)."""
    st, ts = room.stats, room.tick_stats
    live = list(room.sessions.values())
    recent = sorted(ts.recent)
    return {
        "room": room.name,
        "game": room.game_name,
        "tick": room.tick,
        "clients": len(live),
        "entities": room.world.count,
        "ticks": ts.ticks,
        "overruns": ts.overruns,
        "skipped_ticks": ts.skipped,
        "late_ticks": ts.late,
        "tick_ms_mean": ts.mean_s * 1e3,
        "tick_ms_p99": recent[int(0.99 * (len(recent) - 1))] * 1e3 if recent else 0.0,
        "tick_ms_max": ts.max_s * 1e3,
        "bytes_out": st.bytes_out + sum(s.bytes_out for s in live),
        "frames_out": st.frames_out + sum(s.frames_out for s in live),
        "snapshots_skipped": st.skipped + sum(s.skipped for s in live),
        **{f"{k}_ms_mean": v * 1e3 / max(1, ts.ticks) for k, v in room.phase_s.items()},
        "inputs_in": st.inputs_in + sum(s.proto.inputs_in for s in live),
        "messages_in": st.messages_in + sum(s.proto.messages_in for s in live),
        "inputs_arrived_per_tick": list(st.inputs_arrived),
        "inputs_applied_per_tick": list(st.inputs_applied),
        "payloads_built": st.payloads_built,
        "payload_bytes": st.payload_bytes,
        **dataclasses.asdict(room.plan_counts),
        "joins": st.joins,
        "leaves": st.leaves,
        **_view_stats(room),
    }


def _view_stats(room: Any) -> dict[str, Any]:
    """A view room's sharing: chunk sets (one per distinct baseline pair a tick) and cell
    listings built, and the entities its clients hold."""
    views = getattr(room, "views", None)
    if views is None:
        return {}
    live = list(room.sessions.values())
    plan = views.planner
    return {"view_chunk_sets": plan.chunk_sets_built, "view_listings": plan.listings_built,
            "view_cells": views.grid.count,
            "visible_entities_mean": sum(s.view.entities for s in live) / len(live) if live else 0.0}


def add_departed(stats: RoomStats, s: Any) -> None:
    """Keep the counters of a session leaving the room."""
    stats.bytes_out += s.bytes_out
    stats.frames_out += s.frames_out
    stats.skipped += s.skipped
    stats.inputs_in += s.proto.inputs_in
    stats.messages_in += s.proto.messages_in
