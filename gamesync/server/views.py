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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..core import protocol as p
from ..core.interest import Grid, Interest
from ..core.protocol import NO_TICK
from ..core.schema import Schema
from ..core.state import State
from ..core.viewplan import ViewFrame, ViewPlanner
from ..core.viewwire import private_dtype
from ..core.world import World
from .roomstats import RoomStats
from .session import Outgoing, Session

logger = logging.getLogger(__name__)

FLAG_VIEW = 2  # snapshot flags bit 1: the payload is a view payload (docs/protocol.md 18)
SCOPES = ("spatial", "everyone", "team", "owner")


@dataclass
class _Solo:
    """An entity with per-client exceptions: its own cell, who sees it regardless, who never does."""

    cell: int
    eid: int
    shown: set[int] = field(default_factory=set)
    hidden: set[int] = field(default_factory=set)


class Views:
    """Implements gamesync.game.ViewsAPI for a room, and builds its clients' view snapshots."""

    def __init__(self, world: World, schema: Schema, interest: Interest, history: int) -> None:
        self.world = world
        self.grid = Grid(schema, interest)
        self.grid_schema = schema
        self.planner = ViewPlanner(schema, history)
        self._focus: dict[int, tuple[int, int] | tuple[float, float]] = {}  # cid -> (slot, id) or (x, y)
        self._point: dict[int, tuple[float, float]] = {}  # cid -> focus given as a point / last known
        self._radius: dict[int, float] = {}
        self._team: dict[int, int] = {}
        self._team_cell: dict[int, int] = {}
        self._owner_cell: dict[int, int] = {}
        self._solo: dict[int, _Solo] = {}  # slot -> its exceptions
        self._scope_cell = np.full(64, -1, dtype=np.int64)
        self._scope_id = np.zeros(64, dtype=np.uint32)
        self._next_cell = self.grid.everyone + 1
        self._natural: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._owned: dict[int, dict[int, int]] = {}  # client id -> {slot: entity id} whose private fields it gets
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

    # -- the game's side (gamesync.game.ViewsAPI) -------------------------------------------

    def focus(self, client_id: int, slot: int | None = None, point: tuple[float, float] | None = None) -> None:
        """Centre ``client_id``'s view on the entity at ``slot`` (it follows it) or on ``point``."""
        if slot is not None:
            self._focus[client_id] = (int(slot), int(self.world.ids[int(slot)]))
        elif point is not None:
            self._focus.pop(client_id, None)
            self._point[client_id] = (float(point[0]), float(point[1]))

    def radius(self, client_id: int, r: float | None = None) -> float:
        """Set (with ``r``) and return ``client_id``'s view radius (default: the game's)."""
        if r is not None:
            if not r > 0:
                raise ValueError("a view radius must be positive")
            self._radius[client_id] = float(r)
        return self._radius.get(client_id, self.grid.interest.radius)

    def team(self, client_id: int, team: int | None) -> None:
        """Put a client in a team (None: in none); it sees the entities scoped to its team."""
        if team is None:
            self._team.pop(client_id, None)
        else:
            self._team[client_id] = int(team)

    def scope(self, slots: ArrayLike, scope: str = "spatial", who: int | None = None) -> None:
        """Who sees the entities at ``slots``: ``spatial`` (clients near them, the default),
        ``everyone``, ``team`` (the clients of team ``who``) or ``owner`` (client ``who`` only)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        idx = np.atleast_1d(np.asarray(slots, dtype=np.intp))
        self._grow(int(idx.max()) + 1 if idx.size else 0)
        cell = -1
        if scope == "everyone":
            cell = self.grid.everyone
        elif scope in ("team", "owner"):
            if who is None:
                raise ValueError(f"scope {scope!r} needs who (a team or a client id)")
            book = self._team_cell if scope == "team" else self._owner_cell
            cell = book.get(who, -1)
            if cell < 0:
                cell = book[who] = self._new_cell()
        self._scope_cell[idx] = cell
        self._scope_id[idx] = self.world.ids[idx]

    def own(self, slots: ArrayLike, client_id: int | None) -> None:
        """``client_id`` (None: no one) receives the private fields of these entities."""
        idx = np.atleast_1d(np.asarray(slots, dtype=np.intp)).tolist()
        for book in self._owned.values():
            for s in idx:
                book.pop(s, None)
        if client_id is not None:
            book = self._owned.setdefault(client_id, {})
            for s in idx:
                book[s] = int(self.world.ids[s])

    def show(self, client_id: int, slots: ArrayLike) -> None:
        """``client_id`` sees these entities wherever they are (until ``unset``)."""
        for s in np.atleast_1d(np.asarray(slots, dtype=np.intp)).tolist():
            solo = self._solo_of(s)
            solo.hidden.discard(client_id)
            solo.shown.add(client_id)

    def hide(self, client_id: int, slots: ArrayLike) -> None:
        """``client_id`` never sees these entities, even near them (until ``unset``)."""
        for s in np.atleast_1d(np.asarray(slots, dtype=np.intp)).tolist():
            solo = self._solo_of(s)
            solo.shown.discard(client_id)
            solo.hidden.add(client_id)

    def unset(self, client_id: int, slots: ArrayLike) -> None:
        """Drop ``client_id``'s show/hide exceptions for these entities."""
        for s in np.atleast_1d(np.asarray(slots, dtype=np.intp)).tolist():
            solo = self._solo.get(s)
            if solo is not None:
                solo.shown.discard(client_id)
                solo.hidden.discard(client_id)

    def forget(self, client_id: int) -> None:
        """A client left: drop its settings."""
        for book in (self._focus, self._point, self._radius, self._team, self._owned):
            book.pop(client_id, None)
        for solo in self._solo.values():
            solo.shown.discard(client_id)
            solo.hidden.discard(client_id)

    def _solo_of(self, slot: int) -> _Solo:
        eid = int(self.world.ids[slot])
        solo = self._solo.get(slot)
        if solo is None or solo.eid != eid:
            solo = self._solo[slot] = _Solo(self._new_cell(), eid)
        return solo

    def _new_cell(self) -> int:
        c = self._next_cell
        self._next_cell += 1
        return c

    def _grow(self, need: int) -> None:
        if need > self._scope_cell.size:
            size = max(need, 2 * self._scope_cell.size)
            self._scope_cell = np.concatenate([self._scope_cell, np.full(size - self._scope_cell.size, -1)])
            self._scope_id = np.concatenate([self._scope_id, np.zeros(size - self._scope_id.size, dtype=np.uint32)])

    # -- the room's side ---------------------------------------------------------------------

    def welcome(self) -> dict[str, Any]:
        return self.grid.to_wire()

    def push(self, state: State) -> None:
        """The tick's new state: every entity's cell, scopes and exceptions applied."""
        cells = self.grid.cells_of(state.mat)
        self._natural = cells.copy()
        n = min(state.n, self._scope_cell.size)
        if n:
            mine = (self._scope_cell[:n] >= 0) & (self._scope_id[:n] == state.ids[:n]) & state.alive[:n]
            cells[:n][mine] = self._scope_cell[:n][mine]
        for s, solo in list(self._solo.items()):
            if s >= state.n or not state.alive[s] or state.ids[s] != solo.eid:
                del self._solo[s]  # the entity is gone
            else:
                cells[s] = solo.cell
        self._real = state
        if self._private is not None:  # what every client is sent holds 0 in the private fields
            mat = state.mat.copy()
            mat[list(self.grid.private_rows)] = 0
            mat.flags.writeable = False
            state = State(state.tick, state.n, state.alive, state.ids, mat, state.layout)
        self.planner.push(state, cells, self._next_cell)

    def cells_for(self, cid: int) -> list[int]:
        """The cells client ``cid`` watches now, ascending."""
        x, y = self._where(cid)
        return self._with_scopes(cid, self.grid.cells_near(x, y, self.radius(cid)))

    def _with_scopes(self, cid: int, near: list[int]) -> list[int]:
        """``near`` (grid cells, ascending) and the scope cells the client watches."""
        extra = [self.grid.everyone]
        team = self._team.get(cid)
        if team is not None and team in self._team_cell:
            extra.append(self._team_cell[team])
        if cid in self._owner_cell:
            extra.append(self._owner_cell[cid])
        if self._solo:
            extra.extend(self._solo_cells(cid, set(near)))
        return near + sorted(set(extra))  # the scope cells' ids all come after the grid's

    def _solo_cells(self, cid: int, near: set[int]) -> list[int]:
        out = []
        for s, solo in self._solo.items():
            if cid in solo.shown or (cid not in solo.hidden and s < self._natural.size
                                     and int(self._natural[s]) in near and self._scope_cell_of(s) < 0):
                out.append(solo.cell)
        return out

    def _scope_cell_of(self, s: int) -> int:
        if s < self._scope_cell.size and self._scope_id[s] == self.world.ids[s]:
            return int(self._scope_cell[s])
        return -1

    def _where(self, cid: int) -> tuple[float, float]:
        f = self._focus.get(cid)
        if f is not None:
            slot, eid = f
            w = self.world
            if int(slot) < w.n and w.alive[int(slot)] and int(w.ids[int(slot)]) == eid:
                fx, fy = self.grid.interest.position
                pt = (float(w[fx][int(slot)]), float(w[fy][int(slot)]))
                self._point[cid] = pt
                return pt
            del self._focus[cid]  # its entity is gone: stay where it was last
        return self._point.get(cid, (self.grid.x0, self.grid.y0))

    def _all_cells(self, live: Sequence[Session]) -> list[list[int]]:
        """Every session's watched cells, computed for all at once; a session whose cells did not
        change gets the very list it watches already (core.viewplan's fast path)."""
        pts = [self._where(s.id) for s in live]
        grid, radius = self.grid, self.grid.interest.radius
        xs = np.array([q[0] for q in pts], dtype=np.float64)
        ys = np.array([q[1] for q in pts], dtype=np.float64)
        rs = np.array([self._radius.get(s.id, radius) for s in live], dtype=np.float64)
        must, may = grid.spans(xs, ys, rs), grid.spans(xs, ys, rs + grid.interest.margin)
        out = []
        for s, a, b in zip(live, must, may, strict=True):
            key = (a.tobytes(), b.tobytes(), self._scope_key(s.id))
            v = s.view
            if key != v.key:
                need = self._with_scopes(s.id, grid.cells_of_span(a))
                held = v.held_set
                if held and held.issuperset(need):  # keep what is still within the margin
                    keep = set(grid.cells_of_span(b)) | set(need)
                    want = v.held if held <= keep else sorted(held & keep)
                else:
                    want = sorted(set(need) | (held & set(grid.cells_of_span(b)))) if held else need
                v.key, v.want = key, want
            out.append(v.want)
        return out

    def _scope_key(self, cid: int) -> Any:
        if not self._solo:  # the scope cells depend only on the client's team and its own cell
            return (self._team_cell.get(self._team.get(cid, -1)), self._owner_cell.get(cid))
        return object()  # per-entity exceptions: a key equal to no other, so recomputed every tick

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
