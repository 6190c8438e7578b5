"""View-room vectors for tests/vectors/make_vectors.py (docs/protocol.md section 18).

Each sequence is one client's connection to a view room: a welcome with its grid, then the
snapshots gamesync/server/views.py would write, built by the real server-side code (the
grid's ``cells_of`` and ``cells_near``, ``ViewPlanner.push`` and ``frame``, the client's
``ClientView`` committed after each written frame) and fed to the Python client
(``ClientProtocol`` at version 4, whose ``ViewMirror`` decodes them; the first three again at
version 5, whose listings and enter records are packed record lists). For each message the
file holds its bytes and what the client holds after it: the state (its tick, slot count,
entity count and the SHA-256 of its live slots, ids and every field's wire values, see
``state_digest``: the states themselves would not fit the file's size budget), the cells it
watches; or the desync it must raise. Every state is checked here against the server's world
restricted to the watched cells, bit for bit, and every entity held against the view radius
(no leak).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from typing import Any

import msgpack
import numpy as np

from gamesync.core import protocol as p
from gamesync.core.clientproto import ClientProtocol, StateUpdated
from gamesync.core.errors import DesyncError
from gamesync.core.interest import Grid, Interest
from gamesync.core.schema import TAU, Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.viewmirror import VIEW_FLAGS, split_chunks
from gamesync.core.viewplan import ClientView, ViewPlanner
from gamesync.core.viewwire import (
    MASK_VARINT,
    ChunkReader,
    mask_codes,
    private_dtype,
    read_varint,
    record_dtype,
    width_for,
)
from gamesync.core.world import World
from gamesync.games.arena import Arena

NO = p.NO_TICK


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pk(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def state_digest(schema: Schema, st: State) -> dict[str, Any]:
    """A state in a few bytes: tick, n, live entities, and the SHA-256 of its live slots (<u4), their
    ids (<u4), then each field's values of the live slots in the field's wire dtype, back to back."""
    live = np.flatnonzero(st.alive)
    h = hashlib.sha256(live.astype("<u4").tobytes())
    h.update(st.ids[live].astype("<u4").tobytes())
    for f in schema:
        h.update(st.wire(schema, f.name)[live].tobytes())
    return {"tick": st.tick, "n": st.n, "count": int(live.size), "sha256": h.hexdigest()}


def restricted(st: State, cells: np.ndarray, watched: list[int], private: tuple[int, ...] = (),
               own: list[int] = ()) -> State:
    """The server's state with only the entities of the watched cells alive (what the client
    holds), their private fields (rows ``private``) 0 but in the client's own entities (``own``)."""
    keep = st.alive & np.isin(cells, watched)
    n = int(np.flatnonzero(keep)[-1]) + 1 if keep.any() else 0
    mat = st.mat[:, :n].copy()
    mat[:, ~keep[:n]] = 0
    for i in private:
        mine = mat[i, own].copy()
        mat[i] = 0
        mat[i, own] = mine
    return State(st.tick, n, keep[:n].copy(), np.where(keep[:n], st.ids[:n], 0).astype("<u4"), mat)


def without_private(st: State, rows: tuple[int, ...]) -> State:
    """What every client is sent: the state with 0 in the private fields (gamesync/server/views.py)."""
    if not rows:
        return st
    mat = st.mat.copy()
    mat[list(rows)] = 0
    mat.flags.writeable = False  # states are immutable: the codec reuses their arrays
    return State(st.tick, st.n, st.alive, st.ids, mat, st.layout)


