"""A view room's visibility rules and its per-tick view payloads (interest management).

The game declares ``Game.interest`` and then steers visibility through ``room.views``: each
client's focus (its player's entity, or a point) and radius, an entity's scope (spatial,
everyone, a team, its owner), and per-client exceptions (``show``/``hide``). Each tick the
room asks ``encode`` for every client's snapshot; the bytes come from core.viewplan, which
shares everything that can be shared.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

from ..core import protocol as p
from ..core.interest import Interest
from ..core.protocol import NO_TICK
from ..core.schema import Schema
from ..core.state import State
from ..core.viewplan import ViewFrame, ViewPlanner
from ..core.viewwire import private_dtype
from ..core.world import World
from .roomstats import RoomStats
from .session import Outgoing, Session
from .viewrules import ViewRules

logger = logging.getLogger(__name__)

FLAG_VIEW = 2  # snapshot flags bit 1: the payload is a view payload (docs/protocol.md 18)

class Views(ViewRules):
    """Implements gamesync.game.ViewsAPI for a room (``ViewRules``), and builds its clients'
    view snapshots."""

    def __init__(self, world: World, schema: Schema, interest: Interest, history: int) -> None:
        super().__init__(world, schema, interest)
        self.grid_schema = schema
        self.planner = ViewPlanner(schema, history)
        self._private = private_dtype(schema, interest.private) if interest.private else None
        # a private row packed by hand (a few per client per tick): slot, then each private field
        fmt = {"<u1": "B", "<u2": "H", "<u4": "I", "<i1": "b", "<i2": "h", "<i4": "i", "|u1": "B", "|i1": "b"}
        priv = [f for f in schema if f.name in interest.private]
        self._row = struct.Struct("<I" + "".join(fmt[f.wire_dtype.str] for f in priv))
        # int32 bit patterns to the wire value: unsigned fields masked, signed ones sign-extended by struct
        self._masks = [(1 << (8 * f.wire_dtype.itemsize)) - 1 if f.wire_dtype.kind == "u" else -1 for f in priv]
        self._real: State | None = None  # the newest state, private fields included
    @classmethod
    def of(cls, world: World, game: Any, history: int) -> Views | None:
        """A room's views when its game declares ``interest``, else None."""
        interest = getattr(game, "interest", None)
        return cls(world, game.schema, interest, history) if interest is not None else None

    # -- the room's side ---------------------------------------------------------------------

    def welcome(self) -> dict[str, Any]:
        return self.grid.to_wire()

    def push(self, state: State) -> None:
        """The tick's new state: every entity's cell, scopes and exceptions applied."""
        cells = self.cells_of(state)
        self._real = state
        if self._private is not None:  # what every client is sent holds 0 in the private fields
            mat = state.mat.copy()
            mat[list(self.grid.private_rows)] = 0
            mat.flags.writeable = False
            state = State(state.tick, state.n, state.alive, state.ids, mat, state.layout)
        self.planner.push(state, cells, self._next_cell)
    def encode(self, live: Sequence[Session], stats: RoomStats) -> list[tuple[Session, Outgoing]]:
        """Every live session's view snapshot of the newest state."""
        out = []
        for s, cells in zip(live, self._all_cells(live), strict=True):
            frame = self.planner.frame(s.view, cells, self._private_rows(s.id, cells))
            head, mid = p.snapshot_parts(frame.tick, frame.base, frame.ref, FLAG_VIEW, frame.payload)
            out.append((s, Outgoing(frame.tick, frame.base, frame.ref, FLAG_VIEW, frame.payload, head, mid, frame)))
            stats.payload_bytes += len(frame.payload)
        stats.payloads_built += len(out)
        return out


    def _private_rows(self, cid: int, cells: list[int]) -> bytes | None:
        """The private fields of the entities ``cid`` owns and holds (None: the room has none)."""
        if self._private is None:
            return None
        book = self._owned.get(cid)
        st = self._real
        if not book or st is None:
            return b""
        where = self.planner.maps[st.tick].cell
        mine = [s for s, eid in sorted(book.items())
                if s < st.n and st.alive[s] and int(st.ids[s]) == eid and int(where[s]) in cells]
        if not mine:
            return b""
        rows = self.grid.private_rows
        mat = st.mat
        return b"".join(self._row.pack(s, *(int(mat[i, s]) & m for i, m in zip(rows, self._masks, strict=True)))
                        for s in mine)



def visible_entities(frame: ViewFrame | None) -> int:
    return frame.entities if frame is not None else 0


__all__ = ["FLAG_VIEW", "NO_TICK", "Views"]
