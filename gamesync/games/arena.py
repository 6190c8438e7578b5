"""The arena game, exactly as the shared ARENA.md scenario defines it.

1000 x 1000 world; players move at 200 units/s in direction (dx, dy) with dx, dy in
{-1, 0, 1} (diagonals normalised), one input = one tick of movement; E NPCs (default 1000)
spawn at seeded random positions and alternate 2 s walking (random heading, 100 units/s)
and 2 s resting with a random phase. Positions clamp to the world. hp starts at 100.

Everything moves on the grid the clients see (1/64 unit): spawn points are snapped to it
and a tick's movement is a whole number of grid steps on each axis (each axis is off by at
most half a step per tick: players move at 200.16 units/s straight and 200.20 diagonally,
NPCs within 0.33 % of 100 units/s depending on their heading). Constant motion is then exactly linear after
quantisation, so the predictive delta sends nothing for it; only what a client cannot predict (an NPC
starting or stopping, a player's new input) costs bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.protocol import InputFrame
from ..core.schema import Angle, Float, Int, Schema
from ..game import Game, InputBatch, IntInputs, RoomAPI
from .chat import Chat

SIZE = 1000.0
PLAYER_SPEED = 200.0
NPC_SPEED = 100.0
WALK_S = 2.0
CYCLE_S = 4.0
SEED = 20261125
KIND_NPC = 0
KIND_PLAYER = 1



def arena_schema(size: float = SIZE) -> Schema:
    """The arena's entity fields on a square world of side ``size``."""
    return Schema([
        Float("x", 0.0, size, 1 / 64),
        Float("y", 0.0, size, 1 / 64),
        Angle("heading", bits=12, predict="hold"),  # jumps when a walk starts or a key changes
        Int("hp", "u1", predict="hold"),
        Int("ack", "u4"),  # one more every tick while a player's inputs stream in
        Int("kind", "u1", predict="hold"),
        Int("owner", "u4", predict="hold"),  # the client id driving a player (0: an NPC), for names
    ])


SCHEMA = arena_schema()

_DIAG = 1 / math.sqrt(2)
_GRID = SCHEMA.by_name["x"]  # x and y share one grid
_HEADING = SCHEMA.by_name["heading"]


def _clamp(v: np.ndarray, size: float) -> np.ndarray:
    """``np.clip(v, 0, size)``, without its Python wrapper (a few times a tick)."""
    return np.minimum(np.maximum(v, 0), size)


