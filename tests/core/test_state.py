"""Quantised states and the server's history ring (gamesync.core.state)."""

from __future__ import annotations

import numpy as np
import pytest

from gamesync.core.schema import TAU, Angle, Float, Int, Schema
from gamesync.core.state import History, State
from gamesync.core.world import World

SCHEMA = Schema([Float("x", 0, 1000, 1 / 64), Angle("a", 12), Int("hp", "u1"), Int("big", "u4")])


def test_capture_quantises_every_field_in_schema_order():
    w = World(SCHEMA)
    w.spawn(3, x=[0.0, 1.5, 2000.0], a=[0.0, -TAU / 4, TAU], hp=[0, 7, 255], big=[0, 1, 4_000_000_000])
    s = State.capture(w, 4)
    assert s.tick == 4 and s.n == 3 and s.layout == w.layout
    assert s.mat.dtype == np.int32 and s.mat.shape == (4, 3)
    # int32 rows hold the wire value's bit pattern: a u4 above 2**31 - 1 reads as negative
    assert s.mat.tolist() == [[0, 96, 64000], [0, 3072, 0], [0, 7, 255], [0, 1, 4_000_000_000 - (1 << 32)]]
    assert s.ids.tolist() == [1, 2, 3] and s.alive.all() and s.dense
    assert s.wire(SCHEMA, "x").dtype == np.dtype("<u2")
    assert s.wire(SCHEMA, "big").tolist() == [0, 1, 4_000_000_000]
    assert s.column(SCHEMA, "x").tolist() == [0.0, 1.5, 1000.0]
    assert s.column(SCHEMA, "x").dtype == np.float32


def test_capture_zeroes_dead_slots_and_is_read_only():
    w = World(SCHEMA)
    w.spawn(4, x=5.0, hp=9, big=3)
    w.despawn([1, 2])
    s = State.capture(w, 0)
    assert s.alive.tolist() == [True, False, False, True] and not s.dense
    assert s.ids.tolist() == [1, 0, 0, 4]
    assert np.all(s.mat[:, 1:3] == 0)
    for a in (s.alive, s.ids, s.mat):
        assert not a.flags.writeable
    assert w.ids[1] == 2  # the world itself is untouched
    w["x"][0] = 7.0
    assert s.mat[0, 0] == 320  # later world writes do not leak into the state


def test_capture_shares_layout_arrays_only_while_the_layout_is_unchanged():
    w = World(SCHEMA)
    w.spawn(5)
    w.despawn([2])
    s0 = State.capture(w, 0)
    w["x"][:5] += 1
    s1 = State.capture(w, 1, s0)
    assert s1.alive is s0.alive and s1.ids is s0.ids
    assert s1.mat[0, 0] == 64 and s1.mat[0, 2] == 0
    w.spawn(1)
    s2 = State.capture(w, 2, s1)
    assert s2.alive is not s1.alive and s2.ids.tolist() == [1, 2, 6, 4, 5]
    assert s1.ids.tolist() == [1, 2, 0, 4, 5]


def test_same_as_compares_content_not_tick():
    w = World(SCHEMA)
    w.spawn(3, x=1.0)
    a = State.capture(w, 0)
    b = State.capture(w, 9)
    assert a.same_as(b) and b.same_as(a)
    w["hp"][1] = 1
    assert not a.same_as(State.capture(w, 1))
    w["hp"][1] = 0
    w.spawn(1)
    assert not a.same_as(State.capture(w, 2))  # another n
    w.despawn([3])
    assert not a.same_as(State.capture(w, 3))  # same values, but n = 4 with a dead slot


def test_empty_state():
    e = State.empty(SCHEMA)
    assert e.n == 0 and e.tick == -1 and e.mat.shape == (4, 0) and e.dense
    assert e.same_as(State.capture(World(SCHEMA), 5))


def _st(tick: int) -> State:
    return State.empty(SCHEMA, tick)


def test_history_keeps_the_last_size_ticks():
    h = History(3)
    assert h.oldest == -1 and h.newest == -1 and len(h) == 0
    for t in range(6):
        h.push(_st(t))
    assert len(h) == 3 and h.oldest == 3 and h.newest == 5
    assert 2 not in h and 3 in h and h.get(2) is None and h.get(5).tick == 5


def test_history_drops_by_tick_distance_not_count():
    h = History(4)
    h.push(_st(0))
    h.push(_st(1))
    h.push(_st(10))  # a gap: 0 and 1 are more than 4 ticks old
    assert len(h) == 1 and h.oldest == 10
    h.push(_st(12))
    assert h.oldest == 10 and 10 in h and 12 in h


def test_history_requires_increasing_ticks_and_size_two():
    h = History(2)
    h.push(_st(3))
    with pytest.raises(ValueError):
        h.push(_st(3))
    with pytest.raises(ValueError):
        h.push(_st(1))
    with pytest.raises(ValueError):
        History(1)
