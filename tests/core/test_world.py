"""Entity storage: slots, ids, growth and the layout counter (gamesync.core.world)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.world import World

SCHEMA = Schema([Float("x", 0, 1000, 1 / 64), Angle("a", 12), Int("hp", "u1"), Int("big", "u4")])


def test_new_world_is_empty_with_minimum_capacity():
    w = World(SCHEMA, capacity=3)
    assert w.capacity == 64
    assert w.n == 0 and w.count == 0
    assert w["x"].dtype == np.float32 and w["a"].dtype == np.float32
    assert w["hp"].dtype == np.uint8 and w["big"].dtype == np.uint32
    assert w.view("x").shape == (0,)
    assert World(SCHEMA, capacity=500).capacity == 500


def test_spawn_sets_values_and_returns_slots():
    w = World(SCHEMA)
    slots = w.spawn(3, x=[1.0, 2.0, 3.0], hp=7)
    assert slots.tolist() == [0, 1, 2]
    assert w.n == 3 and w.count == 3
    assert w.view("x").tolist() == [1.0, 2.0, 3.0]
    assert w.view("hp").tolist() == [7, 7, 7]
    assert w.view("a").tolist() == [0.0, 0.0, 0.0]  # unspecified fields are zero
    assert w.alive[:3].all()
    assert w.ids[:3].tolist() == [1, 2, 3]


def test_view_is_a_writable_view_of_the_column():
    w = World(SCHEMA)
    w.spawn(2)
    w.view("x")[:] = 5.0
    assert w["x"][:2].tolist() == [5.0, 5.0]


def test_spawn_rejects_unknown_fields_and_negative_counts():
    w = World(SCHEMA)
    with pytest.raises(KeyError):
        w.spawn(1, z=3)
    with pytest.raises(ValueError):
        w.spawn(-1)
    assert w.n == 0 and w.count == 0


def test_despawn_marks_dead_and_ignores_dead_or_out_of_range_slots():
    w = World(SCHEMA)
    w.spawn(4)
    w.despawn([1, 1, 3])
    assert w.alive[:4].tolist() == [True, False, True, False]
    assert w.count == 2 and w.n == 4  # n is a high-water mark
    w.despawn([1, -1, 99, 4])  # dead, negative, beyond n: ignored
    assert w.count == 2
    # an already-dead slot is not put on the free list twice
    assert sorted(w.spawn(3).tolist()) == [1, 3, 4]


def test_ids_are_never_reused_and_slot_reuse_gives_a_new_id():
    w = World(SCHEMA)
    w.spawn(3)
    old_id = int(w.ids[1])
    w.despawn([1])
    assert w.slot_of(old_id) == -1
    s = w.spawn(1, hp=9)
    assert s.tolist() == [1]  # the freed slot is reused
    new_id = int(w.ids[1])
    assert new_id != old_id and new_id == 4
    assert w.slot_of(new_id) == 1
    assert w.view("hp")[1] == 9


def test_spawn_reuses_free_slots_before_growing():
    w = World(SCHEMA)
    w.spawn(5)
    w.despawn([0, 2])
    slots = w.spawn(4)
    assert sorted(slots.tolist()[:2]) == [0, 2]
    assert slots.tolist()[2:] == [5, 6]
    assert w.n == 7 and w.count == 7
    assert len(set(w.ids[:7].tolist())) == 7


def test_reused_slot_is_reset_to_the_spawn_values():
    w = World(SCHEMA)
    w.spawn(2, x=10.0, hp=5, big=4_000_000_000)
    w.despawn([0])
    w.spawn(1)
    assert w["x"][0] == 0.0 and w["hp"][0] == 0 and w["big"][0] == 0
    assert w["big"][1] == 4_000_000_000


def test_growth_beyond_capacity_keeps_data():
    w = World(SCHEMA, capacity=64)
    w.spawn(60, x=np.arange(60, dtype=np.float32), big=np.arange(60) * 1000)
    w.despawn([5, 6])
    ids_before = w.ids[:60].copy()
    w.spawn(2)  # reuses 5 and 6
    w.spawn(100, x=123.0)
    assert w.capacity >= 160 and w.capacity == 256
    assert w.n == 160
    assert w.view("x")[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert w.view("x")[7:60].tolist() == list(map(float, range(7, 60)))
    assert w.view("big")[59] == 59000
    assert np.array_equal(w.ids[:5], ids_before[:5])
    assert w.view("x")[60:].tolist() == [123.0] * 100
    assert w.alive[:160].all() and not w.alive[160:].any()
    assert all(col.shape[0] == w.capacity for col in w.columns.values())
    assert w.ids.shape[0] == w.capacity


def test_layout_counter_bumps_on_spawn_and_despawn_only():
    w = World(SCHEMA)
    l0 = w.layout
    w.spawn(2)
    l1 = w.layout
    assert l1 > l0
    w.view("x")[:] = 4.0  # value writes are not layout changes
    assert w.layout == l1
    w.despawn([0])
    l2 = w.layout
    assert l2 > l1
    w.spawn(1)
    assert w.layout > l2


def test_slot_of_finds_live_ids_only():
    w = World(SCHEMA)
    w.spawn(70)
    assert w.slot_of(1) == 0
    assert w.slot_of(70) == 69
    assert w.slot_of(71) == -1
    assert w.slot_of(0) == -1
    w.despawn([10])
    assert w.slot_of(11) == -1


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.randoms(use_true_random=False)), max_size=30))
def test_random_spawn_despawn_keeps_ids_unique_and_counts_consistent(ops):
    w = World(SCHEMA)
    model: dict[int, int] = {}  # id -> slot
    seen_ids: set[int] = set()
    for spawn, k, rnd in ops:
        if spawn:
            before = w.layout
            slots = w.spawn(k, hp=k % 256)
            assert w.layout > before
            assert len(set(slots.tolist())) == k
            for s in slots.tolist():
                assert s not in model.values()
                i = int(w.ids[s])
                assert i not in seen_ids
                seen_ids.add(i)
                model[i] = s
        else:
            live = sorted(model)
            kill = rnd.sample(live, min(k, len(live)))
            w.despawn([model[i] for i in kill] + [w.n + 5, -3])
            for i in kill:
                del model[i]
        assert w.count == len(model)
        assert w.n <= w.capacity
        assert int(np.count_nonzero(w.alive)) == len(model)
        for i, s in model.items():
            assert w.slot_of(i) == s