class Arena(Game):
    """ARENA.md rules as vectorised functions over the world's columns."""

    schema = SCHEMA
    #: an input is [dx, dy], each -1, 0 or 1 (the server checks it and hands ``step`` columns)
    input_spec = IntInputs(dx=(-1, 1), dy=(-1, 1))

    def __init__(self, npcs: int = 1000, seed: int = SEED, size: float = SIZE, **options: Any) -> None:
        super().__init__(npcs=npcs, seed=seed, **options)
        self.size = float(size)
        if self.size != SIZE:
            self.schema = arena_schema(self.size)
        self.n_npcs = int(npcs)
        self.rng = np.random.default_rng(seed)
        self.players: dict[int, int] = {}  # client id -> slot
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # players' (client ids, slots), sorted
        self._moves_for: tuple[float, Any] = (-1.0, None)  # (dt, the nine inputs' moves for it)
        self.time = 0.0

    def setup(self, room: RoomAPI) -> None:
        super().setup(room)
        self.chat = Chat(room, lambda: self.time)
        n, rng = self.n_npcs, self.rng
        self.npc_slots = self.world.spawn(
            n,
            x=_GRID.snap(rng.uniform(0, self.size, n)).astype(np.float32),
            y=_GRID.snap(rng.uniform(0, self.size, n)).astype(np.float32),
            heading=_HEADING.snap(rng.uniform(0, 2 * math.pi, n)).astype(np.float32),
            hp=100,
            kind=KIND_NPC,
        )
        lo = int(self.npc_slots[0]) if n else 0
        contiguous = n and np.array_equal(self.npc_slots, np.arange(lo, lo + n))
        #: NPC slots as a slice when contiguous (basic indexing is much cheaper than fancy)
        self.npc_sel: Any = slice(lo, lo + n) if contiguous else self.npc_slots
        self.npc_phase = rng.uniform(0, CYCLE_S, n)  # seconds into its walk/rest cycle at time 0
        self.npc_dir = np.stack([np.cos(self.world["heading"][self.npc_slots]),
                                 np.sin(self.world["heading"][self.npc_slots])]).astype(np.float32)
        self.npc_vel = np.zeros_like(self.npc_dir)  # move per tick on the grid; zero while resting
        self._dt = -1.0  # the tick length the schedule below was built for
        self._steps = 0  # steps taken with it
        self._cycle_ticks = self._walk_ticks = 0
        self._at: list[Any] = []  # NPC indices by the tick of the cycle they are at at step 0

    # -- players ---------------------------------------------------------------------------

    def on_join(self, client_id: int, name: str) -> None:
        x, y = _GRID.snap(self.rng.uniform(0, self.size, 2))
        slot = self.world.spawn(1, x=x, y=y, hp=100, kind=KIND_PLAYER, owner=client_id)
        self.players[client_id] = int(slot[0])
        self._lookup = None
        self.room.send(client_id, {"you": int(self.world.ids[slot[0]])})
        self.chat.join(client_id, name)

    def on_leave(self, client_id: int) -> None:
        slot = self.players.pop(client_id, None)
        self._lookup = None
        if slot is not None:
            self.world.despawn([slot])
        self.chat.leave(client_id)

    def on_message(self, client_id: int, data: Any) -> None:
        self.chat.handle(client_id, data)  # room chat and typing indicators (gamesync.games.chat)

    def step(self, tick: int, inputs: InputBatch | dict[int, list[InputFrame]], dt: float) -> None:
        """One tick; ``inputs`` as the room hands them (an ``InputBatch``) or, from tests and
        tools driving the game directly, as client id -> ``InputFrame`` list."""
        if not isinstance(inputs, InputBatch):
            inputs = InputBatch.of_frames(self.input_spec, inputs.items())
        self._step_players(inputs, dt)
        self._step_npcs(dt)
        self.time += dt

    def _slots_of(self, clients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``clients`` have a player, their players' slots), without a loop."""
        if self._lookup is None:  # rebuilt after joins and leaves
            cids = np.fromiter(self.players.keys(), dtype=np.int64, count=len(self.players))
            slots = np.fromiter(self.players.values(), dtype=np.intp, count=len(self.players))
            order = np.argsort(cids)
            self._lookup = cids[order], slots[order]
        cids, slots = self._lookup
        at = np.minimum(np.searchsorted(cids, clients), max(len(cids) - 1, 0))
        found = cids[at] == clients if len(cids) else np.zeros(len(clients), dtype=bool)
        return found, slots[at[found]]

    def _step_players(self, inputs: InputBatch, dt: float) -> None:
        """Apply every input as one tick of movement, vectorised across players.

        A player with k inputs this tick moves k times; round r applies every player's r-th
        input at once, so clamping stays sequential per player.
        """
        if not len(inputs):
            return
        found, sl = self._slots_of(inputs.clients)
        if not len(sl):
            return
        w = self.world
        x, y, heading, ack = w["x"], w["y"], w["heading"], w["ack"]
        move, ang, moving = self._moves(dt)
        v = inputs.values[found]
        k = (v[:, 0] + 1) * 3 + (v[:, 1] + 1)  # which of the nine (dx, dy)
        move, ang, moving = move[k], ang[k], moving[k]
        sq = inputs.seqs[found]
        rounds = inputs.rounds
        rk = inputs.ranks[found] if rounds > 1 else None
        for r in range(rounds):
            m = slice(None) if rk is None else (rk == r)
            s = sl[m]
            x[s] = _clamp(x[s] + move[m, 0], self.size)
            y[s] = _clamp(y[s] + move[m, 1], self.size)
            heading[s] = np.where(moving[m], ang[m], heading[s])
            ack[s] = sq[m]

    def _moves(self, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each of the nine inputs (dx, dy), in the order (dx + 1) * 3 + dy + 1: one tick's
        move in whole grid steps per axis, the heading it sets, and whether it moves at all.
        The same arithmetic as one input at a time, done once per tick length."""
        if self._moves_for[0] != dt:
            d = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)], dtype=np.float64)
            moving = (d[:, 0] != 0) | (d[:, 1] != 0)
            step = np.where((d[:, 0] != 0) & (d[:, 1] != 0), _DIAG, 1.0) * (PLAYER_SPEED * dt)
            move = _GRID.snap(d * step[:, None])  # whole grid steps per axis
            ang = np.arctan2(d[:, 1], d[:, 0]) % (2 * math.pi)
            self._moves_for = (dt, (move, ang, moving))
        return self._moves_for[1]

    # -- NPCs ------------------------------------------------------------------------------

    def _schedule(self, dt: float) -> None:
        """Build the walk/rest schedule in whole ticks of ``dt`` from the current time.

        NPC i is at tick ``(p_i + k) % C`` of its cycle at step k (C ticks per cycle, the
        first W walking), so the NPCs that start or stop walking at a step are one
        precomputed group each: a step touches only them, then moves everyone by velocity.
        """
        c = max(2, round(CYCLE_S / dt))
        wk = max(1, min(c - 1, round(WALK_S / dt)))
        pos = np.floor((self.npc_phase + self.time) % CYCLE_S / dt).astype(np.int64) % c
        order = np.argsort(pos, kind="stable")
        self._at = np.split(order, np.cumsum(np.bincount(pos, minlength=c))[:-1])
        self._cycle_ticks, self._walk_ticks, self._dt, self._steps = c, wk, dt, 0
        disp = _GRID.snap(self.npc_dir * (NPC_SPEED * dt)).astype(np.float32)
        self.npc_vel[:] = disp * (pos < wk)

    def _step_npcs(self, dt: float) -> None:
        if self.n_npcs == 0:
            return
        if dt != self._dt:
            self._schedule(dt)
        k = self._steps = self._steps + 1
        c, w, s = self._cycle_ticks, self.world, self.npc_sel
        stops = self._at[(self._walk_ticks - k) % c]  # reach tick W of their cycle: rest
        self.npc_vel[:, stops] = 0
        starts = self._at[-k % c]  # back to tick 0: a new walk, in a new direction
        if starts.size:
            h = _HEADING.snap(self.rng.uniform(0, 2 * math.pi, starts.size))
            self.npc_dir[:, starts] = np.cos(h), np.sin(h)
            w["heading"][self.npc_slots[starts]] = h
            self.npc_vel[:, starts] = _GRID.snap(self.npc_dir[:, starts] * (NPC_SPEED * dt))
        if isinstance(s, slice):  # contiguous NPCs: update the columns in place
            for col, v in ((w["x"][s], self.npc_vel[0]), (w["y"][s], self.npc_vel[1])):
                col += v
                np.maximum(col, 0, out=col)  # np.clip, without its Python wrapper
                np.minimum(col, self.size, out=col)
        else:
            w["x"][s] = _clamp(w["x"][s] + self.npc_vel[0], self.size)
            w["y"][s] = _clamp(w["y"][s] + self.npc_vel[1], self.size)

    # -- saved state (gamesync.core.saved: a cluster node saves it every few seconds) --------

    def save_state(self) -> dict[str, Any]:
        """What the world's columns do not hold: players' slots, the clock, NPC schedules, the RNG."""
        bg = self.rng.bit_generator.state
        return {
            "players": [[cid, slot] for cid, slot in self.players.items()],
            "names": [[cid, name] for cid, name in self.chat.names.items()],
            "chat": self.chat.kept(),
            "time": self.time,
            "rng": [bg["bit_generator"], str(bg["state"]["state"]), str(bg["state"]["inc"]),
                    bg["has_uint32"], bg["uinteger"]],
            "npc_phase": self.npc_phase.astype("<f8").tobytes(),
            "npc_dir": self.npc_dir.astype("<f4").tobytes(),
        }

    def keep_state(self) -> dict[str, Any]:
        """What outlives the room (closed empty, a restart): the chat's history and line ids."""
        return {"chat": self.chat.kept()}

    def restore_kept(self, data: Any) -> None:
        if isinstance(data, dict):
            self.chat.restore(data.get("chat"))

    def restore_state(self, data: dict[str, Any]) -> None:
        """Continue from ``save_state``'s output (the room has restored the world already)."""
        self.players = {int(cid): int(slot) for cid, slot in data["players"]}
        self._lookup = None
        for cid, name in data["names"]:
            self.chat.join(int(cid), str(name), welcome=False)
        self.chat.restore(data.get("chat"))
        self.time = float(data["time"])
        kind, state, inc, has32, uint = data["rng"]
        self.rng.bit_generator.state = {"bit_generator": kind, "state": {"state": int(state), "inc": int(inc)},
                                        "has_uint32": has32, "uinteger": uint}
        n = self.n_npcs
        self.npc_phase = np.frombuffer(data["npc_phase"], dtype="<f8").copy()[:n]
        self.npc_dir = np.frombuffer(data["npc_dir"], dtype="<f4").copy().reshape(2, n)
        self._dt = -1.0  # the walk/rest schedule is rebuilt from the restored clock at the next step
