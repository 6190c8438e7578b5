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

import msgpack
import numpy as np
from numpy.typing import NDArray

from ..core import protocol as p
from ..core.interest import Interest
from ..core.schema import Schema
from ..core.state import State
from ..core.viewplan import ViewPlanner
from ..core.viewwire import bin_head, private_dtype
from ..core.world import World
from ..native import packing
from .roomstats import RoomStats
from .session import Outgoing, Session
from .viewrules import ViewRules

logger = logging.getLogger(__name__)

FLAG_VIEW = 2  # snapshot flags bit 1: the payload is a view payload (docs/protocol.md 18)
MID_FLAGS = msgpack.packb(FLAG_VIEW)

class Views(ViewRules):
    """Implements gamesync.game.ViewsAPI for a room (``ViewRules``), and builds its clients'
    view snapshots."""

    def __init__(self, world: World, schema: Schema, interest: Interest, history: int) -> None:
        super().__init__(world, schema, interest)
        self.grid_schema = schema
        self.planner = ViewPlanner(schema, history, packing.pack_lists, packing.chunk_writer)
        self._private = private_dtype(schema, interest.private) if interest.private else None
        #: per client, (cell, private row) of each entity it owns at the newest state
        self._owned_now: dict[int, list[tuple[int, bytes]]] = {}
        #: ``_owned`` flattened (client ids, slots, entity ids), and the ``_owned_gen`` it is of
        self._owned_flat: tuple[int, list[int], NDArray[np.intp], NDArray[np.uint32]] | None = None
    @classmethod
    def of(cls, world: World, game: Any, history: int) -> Views | None:
        """A room's views when its game declares ``interest``, else None."""
        interest = getattr(game, "interest", None)
        return cls(world, game.schema, interest, history) if interest is not None else None

    # -- the room's side ---------------------------------------------------------------------

    def welcome(self) -> dict[str, Any]:
        return self.grid.to_wire()

    @property
    def blank_rows(self) -> tuple[int, ...]:
        """State rows a view room's captures may leave at 0 (``State.capture(blank=...)``): the
        private fields, which ``push`` takes from the world for their owners alone."""
        return self.grid.private_rows

    def push(self, state: State) -> None:
        """The tick's new state, just captured from the world: every entity's cell, scopes and
        exceptions applied; the owners' private values read from the world."""
        cells = self.cells_of(state)
        rows = list(self.grid.private_rows)
        if rows and state.mat[rows].any():  # what every client is sent holds 0 in the private fields
            mat = state.mat.copy()
            mat[rows] = 0
            mat.flags.writeable = False
            state = State(state.tick, state.n, state.alive, state.ids, mat, state.layout)
        self.planner.push(state, cells, self._next_cell)
        self._owned_now = self._owned_rows(state) if self._private is not None else {}

    def encode(self, live: Sequence[Session], stats: RoomStats) -> list[tuple[Session, Outgoing]]:
        """Every live session's view snapshot of the newest state."""
        cells = self._all_cells(live)
        private = None
        if self._private is not None:
            owned = self._owned_now
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
        heads: dict[tuple[int, int], bytes] = {}  # every client of one (base, ref) shares its head
        flag, nbytes = MID_FLAGS, 0
        for s, frame in zip(live, frames, strict=True):
            tick, base, ref, payload = frame.tick, frame.base, frame.ref, frame.payload
            head = heads.get((base, ref))
            if head is None:
                head = heads[base, ref] = p.snapshot_parts(tick, base, ref, FLAG_VIEW, b"")[0]
            mid = b"".join((flag, bin_head(len(payload)), payload))  # protocol.snapshot_parts' mid
            out.append((s, Outgoing(tick, base, ref, FLAG_VIEW, payload, head, mid, frame)))
            nbytes += len(payload)
        stats.payload_bytes += nbytes
        stats.payloads_built += len(out)
        return out

    def _owned_rows(self, st: State) -> dict[int, list[tuple[int, bytes]]]:
        """Per client, (cell, private row) of each live entity it owns, ascending slots; one
        vectorised pass for everyone, its values quantised from the world (``st`` was just
        captured from it)."""
        if self._private is None or not self._owned:
            return {}
        if self._owned_flat is None or self._owned_flat[0] != self._owned_gen:  # ownership changed
            cids, slots, eids = [], [], []
            for cid, book in self._owned.items():
                for slot, e in sorted(book.items()):
                    cids.append(cid)
                    slots.append(slot)
                    eids.append(e)
            self._owned_flat = (self._owned_gen, cids, np.asarray(slots, dtype=np.intp),
                                np.asarray(eids, dtype=np.uint32))
        _, cids, sl, eid = self._owned_flat
        at = np.minimum(sl, max(st.n - 1, 0))
        ok = (sl < st.n) & st.alive[at] & (st.ids[at] == eid)
        rec = np.zeros(sl.size, dtype=self._private)
        rec["slot"] = sl
        for i in self.grid.private_rows:
            f = self.grid_schema.fields[i]
            rec["v_" + f.name] = f.quantise(self.world.columns[f.name][at])
        raw = rec.tobytes()
        size = self._private.itemsize
        where = self.planner.maps[st.tick].cell[at].tolist()
        out: dict[int, list[tuple[int, bytes]]] = {}
        for j, (cid, good) in enumerate(zip(cids, ok.tolist(), strict=True)):
            if good:
                out.setdefault(cid, []).append((where[j], raw[j * size:(j + 1) * size]))
        return out


__all__ = ["FLAG_VIEW", "Views"]