class ViewLink:
    """A view room's side of one client (grid, planner, the client's view) wired to a Python client.

    Scope cells after the grid's: ``everyone`` (watched by all), ``mine`` (this client's own,
    watched) and ``theirs`` (another client's, never watched: nothing in it may reach this one).
    The entities ``owned`` by the client get their private fields (``interest.private``) in
    the payload's private rows while it holds them, as gamesync/server/views.py sends them.
    """

    def __init__(self, name: str, about: str, schema: Schema, world: World, interest: Interest, *,
                 history: int = 32, events: list[Any] | None = None, version: int = 4) -> None:
        if version >= p.PACKED_VERSION:
            name, about = f"{name}_v{version}", f"{about}; under version {version}: packed record lists"
        self.name, self.about, self.schema, self.world = name, about, schema, world
        self.grid = Grid(schema, interest)
        self.everyone, self.mine, self.theirs = self.grid.everyone, self.grid.count + 1, self.grid.count + 2
        self.planner = ViewPlanner(schema, history)
        self.view = ClientView(packed=version >= p.PACKED_VERSION)
        self.client = ClientProtocol("big", "alice", "bigworld", version=version)
        self.scope: dict[int, tuple[int, int]] = {}  # slot -> (entity id, scope cell)
        self.owned: dict[int, int] = {}  # slot -> entity id, whose private fields this client gets
        self.private = private_dtype(schema, interest.private) if interest.private else None
        self.steps: list[dict[str, Any]] = []
        self.sent: dict[int, bytes] = {}
        self.prev: State | None = None
        self.input_ack = 0
        self.watched: list[int] = []
        self.stats: Counter[str] = Counter()  # what the chunks hold (for the coverage)
        w = p.Welcome(version, 1, "big", "bigworld", 30.0, 0, schema.to_wire(), history, "V1ewR00mT0kenAbCdEfGhIjK", False,
                      self.grid.to_wire())
        self.deliver(p.pack_welcome(w))

    def own(self, slots: Any) -> None:
        for s in np.atleast_1d(slots).tolist():
            self.owned[int(s)] = int(self.world.ids[s])

    def _own_rows(self, st: State, cells: np.ndarray, watched: list[int]) -> tuple[bytes | None, list[int]]:
        """The private rows of the owned entities the client holds (None: the room has no private fields)."""
        if self.private is None:
            return None, []
        mine = [s for s, eid in sorted(self.owned.items())
                if s < st.n and st.alive[s] and int(st.ids[s]) == eid and int(cells[s]) in watched]
        rec = np.zeros(len(mine), dtype=self.private)
        rec["slot"] = mine
        for i in self.grid.private_rows:
            f = self.schema.fields[i]
            rec["v_" + f.name] = st.mat[i, mine].astype(f.wire_dtype)
        return rec.tobytes(), mine

    def scoped(self, slots: Any, cell: int) -> None:
        for s in np.atleast_1d(slots).tolist():
            self.scope[int(s)] = (int(self.world.ids[s]), cell)

    def cells_of(self, st: State) -> np.ndarray:
        cells = self.grid.cells_of(st.mat)
        for s, (eid, c) in list(self.scope.items()):
            if s < st.n and st.alive[s] and st.ids[s] == eid:
                cells[s] = c
            else:
                del self.scope[s]
        return cells

    def tick(self, t: int, focus: tuple[float, float], radius: float, *, send: bool = True,
             events: list[Any] = ()) -> None:
        """Capture tick ``t``; unless ``send`` is False (the frame never reached the socket), send it."""
        st = State.capture(self.world, t, self.prev)
        self.prev = st
        cells = self.cells_of(st)
        self.planner.push(without_private(st, self.grid.private_rows), cells, self.grid.count + 3)
        if not send:
            return
        watched = [*self.grid.cells_near(focus[0], focus[1], radius), self.everyone, self.mine]
        rows, mine = self._own_rows(st, cells, watched)
        fr = self.planner.frame(self.view, watched, rows)
        self.view.commit(fr)
        msg = p.pack_snapshot(t, fr.base, fr.ref, self.input_ack, VIEW_FLAGS, fr.payload, list(events))
        self.sent[t] = msg
        self.deliver(msg, want=restricted(st, cells, watched, self.grid.private_rows, mine))
        self._no_leak(st, cells, watched, focus, radius)
        self.watched = watched

    def _no_leak(self, st: State, cells: np.ndarray, watched: list[int], focus: tuple[float, float],
                 radius: float) -> None:
        held = self.client.mirror.latest
        live = np.flatnonzero(held.alive)
        assert not np.isin(cells[live], [self.theirs]).any(), self.name
        grid_cells = live[cells[live] < self.grid.count]
        fx, fy = (self.schema.by_name[n] for n in self.grid.interest.position)
        x = held.wire(self.schema, fx.name)[grid_cells] * fx.step + fx.lo
        y = held.wire(self.schema, fy.name)[grid_cells] * fy.step + fy.lo
        reach = radius + self.grid.cell * math.sqrt(2)
        assert (np.hypot(x - focus[0], y - focus[1]) <= reach + 1e-6).all(), f"{self.name}: an entity too far"

    def deliver(self, msg: bytes, *, want: State | None = None, why: str | None = None) -> None:
        c = self.client
        step: dict[str, Any] = {"msg": b64(msg)}
        self.steps.append(step)
        if why is not None:
            v = c.mirror.view
            before = (v.tick, v.prev, dict(v.cells))
            try:
                c.receive(msg, 0.0)
            except DesyncError:
                assert (v.tick, v.prev, dict(v.cells)) == before, f"{self.name}: {why}: the mirror changed"
                step["expect"] = {"desync": why}
                return
            raise AssertionError(f"{self.name}: {why}: not refused")
        m = p.parse_server(msg)
        if isinstance(m, p.Snapshot) and m.base != NO and m.tick > c.tick:
            self._chunk_stats(msgpack.unpackb(m.payload, raw=False))
        got = c.receive(msg, 0.0)
        if isinstance(m, p.Welcome):
            step["expect"] = {"welcome": {"version": m.version, "client_id": m.client_id, "room": m.room,
                                          "game": m.game, "history": m.history, "view": m.view}}
            return
        upd = [e for e in got if isinstance(e, StateUpdated)]
        if want is not None:
            assert upd and upd[0].state.same_as(want), f"{self.name}: tick {m.tick}: not the server's view"
        v = c.mirror.view
        step["expect"] = {
            "snapshot": {"tick": m.tick, "base": m.base, "ref": m.ref, "input_ack": m.input_ack, "flags": m.flags},
            "state": state_digest(self.schema, upd[0].state) if upd else None,
            "cells": sorted(v.cells),
        }
        if m.events:  # left out when empty (most steps), to keep the file small
            step["expect"]["events"] = m.events

    def _chunk_stats(self, body: list[Any]) -> None:
        """Count what the kept cells' chunks of a payload hold, against what the client holds now."""
        v = self.client.mirror.view
        gone = set(np.frombuffer(body[0], "<u4").tolist())
        kept = [(cell, v.cells[cell].k) for cell in sorted(v.cells) if cell not in gone]
        reader, st = ChunkReader(self.schema, v.dtype), self.stats
        for (_, k), chunk in zip(kept, split_chunks(v.splitter, body[1], kept), strict=True):
            if chunk is None:
                st["chunks: nothing happened"] += 1
                continue
            left, arrived, spawned, ch_at, _ = reader.read(chunk, k)
            st["chunks: left"] += bool(left.size)
            st["chunks: arrived"] += bool(arrived.size)
            st["chunks: spawned"] += bool(spawned)
            st["left positions <u2"] += bool(left.size) and width_for(k) == 2
            if ch_at < 0:
                continue
            after = k - left.size + arrived.size + len(spawned) // v.dtype.itemsize
            m, at = read_varint(chunk, ch_at)
            st["chunks: changed"] += 1
            st["changed positions <u2"] += width_for(after) == 2
            mask, after_mask = read_varint(chunk, at + m * width_for(after), MASK_VARINT)
            st["field masks of 2 bytes or more"] += after_mask - (at + m * width_for(after)) > 1
            for code in mask_codes(mask, len(self.schema)):
                if code:
                    st[f"residuals {['', '<i1', '<i2', '<i4'][code]}"] += 1

    def desync(self, why: str, payload: bytes, *, tick: int | None = None, base: int | None = None,
               ref: int | None = None, flags: int = VIEW_FLAGS) -> None:
        v = self.client.mirror.view
        t = v.tick + 1 if tick is None else tick
        self.deliver(p.pack_snapshot(t, v.tick if base is None else base, v.prev if ref is None else ref,
                                     self.input_ack, flags, payload, []), why=why)

    def doc(self) -> dict[str, Any]:
        return {"name": self.name, "about": self.about, "steps": self.steps, "_stats": self.stats}


