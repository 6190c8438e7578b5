"""The arena game, exactly as the shared ARENA.md scenario defines it.

1000 x 1000 world; players move at 200 units/s in direction (dx, dy) with dx, dy in
{-1, 0, 1} (diagonals normalised), one input = one tick of movement; E NPCs (default 1000)
spawn at seeded random positions and alternate 2 s walking (random heading, 100 units/s)
and 2 s resting with a random phase. Positions clamp to the world. hp starts at 100.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.protocol import InputFrame
from ..core.schema import Angle, Float, Int, Schema
from ..game import Game, RoomAPI, require

SIZE = 1000.0
PLAYER_SPEED = 200.0
NPC_SPEED = 100.0
WALK_S = 2.0
CYCLE_S = 4.0
SEED = 20261125
KIND_NPC = 0
KIND_PLAYER = 1

SCHEMA = Schema([
    Float("x", 0.0, SIZE, 1 / 64),
    Float("y", 0.0, SIZE, 1 / 64),
    Angle("heading", bits=12),
    Int("hp", "u1"),
    Int("ack", "u4"),
    Int("kind", "u1"),
])

_DIAG = 1 / math.sqrt(2)


class Arena(Game):
    """ARENA.md rules as vectorised functions over the world's columns."""

    schema = SCHEMA

    def __init__(self, npcs: int = 1000, seed: int = SEED, **options: Any) -> None:
        super().__init__(npcs=npcs, seed=seed, **options)
        self.n_npcs = int(npcs)
        self.rng = np.random.default_rng(seed)
        self.players: dict[int, int] = {}  # client id -> slot
        self.time = 0.0

    def setup(self, room: RoomAPI) -> None:
        super().setup(room)
        n, rng = self.n_npcs, self.rng
        self.npc_slots = self.world.spawn(
            n,
            x=rng.uniform(0, SIZE, n).astype(np.float32),
            y=rng.uniform(0, SIZE, n).astype(np.float32),
            heading=rng.uniform(0, 2 * math.pi, n).astype(np.float32),
            hp=100,
            kind=KIND_NPC,
        )
        self.npc_phase = rng.uniform(0, CYCLE_S, n)
        self.npc_dir = np.stack([np.cos(self.world["heading"][self.npc_slots]),
                                 np.sin(self.world["heading"][self.npc_slots])])

    # -- players ---------------------------------------------------------------------------

    def on_join(self, client_id: int, name: str) -> None:
        slot = self.world.spawn(1, x=self.rng.uniform(0, SIZE), y=self.rng.uniform(0, SIZE), hp=100,
                                kind=KIND_PLAYER)
        self.players[client_id] = int(slot[0])
        self.room.send(client_id, {"you": int(self.world.ids[slot[0]])})

    def on_leave(self, client_id: int) -> None:
        slot = self.players.pop(client_id, None)
        if slot is not None:
            self.world.despawn([slot])

    def validate_input(self, data: Any) -> tuple[int, int]:
        require(isinstance(data, (list, tuple)) and len(data) == 2, "arena input is [dx, dy]")
        dx, dy = data
        require(dx in (-1, 0, 1) and dy in (-1, 0, 1) and type(dx) is int and type(dy) is int,
                "dx and dy must each be -1, 0 or 1")
        return dx, dy

    def step(self, tick: int, inputs: dict[int, list[InputFrame]], dt: float) -> None:
        self._step_players(inputs, dt)
        self._step_npcs(dt)
        self.time += dt

    def _step_players(self, inputs: dict[int, list[InputFrame]], dt: float) -> None:
        """Apply every input as one tick of movement; rounds are vectorised across players."""
        batch = [(self.players[c], frames) for c, frames in inputs.items() if c in self.players and frames]
        if not batch:
            return
        w = self.world
        x, y, heading, ack = w["x"], w["y"], w["heading"], w["ack"]
        rounds = max(len(f) for _, f in batch)
        for r in range(rounds):
            sel = [(s, f[r]) for s, f in batch if len(f) > r]
            slots = np.fromiter((s for s, _ in sel), dtype=np.intp, count=len(sel))
            d = np.array([fr.data for _, fr in sel], dtype=np.float64).reshape(-1, 2)
            moving = (d[:, 0] != 0) | (d[:, 1] != 0)
            scale = np.where((d[:, 0] != 0) & (d[:, 1] != 0), _DIAG, 1.0) * PLAYER_SPEED * dt
            x[slots] = np.clip(x[slots] + d[:, 0] * scale, 0, SIZE)
            y[slots] = np.clip(y[slots] + d[:, 1] * scale, 0, SIZE)
            heading[slots] = np.where(moving, np.arctan2(d[:, 1], d[:, 0]) % (2 * math.pi), heading[slots])
            ack[slots] = np.fromiter((fr.seq for _, fr in sel), dtype=np.int64, count=len(sel))

    # -- NPCs ------------------------------------------------------------------------------

    def _step_npcs(self, dt: float) -> None:
        if self.n_npcs == 0:
            return
        w, s = self.world, self.npc_slots
        before = (self.npc_phase + self.time) % CYCLE_S
        after = (self.npc_phase + self.time + dt) % CYCLE_S
        starts = np.flatnonzero(after < before)  # wrapped into a new cycle: a new walk begins
        if starts.size:
            h = self.rng.uniform(0, 2 * math.pi, starts.size)
            self.npc_dir[:, starts] = np.cos(h), np.sin(h)
            w["heading"][s[starts]] = h
        walking = after < WALK_S
        step = NPC_SPEED * dt * walking
        w["x"][s] = np.clip(w["x"][s] + self.npc_dir[0] * step, 0, SIZE)
        w["y"][s] = np.clip(w["y"][s] + self.npc_dir[1] * step, 0, SIZE)
