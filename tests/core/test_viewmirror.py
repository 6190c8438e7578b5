"""The client side of view payloads (gamesync.core.viewmirror) against the server side
(gamesync.core.viewplan): whatever the world does and wherever the client looks, the mirror
holds exactly the server's entities of the cells it watches, bit for bit."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesync.core.errors import PayloadError
from gamesync.core.interest import Grid, Interest
from gamesync.core.protocol import NO_TICK
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.viewmirror import ViewMirror
from gamesync.core.viewplan import ClientView, ViewPlanner
from gamesync.core.world import World

SCHEMA = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2
    Float("y", 0, 1000, 1 / 64),
    Angle("heading", 12, predict="hold"),  # modulus 4096 in a <u2
    Angle("spin", 10),  # linear, modulus 1024 in a <u2
    Int("hp", "u1", predict="hold"),
    Int("laps", "u4"),  # linear, modulo 2**32
])
TURN = 2 * math.pi  # radians in a full turn


def restricted(state: State, cells_of: np.ndarray, watched: list[int]) -> State:
    """The server's state with only the entities of the watched cells alive."""
    keep = state.alive & np.isin(cells_of, watched)
    n = int(np.flatnonzero(keep)[-1]) + 1 if keep.any() else 0
    mat = state.mat[:, :n].copy()
    mat[:, ~keep[:n]] = 0
    ids = np.where(keep[:n], state.ids[:n], 0).astype("<u4")
    return State(state.tick, n, keep[:n].copy(), ids, mat)


class Room:
    """A world, its grid and planner, and one client's view and mirror."""

    def __init__(self, schema: Schema = SCHEMA, cell: float = 100.0, radius: float = 150.0, history: int = 32) -> None:
        self.schema = schema
        self.grid = Grid(schema, Interest(cell=cell, radius=radius))
        self.world = World(schema)
        self.planner = ViewPlanner(schema, history)
        self.view = ClientView()
        self.mirror = ViewMirror(schema)
        self.prev: State | None = None

    def tick(self, t: int, focus: tuple[float, float], radius: float, send: bool = True) -> None:
        st = State.capture(self.world, t, self.prev)
        self.prev = st
        cells = self.grid.cells_of(st.mat)
        self.planner.push(st, cells, self.grid.count + 1)
        if not send:
            return
        watched = [*self.grid.cells_near(*focus, radius), self.grid.everyone]
        fr = self.planner.frame(self.view, watched)
        self.view.commit(fr)
        self.mirror.apply(fr.tick, fr.base, fr.ref, fr.payload)
        assert self.mirror.state().same_as(restricted(st, cells, watched)), t


def test_an_angle_narrower_than_its_wire_type_decodes_modulo_its_turn() -> None:
    # a hold heading that steps across 0 both ways, and a linear one that turns past a full
    # turn with a residual: pred + residual leaves 0..4095 (0..1023), and only the modulo
    # of the angle's turn, not of its <u2 wire type, gives the value back
    room = Room()
    w = room.world
    w.spawn(2, x=[100.0, 120.0], y=[100.0, 100.0], heading=[4090 * TURN / 4096, 0.0], spin=[1020 * TURN / 1024, 0.0])
    for t in range(6):
        if t == 2:
            w["heading"][:2] = [5 * TURN / 4096, 4000 * TURN / 4096]
        step = 9 if t == 3 else 2  # a turn faster than predicted, across the wrap
        w["spin"][:2] = np.remainder(w["spin"][:2] + step * TURN / 1024, TURN)
        room.tick(t, (100.0, 100.0), 150.0)
    assert room.mirror.state().wire(SCHEMA, "heading")[:2].tolist() == [5, 4000]


def test_a_tick_where_no_entity_changes_cell_or_dies_encodes() -> None:
    room = Room()
    room.world.spawn(3, x=[10.0, 20.0, 30.0], y=10.0)
    for t in range(3):
        room.tick(t, (10.0, 10.0), 150.0)
    assert room.mirror.count == 3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_the_mirror_holds_the_server_world_of_its_cells_whatever_moves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    room = Room(history=6)
    w = room.world
    n0 = int(rng.integers(0, 60))
    w.spawn(n0, x=rng.uniform(0, 1000, n0), y=rng.uniform(0, 1000, n0), heading=rng.uniform(0, TURN, n0),
            spin=rng.uniform(0, TURN, n0), hp=100, laps=rng.integers(0, 1 << 32, n0))
    vel = rng.integers(-400, 401, (2, 4096)) / 64
    focus = rng.uniform(0, 1000, 2)
    radius = 150.0
    for t in range(30):
        n = w.n
        live = np.flatnonzero(w.alive[:n])
        w["x"][:n] = np.clip(w["x"][:n] + vel[0, :n], 0, 1000)
        w["y"][:n] = np.clip(w["y"][:n] + vel[1, :n], 0, 1000)
        w["spin"][:n] = np.remainder(w["spin"][:n] + 0.3, TURN)
        w["laps"][:n] += np.uint32(7)
        u = rng.random()
        if u < 0.15 and live.size:
            w.despawn(rng.choice(live, min(3, live.size), replace=False))
        elif u < 0.3:
            k = int(rng.integers(1, 4))
            w.spawn(k, x=rng.uniform(0, 1000, k), y=rng.uniform(0, 1000, k), hp=50)
        elif u < 0.4 and live.size:
            w["heading"][rng.choice(live)] = rng.uniform(0, TURN)
        v = rng.random()
        if v < 0.1:
            focus = rng.uniform(0, 1000, 2)  # a jump
        elif v < 0.2:
            radius = float(rng.uniform(50, 400))
        else:
            focus = np.clip(focus + rng.uniform(-40, 40, 2), 0, 1000)
        # a skipped frame now and then; skipping past the history gives a full snapshot
        send = t == 0 or rng.random() < 0.8
        room.tick(t, (float(focus[0]), float(focus[1])), radius, send)
    assert room.mirror.tick != NO_TICK


def test_a_slot_in_two_cells_a_bad_reference_flag_and_a_dropped_cell_added_back_are_refused() -> None:
    room = Room()
    room.world.spawn(2, x=[10.0, 150.0], y=10.0)  # cells 0 and 1
    room.tick(0, (10.0, 10.0), 150.0)
    m = room.mirror
    cells = sorted(m.cells)
    assert m.cells[0].k == 1 and m.cells[1].k == 1
    rec = np.zeros(1, dtype=m.dtype)
    rec["slot"], rec["id"], rec["ref"] = 1, 2, 1  # slot 1 (cell 1's member) entering cell 0
    nothing = b"\x00" * len(cells)
    u4 = np.asarray([1], "<u4").tobytes()
    bad = {
        "held in two cells": [b"", b"\x02\x01" + u4 + nothing[1:], [], [0, rec.tobytes()]],
        "reference flag": [b"", b"\x04\x01" + _flag2(rec) + nothing[1:], [], [0, b""]],
        "must ascend and be new": [np.asarray([0], "<u4").tobytes(), nothing[1:], [[0, 0, 0, b""]], [0, b""]],
    }
    for why, body in bad.items():
        before = (m.tick, m.prev, dict(m.cells))
        with pytest.raises(PayloadError, match=why):
            m.apply(1, 0, NO_TICK, msgpack.packb(body))
        assert (m.tick, m.prev, dict(m.cells)) == before


def _flag2(rec: np.ndarray) -> bytes:
    r = rec.copy()
    r["slot"], r["ref"] = 40, 2
    return r.tobytes()
