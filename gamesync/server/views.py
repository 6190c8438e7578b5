"""A view room's visibility rules and its per-tick view payloads (interest management).

The game declares ``Game.interest`` and then steers visibility through ``room.views``: each
client's focus (its player's entity, or a point) and radius, an entity's scope (spatial,
everyone, a team, its owner), and per-client exceptions (``show``/``hide``). Each tick the
room asks ``encode`` for every client's snapshot; the bytes come from core.viewplan, which
shares everything that can be shared.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core import protocol as p
from ..core.interest import Interest
from ..core.schema import Schema
from ..core.state import State
from ..core.viewplan import ViewPlanner
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
        cells = self._all_cells(live)
        private = None
        if self._private is not None:
            owned = self._owned_rows()
            private = []
            for s, cs in zip(live, cells, strict=True):
                mine = owned.get(s.id)
                if not mine:
                    private.append(b"")
                    continue
                have = s.view.held_set if cs is s.view.held else set(cs)
                private.append(b"".join([row for cell, row in mine if cell in have]))
        frames = self.planner.frames([s.view for s in live], cells, private)
        out = []
        parts, nbytes = p.snapshot_parts, 0
        for s, frame in zip(live, frames, strict=True):
            head, mid = parts(frame.tick, frame.base, frame.ref, FLAG_VIEW, frame.payload)
            out.append((s, Outgoing(frame.tick, frame.base, frame.ref, FLAG_VIEW, frame.payload, head, mid, frame)))
            nbytes += len(frame.payload)
        stats.payload_bytes += nbytes
        stats.payloads_built += len(out)
        return out

    def _owned_rows(self) -> dict[int, list[tuple[int, bytes]]]:
        """Per client, (cell, private row) of each live entity it owns, ascending slots; one
        vectorised pass for everyone."""
        st = self._real
        if st is None or self._private is None or not self._owned:
            return {}
        cids, slots, eids = [], [], []
        for cid, book in self._owned.items():
            for slot, eid in sorted(book.items()):
                cids.append(cid)
                slots.append(slot)
                eids.append(eid)
        sl = np.asarray(slots, dtype=np.intp)
        at = np.minimum(sl, max(st.n - 1, 0))
        ok = (sl < st.n) & st.alive[at] & (st.ids[at] == np.asarray(eids, dtype=np.uint32))
        rec = np.zeros(sl.size, dtype=self._private)
        rec["slot"] = sl
        for i in self.grid.private_rows:
            f = self.grid_schema.fields[i]
            rec["v_" + f.name] = st.mat[i, at].astype(f.wire_dtype)
        raw = rec.tobytes()
        size = self._private.itemsize
        where = self.planner.maps[st.tick].cell[at].tolist()
        out: dict[int, list[tuple[int, bytes]]] = {}
        for j, (cid, good) in enumerate(zip(cids, ok.tolist(), strict=True)):
            if good:
                out.setdefault(cid, []).append((where[j], raw[j * size:(j + 1) * size]))
        return out


__all__ = ["FLAG_VIEW", "Views"]
