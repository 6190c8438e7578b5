"""The arena game's rules (gamesync.games.arena) against ARENA.md, and what its grid buys."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from gamesync.core.delta import diff_states
from gamesync.core.protocol import InputFrame
from gamesync.core.state import History, State
from gamesync.core.world import World
from gamesync.games.arena import CYCLE_S, KIND_NPC, KIND_PLAYER, NPC_SPEED, SIZE, WALK_S, Arena

DT = 1 / 30
Q = 1 / 64


class _Room:
    def __init__(self, game: Arena) -> None:
        self.world = World(game.schema)
        self.sent: list[tuple[int, Any]] = []

    def send(self, client_id: int, data: Any) -> None:
        self.sent.append((client_id, data))


def _arena(npcs: int = 400, seed: int = 7) -> Arena:
    g = Arena(npcs=npcs, seed=seed)
    g.setup(_Room(g))  # type: ignore[arg-type]
    return g


def _xy(g: Arena) -> np.ndarray:
    w = g.world
    return np.stack([w["x"][: w.n], w["y"][: w.n]]).astype(np.float64)


def test_npcs_spawn_inside_the_world_on_the_grid_with_full_hp():
    g = _arena()
    xy = _xy(g)
    assert xy.shape == (2, 400)
    assert np.all((xy >= 0) & (xy <= SIZE))
    assert np.array_equal(xy, np.rint(xy / Q) * Q)
    assert np.all(g.world["hp"][:400] == 100) and np.all(g.world["kind"][:400] == KIND_NPC)
    assert np.all(g.world["owner"][:400] == 0)


def test_about_half_the_npcs_walk_at_100_units_per_second_and_the_rest_stand_still():
    g = _arena(npcs=2000)
    for t in range(5):
        g.step(t, {}, DT)
    before = _xy(g)
    g.step(5, {}, DT)
    moved = _xy(g) - before
    dist = np.hypot(*moved)
    walking = dist > 0
    assert 0.4 < walking.mean() < 0.6  # 2 s walking out of every 4 s, random phases
    # away from the walls a walker covers 100 units/s, give or take its grid rounding
    free = walking & np.all((before > 5) & (before < SIZE - 5), axis=0)
    assert np.allclose(dist[free], NPC_SPEED * DT, atol=Q)
    assert np.all(np.abs(moved) % Q == 0)  # whole grid steps


def test_each_npc_alternates_two_seconds_walking_and_two_resting():
    g = _arena(npcs=50)
    moving = []
    for t in range(int(3 * CYCLE_S / DT)):
        before = _xy(g)
        g.step(t, {}, DT)
        moving.append(np.any(_xy(g) != before, axis=0))
    m = np.array(moving)  # ticks x NPCs
    per_cycle = m[: int(CYCLE_S / DT)].sum(axis=0) + m[int(CYCLE_S / DT): int(2 * CYCLE_S / DT)].sum(axis=0)
    expected = 2 * WALK_S / DT  # walking ticks in two cycles
    clamped = np.any((_xy(g) == 0) | (_xy(g) == SIZE), axis=0)  # a walker pressed to a wall stops moving
    ok = ~clamped
    assert np.all(np.abs(per_cycle[ok] - expected) <= 2)


def test_npcs_clamp_to_the_world():
    g = _arena(npcs=300)
    for t in range(int(60 / DT)):  # a minute: many walkers reach a wall
        g.step(t, {}, DT)
    xy = _xy(g)
    assert np.all((xy >= 0) & (xy <= SIZE))
    assert np.any((xy == 0) | (xy == SIZE))


def test_players_move_200_units_per_second_diagonals_normalised_and_carry_their_ack():
    g = _arena(npcs=0)
    g.on_join(1, "ann")
    g.on_join(2, "bob")
    s1, s2 = g.players[1], g.players[2]
    w = g.world
    w["x"][[s1, s2]] = 500.0
    w["y"][[s1, s2]] = 500.0
    for seq in range(1, 31):  # one second of input
        g.step(seq, {1: [InputFrame(seq, (1, 0))], 2: [InputFrame(seq, (-1, 1))]}, DT)
    assert w["x"][s1] - 500 == pytest.approx(200.0, rel=0.0025) and w["y"][s1] == 500
    assert math.hypot(w["x"][s2] - 500, w["y"][s2] - 500) == pytest.approx(200.0, rel=0.0025)
    assert w["x"][s2] < 500 < w["y"][s2]
    assert w["ack"][s1] == 30 and w["ack"][s2] == 30
    assert w["kind"][s1] == KIND_PLAYER
    assert g.room.sent[0] == (1, {"you": int(w.ids[s1])})
    assert w["owner"][s1] == 1 and w["owner"][s2] == 2  # who drives it, for the names over players


def test_two_inputs_in_one_tick_move_twice_and_clamp_at_the_wall():
    g = _arena(npcs=0)
    g.on_join(1, "ann")
    s = g.players[1]
    g.world["x"][s] = SIZE - 8.0
    g.step(1, {1: [InputFrame(1, (1, 0)), InputFrame(2, (1, 0))]}, DT)
    assert g.world["x"][s] == SIZE
    assert g.world["ack"][s] == 2


def test_steady_motion_costs_nothing_only_walks_starting_or_stopping_show_in_the_delta():
    """On the grid, an NPC walking or resting is exactly linear: the predicted delta's only
    non-zero residuals belong to NPCs whose walk began or ended inside the window."""
    g = _arena(npcs=1000)
    hist, prev = History(8), None
    events = []
    for t in range(40):
        before = _xy(g)
        h0 = g.world["heading"][:1000].copy()
        g.step(t, {}, DT)
        after = _xy(g)
        prev = State.capture(g.world, t, prev)
        hist.push(prev)
        events.append((before, after, h0))
    t = 39
    d = diff_states(g.schema, prev, hist.get(t - 1), hist.get(t - 2))
    changed = np.any(d.residuals != 0, axis=0)
    # velocity over the last two ticks: an NPC whose velocity did not change is predicted exactly
    v_prev = events[-2][1] - events[-2][0]
    v_now = events[-1][1] - events[-1][0]
    same_v = np.all(v_prev == v_now, axis=0) & (events[-1][2] == g.world["heading"][:1000])
    assert not changed[same_v].any()
    assert changed.sum() <= (~same_v).sum() < 60  # ~1000 / 60 walks start or stop per tick
