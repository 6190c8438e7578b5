"""Who sees what in a view room (interest management): the rules a game sets through
``room.views``, and the cells each client watches because of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..core.interest import Grid, Interest
from ..core.schema import Schema
from ..core.state import State
from ..core.viewplan import ClientView
from ..core.world import World
from .session import Session

SCOPES = ("spatial", "everyone", "team", "owner")


@dataclass
class _Solo:
    """An entity with per-client exceptions: its own cell, who sees it regardless, who never does."""

    cell: int
    eid: int
    shown: set[int] = field(default_factory=set)
    hidden: set[int] = field(default_factory=set)

PLAIN_KEY = (None, None)  # the scope key of a client with no team and no owner cell, when no entity has exceptions


def want_one(v: ClientView, need: list[int], may: list[int]) -> None:
    """Set ``v.want``: the cells a client should watch, given the cells it must watch (``need``,
    ascending) and those within the margin (``may``): all of ``need``, and what it holds of
    ``may`` (a cell is kept until it leaves the margin). ``v.want`` is ``v.held`` itself when
    that is unchanged (core.viewplan's fast path)."""
    held = v.held_set
    if held and held.issuperset(need):  # keep what is still within the margin
        keep = set(may) | set(need)
        want = v.held if held <= keep else sorted(held & keep)
    else:
        want = sorted(set(need) | (held & set(may))) if held else need
    v.want = v.held if want == v.held else want


def plain_wants(grid: Grid, views: list[ClientView], must: NDArray[np.int64], may: NDArray[np.int64]) -> None:
    """``want_one`` for many clients of a room without scope cells but "everyone" (their ``need``
    is their ``must`` spans' cells and the everyone cell), in a few array passes: the cells
    to watch are ``must | (held & may)``, which is the held list itself in the usual case."""
    width = grid.everyone + 1
    for v in views:
        if v.held and v.held[-1] >= width:  # a scope cell left over from before: wider rows
            width = v.held[-1] + 1
    need = grid.masks(must, width)
    wide = grid.masks(may, width) | need
    held = np.zeros((len(views), width), dtype=bool)
    lens = [v.held_arr.size for v in views]
    if sum(lens):
        held[np.repeat(np.arange(len(views)), lens), np.concatenate([v.held_arr for v in views])] = True
    want = need | (held & wide)
    changed: list[int] = np.count_nonzero(want != held, axis=1).tolist()
    for v, moved, row in zip(views, changed, want, strict=True):
        v.key = PLAIN_KEY
        v.want = np.flatnonzero(row).tolist() if moved or not v.held else v.held


class ViewRules:
    """Who sees what in a view room: the game's side of gamesync.game.ViewsAPI (focus, radius,
    teams, scopes, private fields' owners, per-client exceptions), and the cells each client
    watches, from them."""

    def __init__(self, world: World, schema: Schema, interest: Interest) -> None:
        self.world = world
        self.grid = Grid(schema, interest)
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
        self._owned_gen = 0  # counts the changes to ``_owned``
        #: the sessions of the last ``_all_cells`` and their views' spans, to find who moved
        self._last: tuple[list[Any], NDArray[np.int64]] = ([], np.zeros((0, 0), dtype=np.int64))

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
        self._owned_gen += 1
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
        self._owned_gen += 1
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

    def cells_of(self, state: State) -> NDArray[np.int32]:
        """Every slot's cell in ``state``: its grid cell, or its scope's (scopes and exceptions applied)."""
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
        return cells

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

    def _points(self, cids: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each client's focus: its entity's position (vectorised over clients), or its point; a
        client whose entity is gone stays where it was last."""
        n = len(cids)
        xs, ys = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64)
        focus, point, home = self._focus, self._point, (self.grid.x0, self.grid.y0)
        found = [focus.get(c) for c in cids]
        follow = [i for i, f in enumerate(found) if f is not None]
        for i, (c, f) in enumerate(zip(cids, found, strict=True)):
            if f is None:
                xs[i], ys[i] = point.get(c, home)
        if follow:
            w = self.world
            sl = np.array([found[i][0] for i in follow], dtype=np.intp)  # type: ignore[index]
            eid = np.array([found[i][1] for i in follow], dtype=np.uint32)  # type: ignore[index]
            at = np.minimum(sl, max(w.n - 1, 0))
            ok = (sl < w.n) & w.alive[at] & (w.ids[at] == eid) if w.n else np.zeros(sl.size, dtype=bool)
            fx, fy = self.grid.interest.position
            px, py = w[fx][at].astype(np.float64), w[fy][at].astype(np.float64)
            rows = np.asarray(follow, dtype=np.intp)
            xs[rows[ok]], ys[rows[ok]] = px[ok], py[ok]
            live = [cids[i] for i, good in zip(follow, ok.tolist(), strict=True) if good]
            point.update(zip(live, zip(px[ok].tolist(), py[ok].tolist(), strict=True), strict=True))
            for j in np.flatnonzero(~ok).tolist():  # its entity is gone: stay where it was last
                c = cids[follow[j]]
                del focus[c]
                xs[follow[j]], ys[follow[j]] = point.get(c, home)
        return xs, ys

    def _all_cells(self, live: Sequence[Session]) -> list[list[int]]:
        """Every session's watched cells, computed for all at once; a session whose cells did not
        change gets the very list it watches already (core.viewplan's fast path)."""
        grid, radius = self.grid, self.grid.interest.radius
        xs, ys = self._points([s.id for s in live])
        rs = np.array([self._radius.get(s.id, radius) for s in live], dtype=np.float64) if self._radius \
            else np.full(len(live), radius)
        must, may = grid.spans(xs, ys, rs), grid.spans(xs, ys, rs + grid.interest.margin)
        spans = np.hstack([must, may])
        last, self._last = self._last, (list(live), spans)
        if last[0] == self._last[0] and last[1].shape == spans.shape:  # the same sessions: compare rows
            moved = (spans != last[1]).any(axis=1).tolist()
        else:
            moved = [True] * len(live)
        plain = not (self._solo or self._team_cell or self._owner_cell)  # every client's scope key is the same
        if plain:  # the usual room: the clients whose views moved, all at once
            redo = [j for j, (s, m) in enumerate(zip(live, moved, strict=True)) if m or s.view.key != PLAIN_KEY]
            if redo:
                plain_wants(grid, [live[j].view for j in redo], must[redo], may[redo])
            return [s.view.want for s in live]
        out = []
        for s, a, b, m in zip(live, must, may, moved, strict=True):
            v = s.view
            key = self._scope_key(s.id)
            if m or key != v.key:
                want_one(v, self._with_scopes(s.id, grid.cells_of_span(a)), grid.cells_of_span(b))
                v.key = key
            out.append(v.want)
        return out

    def _scope_key(self, cid: int) -> Any:
        """What a client's scope cells depend on, beyond its view's spans."""
        if not self._solo:  # the scope cells depend only on the client's team and its own cell
            return (self._team_cell.get(self._team.get(cid, -1)), self._owner_cell.get(cid))
        return object()  # per-entity exceptions: a key equal to no other, so recomputed every tick