# ---- the arena's rules on a big square ---------------------------------------------------------

class _Room:
    """What the arena game uses of its room, for client 1."""

    name, tick, tick_rate = "big", 0, 30.0

    def __init__(self, world: World) -> None:
        self.world = world
        self.events: list[Any] = []
        self.client_ids: list[int] = []
        self.views = None

    def send(self, client_id: int, data: Any) -> None:
        if client_id == 1:
            self.events.append([p.Ev.EVENT, data])

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        if exclude != 1:
            self.events.append([p.Ev.EVENT, data])

    def take(self) -> list[Any]:
        out, self.events = self.events, []
        return out


def seq_bigworld(version: int = 4) -> dict[str, Any]:
    """The arena's rules (bigworld's) on a 4000-unit square: 32-bit positions, 250-unit cells, R = 500."""
    game = Arena(npcs=320, seed=5, size=4000.0)
    room = _Room(World(game.schema))
    game.setup(room)
    w = room.world
    link = ViewLink("view_bigworld", "the bigworld rules (arena schema with <u4 positions, 250-unit cells, R = 500) "
                    "on a 4000-unit square with 320 NPCs that start and stop walking across cells; the client's "
                    "player walks (its focus moves: cells dropped and added), is teleported once (a focus jump), "
                    "its radius changes; a second player walks into view and leaves, a third takes its slot; one "
                    "NPC is seen by everyone; two frames never reach the socket; ack is private (as in bigworld: "
                    "only the player's own client gets it, in the payload's private rows)", game.schema, w,
                    Interest(cell=250.0, radius=500.0, private=("ack",)), version=version)
    game.on_join(1, "alice")
    me = game.players[1]
    link.own(me)  # as bigworld does: a player's ack reaches its own client only
    w["x"][me], w["y"][me] = 1400.0, 2000.0
    link.scoped(game.npc_slots[7], link.everyone)  # a boss everyone sees
    radius = 500.0
    plan = {0: [1, 0], 14: [1, 1], 26: [0, -1]}
    move = [1, 0]
    for t in range(44):
        room.tick = t
        ev = room.take()
        if t == 3:
            game.on_join(2, "bob")  # walks towards alice from the east
            w["x"][game.players[2]], w["y"][game.players[2]] = 2300.0, 2000.0
            ev.append([p.Ev.JOINED, 2, "bob"])
        if t == 30:  # bob leaves, carol takes his slot (a new id) near alice
            game.on_leave(2)
            game.on_join(3, "carol")
            w["x"][game.players[3]], w["y"][game.players[3]] = float(w["x"][me]) + 100, float(w["y"][me])
            ev += [[p.Ev.LEFT, 2], [p.Ev.JOINED, 3, "carol"]]
        if t == 34:  # teleported: every cell changes
            w["x"][me], w["y"][me] = 900.0, 800.0
        if t == 37:
            radius = 320.0
        if t == 41:
            radius = 700.0
        move = plan.get(t, move)
        seq = t + 1  # one input per tick
        inputs = {1: [p.InputFrame(seq, move)]}
        if 2 in game.players:
            inputs[2] = [p.InputFrame(t, [-1, 0])]
        game.step(t, inputs, 1 / 30)
        link.input_ack = seq
        link.tick(t, (float(w["x"][me]), float(w["y"][me])), radius, send=t not in (11, 24, 25), events=ev)
    return link.doc()


