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
        lo = int(self.npc_slots[0]) if n else 0
        contiguous = n and np.array_equal(self.npc_slots, np.arange(lo, lo + n))
        #: NPC slots as a slice when contiguous (basic indexing is much cheaper than fancy)
        self.npc_sel: Any = slice(lo, lo + n) if contiguous else self.npc_slots
        self.npc_phase = rng.uniform(0, CYCLE_S, n)
        self._cycle = self.npc_phase % CYCLE_S  # cycle position at the last step
        self.npc_dir = np.stack([np.cos(self.world["heading"][self.npc_slots]),
                                 np.sin(self.world["heading"][self.npc_slots])]).astype(np.float32)

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
        """Apply every input as one tick of movement, vectorised across players.

        A player with k inputs this tick moves k times; round r applies every player's r-th
        input at once, so clamping stays sequential per player.
        """
        slots: list[int] = []
        moves: list[Any] = []
        seqs: list[int] = []
        rank: list[int] = []
        players = self.players
        for cid, frames in inputs.items():
            slot = players.get(cid)
            if slot is None:
                continue
            for r, fr in enumerate(frames):
                slots.append(slot)
                moves.append(fr.data)
                seqs.append(fr.seq)
                rank.append(r)
        if not slots:
            return
        w = self.world
        x, y, heading, ack = w["x"], w["y"], w["heading"], w["ack"]
        sl = np.asarray(slots, dtype=np.intp)
        d = np.asarray(moves, dtype=np.float64).reshape(-1, 2)
        sq = np.asarray(seqs, dtype=np.int64)
        moving = (d[:, 0] != 0) | (d[:, 1] != 0)
        step = np.where((d[:, 0] != 0) & (d[:, 1] != 0), _DIAG, 1.0) * (PLAYER_SPEED * dt)
        ang = np.arctan2(d[:, 1], d[:, 0]) % (2 * math.pi)
        rounds = max(rank) + 1
        rk = np.asarray(rank) if rounds > 1 else None
        for r in range(rounds):
            m = slice(None) if rk is None else (rk == r)
            s = sl[m]
            x[s] = np.clip(x[s] + d[m, 0] * step[m], 0, SIZE)
            y[s] = np.clip(y[s] + d[m, 1] * step[m], 0, SIZE)
            heading[s] = np.where(moving[m], ang[m], heading[s])
            ack[s] = sq[m]

    # -- NPCs ------------------------------------------------------------------------------

    def _step_npcs(self, dt: float) -> None:
        if self.n_npcs == 0:
            return
        w, s = self.world, self.npc_sel
        after = np.add(self.npc_phase, self.time + dt)
        np.mod(after, CYCLE_S, out=after)  # where each NPC is in its walk/rest cycle
        starts = np.flatnonzero(after < self._cycle)  # wrapped into a new cycle: a new walk begins
        self._cycle = after
        if starts.size:
            h = self.rng.uniform(0, 2 * math.pi, starts.size)
            self.npc_dir[:, starts] = np.cos(h), np.sin(h)
            w["heading"][self.npc_slots[starts]] = h
        step = (after < WALK_S) * np.float32(NPC_SPEED * dt)
        if isinstance(s, slice):  # contiguous NPCs: update the columns in place
            for col, d in ((w["x"][s], self.npc_dir[0]), (w["y"][s], self.npc_dir[1])):
                col += d * step
                np.clip(col, 0, SIZE, out=col)
        else:
            w["x"][s] = np.clip(w["x"][s] + self.npc_dir[0] * step, 0, SIZE)
            w["y"][s] = np.clip(w["y"][s] + self.npc_dir[1] * step, 0, SIZE)