# ---- every field kind, fast movers, wraps ------------------------------------------------------

MIXED = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2
    Float("y", 0, 1000, 1 / 64),
    Float("z", -1e6, 1e6, 1 / 1024),  # <u4: a 32-bit float
    Angle("heading", 12, predict="hold"),  # modulus 4096 in a <u2
    Angle("spin", 10),  # linear, modulus 1024 in a <u2
    Angle("turn", 32),  # modulo 2**32
    Int("hp", "u1", predict="hold"),
    Int("t", "i1"),
    Int("s", "i2"),
    Int("big", "u4"),
    Int("score", "i4"),
])


class Movers:
    """Entities of MIXED at constant velocities (32-bit ints near the ends of their range,
    wrapping), with steering, jumps, spawns and despawns from a seeded rng."""

    def __init__(self, seed: int, n: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.w = World(MIXED)
        self.vel = {f.name: np.zeros(4096) for f in MIXED}
        self.spawn(n)

    def live(self) -> np.ndarray:
        return np.flatnonzero(self.w.alive[: self.w.n])

    def spawn(self, k: int, at: tuple[float, float] | None = None) -> np.ndarray:
        r = self.rng
        u32 = np.where(r.random(k) < 0.5, 4294967295 - r.integers(0, 200, k), r.integers(0, 200, k))
        i32 = np.where(r.random(k) < 0.5, 2147483647 - r.integers(0, 200, k), -2147483648 + r.integers(0, 200, k))
        xy = r.uniform(0, 1000, (2, k)) if at is None else np.array([[at[0]] * k, [at[1]] * k])
        slots = self.w.spawn(k, x=np.round(xy[0] * 64) / 64, y=np.round(xy[1] * 64) / 64,
                             z=r.integers(-1000, 1000, k) * 1.0, heading=r.uniform(0, TAU, k),
                             spin=r.uniform(0, TAU, k), turn=r.uniform(0, TAU, k), hp=r.integers(1, 256, k),
                             t=r.integers(-128, 128, k), s=r.integers(-32768, 32768, k), big=u32, score=i32)
        self.steer(slots)
        return slots

    def steer(self, who: np.ndarray) -> None:
        r, k = self.rng, len(who)
        still = r.random(k) < 0.2
        for name, v in (("x", r.integers(-300, 301, k) / 64), ("y", r.integers(-300, 301, k) / 64),
                        ("z", r.integers(-2000, 2001, k) / 1024), ("spin", r.integers(-40, 41, k) * TAU / 1024),
                        ("turn", r.uniform(-0.2, 0.2, k)), ("t", r.integers(-3, 4, k)), ("s", r.integers(-90, 91, k)),
                        ("big", r.integers(-60, 61, k)), ("score", r.integers(-60, 61, k))):
            self.vel[name][who] = np.where(still, 0, v)

    def move(self) -> None:
        n, w = self.w.n, self.w
        for f in MIXED:
            v, col = self.vel[f.name][:n], w[f.name]
            if f.predict == "hold":
                continue
            if f.kind == "float":
                col[:n] = np.clip(col[:n].astype(np.float64) + v, f.lo, f.hi)
            elif f.kind == "angle":
                col[:n] = np.remainder(col[:n].astype(np.float64) + v, TAU)
            elif f.wire_dtype.itemsize == 4:
                lo = int(np.iinfo(f.wire_dtype).min)
                col[:n] = (col[:n].astype(np.int64) + v.astype(np.int64) - lo) % (1 << 32) + lo
            else:
                info = np.iinfo(f.wire_dtype)
                col[:n] = np.clip(col[:n].astype(np.int64) + v.astype(np.int64), int(info.min), int(info.max))

    def jump(self, k: int) -> np.ndarray:
        """Teleports and steps prediction cannot see: across the world, 32-bit values by more
        than 2**31, a half turn, a hold heading across 0, a spin past its wrap."""
        live = self.live()
        who = self.rng.choice(live, min(k, live.size), replace=False)
        w = self.w
        w["x"][who] = np.where(w["x"][who] > 500, 10.0, 990.0)
        w["big"][who] = (w["big"][who].astype(np.int64) + 3_000_000_000) % (1 << 32)
        w["score"][who] = ((w["score"][who].astype(np.int64) + 3_000_000_000 + (1 << 31)) % (1 << 32)) - (1 << 31)
        w["heading"][who] = np.where(w["heading"][who] > math.pi, 3 * TAU / 4096, TAU - 5 * TAU / 4096)
        w["spin"][who] = np.remainder(w["spin"][who] + math.pi, TAU)
        w["t"][who] = np.where(w["t"][who] > 0, -128, 127)
        return who


def seq_wraps(version: int = 4) -> dict[str, Any]:
    """Every field kind through a view: 32-bit wraps, narrow fields, angles past their wrap."""
    sim = Movers(71, 120)
    link = ViewLink("view_wraps", "every field kind and wire dtype through a view (<u2 and <u4 floats, 12-bit hold "
                    "and 10-bit linear angles across their wrap, a 32-bit angle, <u1 <i1 <i2 ints, <u4 and <i4 "
                    "wrapping under constant velocity and jumping by more than 2**31); fast movers crossing "
                    "100-unit cells, teleports out of and into the view (enter records), spawns, despawns and "
                    "slot reuse, entities in the everyone cell, the client's own cell and another client's cell "
                    "(never sent); the focus drifts, jumps, and the radius changes; frames skipped (T - B up to 3); "
                    "field s is private: the client gets it for the entities it owns while it holds them",
                    MIXED, sim.w, Interest(cell=100.0, radius=160.0, private=("s",)), version=version)
    r = sim.rng
    link.scoped(sim.live()[:2], link.everyone)
    link.scoped(sim.live()[2:4], link.mine)
    link.scoped(sim.live()[4:7], link.theirs)
    link.own(sim.live()[2:3])  # in the client's own cell
    link.own(sim.live()[7:40])  # some of them in view now and then
    focus, radius = np.array([500.0, 500.0]), 160.0
    for t in range(36):
        if t:
            sim.move()
            u = r.random()
            if u < 0.15:
                slots = sim.spawn(int(r.integers(1, 4)), at=(float(focus[0]), float(focus[1])) if u < 0.07 else None)
                if u < 0.03:
                    link.scoped(slots[:1], link.mine)
                link.own(slots[:1])
            elif u < 0.27:
                sim.w.despawn(r.choice(sim.live(), 3, replace=False))
            elif u < 0.35:  # despawn and spawn in one tick: slots reused by new entities
                sim.w.despawn(r.choice(sim.live(), 2, replace=False))
                sim.spawn(2)
            elif u < 0.5:
                sim.jump(4)
            elif u < 0.7:
                sim.steer(r.choice(sim.live(), 6, replace=False))
        if t in (9, 29):
            focus = r.uniform(150, 850, 2)  # a jump
        else:
            focus = np.clip(focus + np.array([7.0, 3.0]), 0, 1000)
        if t in (17, 32):
            radius = float(r.uniform(90, 320))
        link.input_ack = t
        link.tick(t, (float(focus[0]), float(focus[1])), radius, send=t == 0 or t not in (5, 13, 14, 22, 23, 24))
    return link.doc()


# ---- crowds, small history, refusals ----------------------------------------------------------

SMALL = Schema([
    Float("x", 0, 500, 1 / 16),  # <u2
    Float("y", 0, 500, 1 / 16),
    Angle("heading", 8, predict="hold"),  # <u1
    Int("hp", "u1", predict="hold"),
    Int("tag", "u2"),
])


def seq_crowd(version: int = 4) -> dict[str, Any]:
    """A cell of 270 (positions of 2 bytes), deflated listings and enter records, a history of 6
    outrun by skipped frames: a full snapshot in mid-stream, then a delta without reference."""
    r = np.random.default_rng(88)
    w = World(SMALL)
    n = 270
    w.spawn(n, x=120 + r.integers(0, 400, n) / 16, y=120 + r.integers(0, 400, n) / 16, heading=r.uniform(0, TAU, n),
            hp=100, tag=np.arange(n) * 7)
    w.spawn(60, x=r.uniform(0, 500, 60), y=r.uniform(0, 500, 60), hp=50)
    vel = np.zeros((2, 4096))
    link = ViewLink("view_crowd", "a crowd of 270 in one 100-unit cell (member positions of 2 bytes in left and "
                    "changed), deflated cell listings and enter records (a dozen entities teleported into a watched "
                    "cell from cells not watched), a history of 6 outrun by 8 skipped frames: a full snapshot in "
                    "mid-stream, then a delta without a reference; a snapshot delivered twice (ignored); hp is "
                    "private and the client owns nothing: it holds 0 in every hp, every private bin is empty",
                    SMALL, w, Interest(cell=100.0, radius=120.0, private=("hp",)), history=6, version=version)
    for t in range(26):
        if t == 2:  # a few of the crowd walk out of its cell, some across it
            who = np.arange(0, n, 7)
            vel[0, who] = r.choice([-3, 3], who.size) / 16 * 20
        if t == 5:  # a dozen from far away land in the crowd's cell
            far = np.arange(n, n + 60)[:12]
            w["x"][far] = 150 + r.integers(0, 100, 12) / 16
            w["y"][far] = 150 + r.integers(0, 100, 12) / 16
        if t == 7:
            w["tag"][np.arange(3, n, 3)] += 7
            w.despawn([10, 11, 12])
            w.spawn(4, x=140.0, y=140.0, hp=9, tag=1)
        if t == 18:
            vel[:, :] = 0
            vel[1, np.arange(0, n, 2)] = 2 / 16
        m = w.n
        w["x"][:m] = np.clip(w["x"][:m] + vel[0, :m], 0, 500)
        w["y"][:m] = np.clip(w["y"][:m] + vel[1, :m], 0, 500)
        w["tag"][:m] += 1
        link.input_ack = t
        link.tick(t, (150.0, 150.0), 120.0, send=not 9 <= t <= 16)
        if t == 20:
            link.deliver(link.sent[19])  # stale: ignored
    return link.doc()


def seq_refusals() -> dict[str, Any]:
    """View payloads the client must refuse with a desync, leaving what it holds as it was."""
    r = np.random.default_rng(99)
    w = World(SMALL)
    w.spawn(40, x=r.uniform(0, 300, 40), y=r.uniform(0, 300, 40), hp=100)
    link = ViewLink("view_desync", "view snapshots the client must refuse with a desync, leaving what it holds "
                    "as it was: a baseline or reference that is not the previous snapshot, wrong flags, and "
                    "payloads that break each rule of section 18 (tag is a private field); the valid stream then "
                    "goes on", SMALL, w, Interest(cell=100.0, radius=120.0, private=("tag",)))
    link.own(np.arange(40))
    for t in range(4):
        w["x"][: w.n] = np.clip(w["x"][: w.n] + 0.5, 0, 500)
        link.tick(t, (150.0, 150.0), 120.0)
    v = link.client.mirror.view
    cells = sorted(v.cells)
    k = {c: v.cells[c].k for c in cells}
    busy = max(cells, key=lambda c: k[c])  # a kept cell with members
    pos = cells.index(busy)
    dt = record_dtype(SMALL)
    u4 = lambda *x: np.asarray(x, "<u4").tobytes()  # noqa: E731
    nothing = b"\x00" * len(cells)

    def kept(chunk: bytes) -> bytes:  # every kept cell unchanged but `busy`
        return nothing[:pos] + chunk + nothing[pos + 1:]

    def last(chunk: bytes) -> dict[str, bytes]:  # the cells after `busy` dropped: its chunk ends the bin
        return {"dropped": u4(*cells[pos + 1:]), "kept_bin": nothing[:pos] + chunk}

    def record(slot: int, eid: int, ref: int = 0) -> bytes:
        rec = np.zeros(1, dtype=dt)
        rec["slot"], rec["id"], rec["ref"], rec["v_x"], rec["v_y"] = slot, eid, ref, 1000, 1000
        return rec.tobytes()

    def body(dropped: bytes = b"", kept_bin: bytes = nothing, added: Any = (), enter: Any = (0, b""),
             own: bytes = b"") -> bytes:
        return pk([dropped, kept_bin, list(added), list(enter), own])

    def own_rows(*slots: int) -> bytes:
        return b"".join(np.asarray([s], "<u4").tobytes() + np.asarray([7], "<u2").tobytes() for s in slots)

    slot0, slot1 = (int(x) for x in v.cells[busy].slots[:2])
    free = int(max(int(c.slots.max()) for c in v.cells.values() if c.k)) + 50
    other = int(next(v.cells[c].slots[0] for c in cells if c != busy and v.cells[c].k))  # held elsewhere
    link.desync("baseline is not the newest snapshot held", body(), base=v.tick - 1, ref=NO)
    link.desync("reference is not the snapshot before the baseline", body(), ref=v.tick - 3)
    link.desync("snapshot flags are not 2", body(), flags=0)
    link.desync("snapshot flags 3 (deflated as a whole)", body(), flags=3)
    link.desync("truncated payload", body()[:-2])
    link.desync("payload is not an array of 5 (a room with private fields)", pk([b"", nothing, [], [0, b""]]))
    link.desync("private rows for an entity not held", body(own=own_rows(free)))
    link.desync("private rows do not ascend", body(own=own_rows(slot1, slot0)))
    link.desync("private rows that are not whole", body(own=own_rows(slot0)[:-1]))
    link.desync("a dropped cell is not held", body(dropped=u4(max(cells) + 1000)))
    link.desync("dropped cells do not ascend", body(dropped=u4(cells[1], cells[0]), kept_bin=nothing[2:]))
    link.desync("kept-cells bin too short", body(kept_bin=nothing[1:]))
    link.desync("kept-cells bin has trailing bytes", body(kept_bin=nothing + b"\x00"))
    link.desync("chunk flags with a reserved bit", body(kept_bin=kept(b"\x10")))
    link.desync("a left position past the cell's members", body(kept_bin=kept(bytes([1, 1, k[busy]]))))
    link.desync("left positions do not ascend", body(kept_bin=kept(bytes([1, 2, 1, 0]))))
    link.desync("an arrival neither held nor in the enter records", body(kept_bin=kept(b"\x02\x01" + u4(free))))
    link.desync("arrived slots do not ascend", body(kept_bin=kept(b"\x03\x01\x00\x02" + u4(slot0 + 1, slot0)),
                                                   enter=(0, record(slot0, 9999, 1) + record(slot0 + 1, 9998, 1))))
    link.desync("a record's reference flag is 2", body(kept_bin=kept(b"\x04\x01" + record(free, 5000, 2))))
    link.desync("an entering slot still held in another cell",
                body(kept_bin=kept(b"\x02\x01" + u4(other)), enter=(0, record(other, 4242, 1))))
    link.desync("spawned records cut short", body(**last(b"\x04\x01" + record(free, 5000)[:-1])))
    link.desync("a spawned slot already in the cell", body(kept_bin=kept(b"\x04\x01" + record(slot0, 5000))))
    link.desync("spawned record slots do not ascend",
                body(kept_bin=kept(b"\x04\x02" + record(free + 1, 5000) + record(free, 5001))))
    link.desync("a changed position past the cell's members", body(kept_bin=kept(bytes([8, 1, k[busy], 0]))))
    link.desync("changed positions do not ascend", body(kept_bin=kept(bytes([8, 2, 1, 1, 0]))))
    link.desync("residuals wider than the field's wire type (hp: <i2, field mask 0x80 as a varint)",
                body(kept_bin=kept(bytes([8, 1, 0, 0x80, 0x01, 5, 0]))))
    link.desync("residuals cut short", body(**last(bytes([8, 1, 0, 0x01]))))
    link.desync("a field mask naming a field the schema does not have (bit 10 of 5 fields)",
                body(kept_bin=kept(bytes([8, 1, 0, 0x80, 0x08]))))
    link.desync("a field mask longer than 9 bytes", body(kept_bin=kept(bytes([8, 1, 0, *[0x80] * 9, 0]))))
    link.desync("a chunk that ends inside its field mask", body(**last(bytes([8, 1, 0, 0x81]))))
    link.desync("left positions cut short", body(**last(bytes([1, 3, 0, 1]))))
    link.desync("a count longer than 5 bytes", body(kept_bin=kept(b"\x08\x80\x80\x80\x80\x80\x00")))
    link.desync("an added cell already watched", body(added=[[busy, 0, 0, b""]]))
    link.desync("a dropped cell added back", body(dropped=u4(busy), kept_bin=nothing[:-1], added=[[busy, 0, 0, b""]]))
    link.desync("added cells do not ascend", body(added=[[max(cells) + 20, 0, 0, b""], [max(cells) + 10, 0, 0, b""]]))
    link.desync("an added cell's count does not match its records",
                body(added=[[max(cells) + 10, 2, 0, record(free, 7000)]]))
    link.desync("added-cell flags 2", body(added=[[max(cells) + 10, 0, 2, b""]]))
    link.desync("an added cell is not [cell, count, flags, records]", body(added=[[max(cells) + 10, 0, 0]]))
    link.desync("bad deflate data in an added cell", body(added=[[max(cells) + 10, 1, 1, b"\x78\x9cgarbage"]]))
    link.desync("records that are not whole entries", body(added=[[max(cells) + 10, 1, 0, record(free, 7000)[:-3]]]))
    link.desync("enter records are not [flags, records]", body(enter=[0]))
    link.desync("enter flags 2", body(enter=[2, b""]))
    for t in range(4, 8):
        w["x"][: w.n] = np.clip(w["x"][: w.n] + 0.5, 0, 500)
        link.tick(t, (150.0, 150.0), 120.0)
    return link.doc()


# ---- coverage ----------------------------------------------------------------------------------

def coverage(seqs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the view sequences exercise, counted from their bytes; asserts the essentials are there."""
    c: Counter[str] = Counter()
    pairs: set[tuple[int, int]] = set()
    for s in seqs:
        c.update(s.pop("_stats"))
        for step in s["steps"]:
            e = step["expect"]
            if "welcome" in e:
                c["welcomes"] += 1
                continue
            if "desync" in e:
                c["desync cases"] += 1
                continue
            sn = e["snapshot"]
            c["snapshots"] += 1
            if e["state"] is None:
                c["ignored (stale)"] += 1
                continue
            body = msgpack.unpackb(msgpack.unpackb(base64.b64decode(step["msg"]), raw=False)[6], raw=False)
            dropped, _, added, enter = body[:4]
            c["payloads with private rows"] += len(body) > 4 and len(body[4]) > 0
            c["payloads of a private room without rows"] += len(body) > 4 and not body[4]
            if sn["base"] == NO:
                c["full"] += 1
            elif sn["ref"] == NO:
                c["delta without reference"] += 1
            else:
                c["with reference"] += 1
                pairs.add((sn["tick"] - sn["base"], sn["base"] - sn["ref"]))
            c["cells dropped"] += len(dropped) // 4
            c["cells added"] += len(added)
            c["deflated listings"] += sum(a[2] for a in added)
            c["enter records deflated"] += enter[0]
            c["enter bytes"] += len(enter[1])
            c["entities held (sum)"] += e["state"]["count"]
    need = {"full", "with reference", "delta without reference", "cells dropped", "cells added", "deflated listings",
            "enter records deflated", "enter bytes", "desync cases", "ignored (stale)", "chunks: nothing happened",
            "chunks: left", "chunks: arrived", "chunks: spawned", "chunks: changed", "left positions <u2",
            "changed positions <u2", "residuals <i1", "residuals <i2", "residuals <i4", "payloads with private rows",
            "field masks of 2 bytes or more",
            "payloads of a private room without rows"}
    missing = need - {k for k, v in c.items() if v}
    assert not missing, f"the view vectors miss {sorted(missing)}"
    assert {(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)} <= pairs, sorted(pairs)
    return {**dict(sorted(c.items())), "(T-B, B-R) pairs": sorted(list(x) for x in pairs)}


def view_sections() -> dict[str, Any]:
    """The entries make_vectors.py adds to the file: the view sequences and their coverage."""
    seqs = [seq_bigworld(), seq_wraps(), seq_crowd(), seq_refusals(), seq_bigworld(5), seq_wraps(5), seq_crowd(5)]
    return {"view_coverage": coverage(seqs), "view_sequences": seqs}
