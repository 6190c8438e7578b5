"""Shared test vectors for the JavaScript client (demo/js): what the server sends, as the
server builds it, and what the Python client makes of each message.

Each sequence is one client's connection: a welcome, then snapshots built the way
gamesync/server/room.py builds them (the world captured into the history every tick,
AckTracker choosing baseline and reference from the client's acks, encode_delta and
compress_payload, pack_snapshot), fed to gamesync.core.clientproto.ClientProtocol, whose
acks travel back to the server's AckTracker after a delay. Skipped sends, late, missing
and very late acks, small histories and forced full snapshots vary the (baseline,
reference) pairs. For each message the file holds its exact bytes (base64) and the
expected outcome: the decoded state (tick, slots, ids and every field's wire value per
live entity), the ack bits, the held ticks and the replies the client sends, or the
error (desync) it must raise. Further sections hold client messages as the Python
builders pack them, and server messages, welcomes and events the client must refuse.

View rooms (docs/protocol.md section 18) have their own sequences, built in
tests/vectors/view_vectors.py and added as `view_sequences` and `view_coverage`.

    .venv/bin/python tests/vectors/make_vectors.py [--out tests/vectors/snapshots.json]

The output is deterministic (seeded, no clock); tests/demo/test_js_client.py checks that
the committed file is what this script writes now.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gamesync.core import protocol as p  # noqa: E402
from gamesync.core.acks import AckTracker  # noqa: E402
from gamesync.core.clientproto import ClientProtocol, StateUpdated  # noqa: E402
from gamesync.core.delta import compress_payload, decode_delta, encode_delta  # noqa: E402
from gamesync.core.errors import DesyncError, ProtocolViolation  # noqa: E402
from gamesync.core.schema import TAU, Angle, Float, Int, Schema  # noqa: E402
from gamesync.core.state import History, State  # noqa: E402
from gamesync.core.world import World  # noqa: E402
from gamesync.games.arena import Arena  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view_vectors import view_sections  # noqa: E402

OUT = Path(__file__).resolve().parent / "snapshots.json"
NO = p.NO_TICK


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pk(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def state_json(schema: Schema, st: State) -> dict[str, Any]:
    """A state as the vectors hold it: the live slots, their ids and each field's wire values."""
    live = np.flatnonzero(st.alive)
    return {"tick": st.tick, "n": st.n, "slots": live.tolist(), "ids": st.ids[live].tolist(),
            "fields": {f.name: st.wire(schema, f.name)[live].tolist() for f in schema}}


# ---- one connection, server side and client side ---------------------------------------------------

class Link:
    """A room's side of one client (history, AckTracker, codec) wired to a Python client.

    The caller steps the world, then calls ``tick``; acks the client queued come back to the
    AckTracker ``ack_delay`` ticks later (None: never sent), before that tick's baseline is
    chosen, as a room reads its sockets before it encodes.
    """

    def __init__(self, name: str, about: str, schema: Schema, world: World, *, history: int = 32,
                 welcome: dict[str, Any] | None = None) -> None:
        self.name, self.about, self.schema, self.world = name, about, schema, world
        self.hist = History(history)
        self.acks = AckTracker(history, 1)  # the default baseline lag
        # protocol 2: the sequences exercise acks, ack bits and what a client retains under
        # them (protocol 3 sends the same snapshots, built on what was written, and no acks)
        self.client = ClientProtocol("r1", "alice", version=2)
        self.steps: list[dict[str, Any]] = []
        self.sent: dict[int, bytes] = {}  # tick -> the snapshot message sent for it
        self.prev: State | None = None
        self.returning: list[tuple[int, bytes]] = []  # (arrival tick, ack message)
        self.input_ack = 0
        w = dict(version=2, client_id=1, room="r1", game="arena", tick_rate=30.0, tick=0,
                 schema=schema.to_wire(), history=history, resume_token="n6Ohcp-DD0B2ZSALL3qw1ki5", resumed=False)
        w.update(welcome or {})
        self.deliver(p.pack_welcome(p.Welcome(**w)))

    # -- server side -------------------------------------------------------------------------

    def tick(self, t: int, *, send: bool = True, events: list[Any] = (), full: bool = False,
             ack_delay: int | None = 1) -> State:
        """Capture tick ``t``; unless ``send`` is False (a skipped snapshot), send it."""
        for at, ack in [a for a in self.returning if a[0] <= t]:
            self.returning.remove((at, ack))
            ev = p.parse_client(ack)
            self.acks.on_ack(ev.tick, ev.bits)
        state = State.capture(self.world, t, self.prev)
        self.prev = state
        self.hist.push(state)
        if not send:
            return state
        b, r = self.acks.choose(t, self.hist)
        if full:  # as past the room's payload cap: the shared full snapshot
            b, r = self.acks.restart()
        raw = encode_delta(self.schema, state, self.hist.get(b) if b != NO else None,
                           self.hist.get(r) if r != NO else None)
        flags, data = compress_payload(raw)
        msg = p.pack_snapshot(t, b, r, self.input_ack, flags, data, list(events))
        self.acks.on_sent(t, b)
        self.sent[t] = msg
        replies = self.deliver(msg, want=state)
        if ack_delay is not None:
            self.returning += [(t + ack_delay, m) for m in replies if p.unpack(m)[0] == p.Msg.ACK]
        return state

    # -- client side -------------------------------------------------------------------------

    def deliver(self, msg: bytes, *, want: State | None = None, why: str | None = None) -> list[bytes]:
        """Hand ``msg`` to the Python client and record what it made of it. ``why``: the
        message must be refused with a desync (and change nothing)."""
        c = self.client
        step: dict[str, Any] = {"msg": b64(msg)}
        self.steps.append(step)
        if why is not None:
            before = (c.tick, sorted(c.mirror._states))
            try:
                c.receive(msg, 0.0)
            except DesyncError:
                assert (c.tick, sorted(c.mirror._states)) == before and not c.outbox
                step["expect"] = {"desync": why}
                return []
            raise AssertionError(f"{self.name}: {why}: not refused")
        got = c.receive(msg, 0.0)
        replies, c.outbox[:] = c.outbox[:], []
        m = p.parse_server(msg)
        if isinstance(m, p.Welcome):
            step["expect"] = {"welcome": {
                "version": m.version, "client_id": m.client_id, "room": m.room, "game": m.game,
                "tick_rate": m.tick_rate, "tick": m.tick, "schema": m.schema, "history": m.history,
                "resume_token": m.resume_token, "resumed": m.resumed}}
        elif isinstance(m, p.ServerError):
            step["expect"] = {"error": {"code": m.code, "reason": m.reason}}
        else:
            upd = [e for e in got if isinstance(e, StateUpdated)]
            if want is not None:
                assert upd and upd[0].state.same_as(want) and upd[0].state.tick == want.tick, self.name
            mirror = c.mirror
            step["expect"] = {
                "snapshot": {"tick": m.tick, "base": m.base, "ref": m.ref, "input_ack": m.input_ack, "flags": m.flags},
                "state": state_json(self.schema, upd[0].state) if upd else None,
                "ack_bits": mirror.ack_bits(), "latest": mirror.tick, "held": sorted(mirror._states),
                "events": m.events, "replies": [b64(r) for r in replies],
            }
        return replies

    def desync(self, why: str, tick: int, base: int, ref: int, flags: int, payload: bytes) -> None:
        self.deliver(p.pack_snapshot(tick, base, ref, self.input_ack, flags, payload, []), why=why)

    def doc(self) -> dict[str, Any]:
        return {"name": self.name, "about": self.about, "steps": self.steps}


# ---- sequences ---------------------------------------------------------------------------------

class _ArenaRoom:
    """What the arena game uses of its room (gamesync.game.RoomAPI), for one watching client."""

    name, tick, tick_rate = "r1", 0, 30.0

    def __init__(self, world: World) -> None:
        self.world = world
        self.events: list[Any] = []  # for client 1, until its next snapshot
        self.client_ids: list[int] = []

    def send(self, client_id: int, data: Any) -> None:
        if client_id == 1:
            self.events.append([p.Ev.EVENT, data])

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        if exclude != 1:
            self.events.append([p.Ev.EVENT, data])

    def take(self) -> list[Any]:
        out, self.events = self.events, []
        return out


def seq_arena() -> dict[str, Any]:
    """The real arena game (24 NPCs walking and resting, players steering), one client keeping up."""
    game = Arena(npcs=24, seed=7)
    room = _ArenaRoom(World(game.schema))
    game.setup(room)
    link = Link("arena", "the arena game (24 NPCs that start and stop walking, 3 players: one joins, one "
                "leaves and one takes its slot in the same tick); the client keeps up, acks arrive one or "
                "two ticks later: baselines T-1/T-2 with references", game.schema, room.world)
    rng = np.random.default_rng(11)
    game.on_join(1, "alice")
    seq = 0
    moves = {0: [1, 0], 8: [0, 1], 15: [0, 0], 20: [-1, -1], 27: [1, -1]}
    move = [0, 0]
    for t in range(36):
        room.tick = t
        ev = room.take()
        if t == 6:
            game.on_join(2, "bob")
            ev.append([p.Ev.JOINED, 2, "bob"])
        if t == 18:  # bob leaves and carol comes in: bob's slot goes to a new entity
            game.on_leave(2)
            game.on_join(3, "carol")
            ev += [[p.Ev.LEFT, 2], [p.Ev.JOINED, 3, "carol"]]
        if t == 4:
            ev.append([p.Ev.PONG, 1234.5])
        if t == 11:
            ev.append([p.Ev.RELIABLE, {"m": 1}, 1])
        if t == 13:
            ev.append([p.Ev.MESSAGE_ACK, 1])
        move = moves.get(t, move)
        inputs: dict[int, list[p.InputFrame]] = {}
        if t >= 1:  # one input per tick: the seq lands in the player's `ack` field (linear)
            seq += 1
            inputs[1] = [p.InputFrame(seq, move)]
            if t in (9, 23):  # two in one tick
                seq += 1
                inputs[1].append(p.InputFrame(seq, move))
        if t >= 7 and 2 in game.players:
            inputs[2] = [p.InputFrame(t, [0, 1])]
        game.step(t, inputs, 1 / 30)
        link.input_ack = seq
        link.tick(t, events=ev, ack_delay=1 if rng.random() < 0.8 else 2)
    return link.doc()


class Sim:
    """A world of a few entities of ``schema`` moving at constant velocity, with wraps, jumps,
    stops, spawns and despawns, from a seeded rng. Int fields move in exact integer steps
    (modulo 2**32 for u4/i4), floats in whole grid steps, angles in radians."""

    def __init__(self, schema: Schema, seed: int, n: int) -> None:
        self.schema = schema
        self.rng = np.random.default_rng(seed)
        self.w = World(schema)
        self.vel = {f.name: np.zeros(4096) for f in schema}
        self.spawn(n)

    def live(self) -> np.ndarray:
        return np.flatnonzero(self.w.alive[: self.w.n])

    def _rand(self, f: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Initial values and velocities of ``k`` new entities for field ``f``."""
        r = self.rng
        if f.kind == "float":
            lv = f.levels
            return (f.lo + r.integers(0, lv + 1, k) * f.step, r.integers(-3, 4, k) * f.step * max(1, lv // 60000))
        if f.kind == "angle":
            return r.uniform(0, TAU, k), r.uniform(-0.4, 0.4, k)
        info = np.iinfo(f.wire_dtype)
        lo, hi = int(info.min), int(info.max)
        if f.wire_dtype.itemsize == 4:  # start near the ends of the range: linear motion wraps
            start = np.where(r.random(k) < 0.5, hi - r.integers(0, 300, k), lo + r.integers(0, 300, k))
            return start, r.integers(-60, 61, k)
        return r.integers(lo, hi + 1, k), r.integers(-2, 3, k)

    def spawn(self, k: int) -> None:
        vals, vels = {}, {}
        for f in self.schema:
            vals[f.name], vels[f.name] = self._rand(f, k)
        slots = self.w.spawn(k, **vals)
        for name, v in vels.items():
            self.vel[name][slots] = v

    def move(self) -> None:
        n, w = self.w.n, self.w
        for f in self.schema:
            v = self.vel[f.name][:n]
            if f.predict == "hold":
                continue
            col = w[f.name]
            if f.kind == "float":
                col[:n] = np.clip(col[:n].astype(np.float64) + v, f.lo, f.hi)
            elif f.kind == "angle":
                col[:n] = np.remainder(col[:n].astype(np.float64) + v, TAU)
            elif f.wire_dtype.itemsize == 4:  # wraps modulo 2**32
                info = np.iinfo(f.wire_dtype)
                col[:n] = (col[:n].astype(np.int64) + v.astype(np.int64) - int(info.min)) % (1 << 32) + int(info.min)
            else:
                info = np.iinfo(f.wire_dtype)
                col[:n] = np.clip(col[:n].astype(np.int64) + v.astype(np.int64), int(info.min), int(info.max))

    def jump(self, k: int = 2) -> None:
        """Jumps that prediction cannot see: 32-bit fields by more than 2**31, others across their range."""
        live = self.live()
        who = self.rng.choice(live, min(k, live.size), replace=False)
        for f in self.schema:
            col = self.w[f.name]
            if f.kind == "int" and f.wire_dtype.itemsize == 4:
                info = np.iinfo(f.wire_dtype)
                col[who] = (col[who].astype(np.int64) + 3_000_000_000 - int(info.min)) % (1 << 32) + int(info.min)
            elif f.kind == "angle":
                col[who] = np.remainder(col[who] + math.pi, TAU)
            elif f.kind == "float":
                col[who] = np.where(col[who] > (f.lo + f.hi) / 2, f.lo, f.hi)
            else:
                info = np.iinfo(f.wire_dtype)
                col[who] = np.where(col[who] > 0, int(info.min), int(info.max))

    def steer(self, k: int = 3) -> None:
        """Some entities change velocity (starting, stopping, turning)."""
        live = self.live()
        who = self.rng.choice(live, min(k, live.size), replace=False)
        for f in self.schema:
            _, v = self._rand(f, who.size)
            self.vel[f.name][who] = v * (self.rng.random(who.size) < 0.7)

    def despawn(self, k: int) -> None:
        live = self.live()
        self.w.despawn(self.rng.choice(live, min(k, live.size), replace=False))


MIXED = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2
    Float("z", -1e6, 1e6, 1 / 1024),  # <u4: a 32-bit float
    Angle("tiny", 3),  # modulus 8 in a <u1
    Angle("heading", 12, predict="hold"),
    Angle("spin", 32),  # <u4 angle: modulo 2**32
    Int("hp", "u1", predict="hold"),
    Int("t", "i1"),
    Int("s", "i2"),
    Int("u", "u2"),
    Int("score", "i4"),
    Int("big", "u4"),
])


def seq_lossy() -> dict[str, Any]:
    """Every field kind; skipped sends and late, missing acks: baselines 1 to 5 ticks back."""
    sim = Sim(MIXED, 21, 9)
    link = Link("lossy", "every field kind and wire dtype (hold and linear); the server skips snapshots, acks "
                "arrive 1 to 4 ticks late or not at all: baselines and references several ticks apart, "
                "references from a baseline's own baseline", MIXED, sim.w)
    r = sim.rng
    for t in range(44):
        if t:
            sim.move()
            u = r.random()
            if u < 0.15:
                sim.spawn(int(r.integers(1, 3)))
            elif u < 0.25:
                sim.despawn(int(r.integers(1, 3)))
            elif u < 0.32:  # despawn and spawn in one tick: slots reused by new entities
                sim.despawn(2)
                sim.spawn(2)
            elif u < 0.42:
                sim.jump()
            elif u < 0.6:
                sim.steer()
        delay = None if r.random() < 0.15 else int(r.integers(1, 5))
        link.input_ack += int(r.integers(0, 2))
        link.tick(t, send=t == 0 or r.random() < 0.7, ack_delay=delay)
    return link.doc()


WRAP32 = Schema([
    Int("big", "u4"),
    Int("score", "i4"),
    Angle("spin", 32),
    Float("far", 0, 4_000_000, 1 / 1024),  # <u4 float: values above 2**31
    Int("flag", "u4", predict="hold"),
])


def seq_wrap32() -> dict[str, Any]:
    """32-bit fields wrapping under linear prediction, for every (T - B, B - R) in 1..4 x 1..3."""
    sim = Sim(WRAP32, 32, 6)
    w = sim.w
    n = w.n
    w["big"][:n] = [4294967290, 4294967000, 5, 100, 3000000000, 2147483600]
    sim.vel["big"][:n] = [7, 61, -3, -37, 0, 29]
    w["score"][:n] = [2147483640, -2147483600, 0, 2147483000, -5, 100]
    sim.vel["score"][:n] = [3, -17, -1, 59, 1, -4]
    w["far"][:n] = [3_999_000.0, 100.0, 2_500_000.0, 2_097_152.0, 0.0, 1_000_000.0]
    sim.vel["far"][:n] = [0.25, 1.0, -0.5, 0.25, 0.0, -2.0]
    w["flag"][:n] = [0, 1, 4294967295, 2147483648, 7, 9]
    link = Link("wrap32", "32-bit fields (<u4 and <i4 ints, a 32-bit angle, a <u4 float, a hold <u4) near the "
                "ends of their range, wrapping under constant velocity, with jumps of more than 2**31 and "
                "velocity changes; a send schedule that gives every (T-B, B-R) in 1..4 x 1..3", WRAP32, w)
    gaps = [1, 1, 2, 1, 3, 1, 4, 2, 2, 3, 2, 4, 3, 3, 4, 1, 1]
    sends, t = {0}, 0
    for g in gaps:
        t += g
        sends.add(t)
    for t in range(max(sends) + 1):
        if t:
            sim.move()
            if t in (9, 20):
                sim.jump(2)
            if t in (5, 14, 26):
                sim.steer(2)
            if t == 17:
                w["flag"][[0, 3]] = [4294967295, 1]
        link.input_ack = t
        link.tick(t, send=t in sends, ack_delay=1)
    return link.doc()


SMALL = Schema([
    Float("x", 0, 100, 1 / 16),  # <u2
    Float("y", 0, 100, 1 / 16),
    Angle("heading", 8, predict="hold"),  # <u1
    Int("hp", "u1", predict="hold"),
    Int("team", "i1", predict="hold"),
    Int("tag", "u2"),
])


def seq_resets() -> dict[str, Any]:
    """A resumed seat in a room at tick 100 with a history of 4: full snapshots while no ack
    has come back, when the baseline has left the history and past the payload cap; a stale
    duplicate; the error that ends the connection."""
    sim = Sim(SMALL, 43, 10)
    link = Link("resets", "a resumed seat (client 7) joining at tick 100, history 4: full snapshots until the "
                "first ack arrives, when acks come back later than the history reaches, and when the room "
                "is past its payload cap; a snapshot delivered twice (ignored the second time, its events "
                "handled again); every event kind; ended by a going_away error", SMALL, sim.w, history=4,
                welcome=dict(client_id=7, tick=100, resume_token="Q1w2E3r4T5y6U7i8O9p0AsDf", resumed=True,
                             tick_rate=20))
    plan = {
        100: dict(ack_delay=3, events=[[p.Ev.JOINED, 3, "bob"], [p.Ev.JOINED, 5, "Zoë 🎮"]]),
        101: dict(ack_delay=3, events=[[p.Ev.EVENT, {"you": 4}]]),
        102: dict(ack_delay=3),
        106: dict(events=[[p.Ev.RELIABLE, {"quest": "done", "xp": 1.5}, 11], [p.Ev.PONG, 987.25]]),
        108: dict(full=True),
        110: dict(ack_delay=6),
        111: dict(ack_delay=6),
        112: dict(ack_delay=6, events=[[p.Ev.LEFT, 3]]),
        113: dict(ack_delay=6),
        114: dict(send=False),
        115: dict(events=[[p.Ev.MESSAGE_ACK, 2], [p.Ev.EVENT, [1, None, True, "x"]]]),
    }
    for t in range(100, 126):
        if t > 100:
            sim.move()
            if t % 3 == 0:
                sim.steer(2)
            if t in (104, 117):
                sim.despawn(2)
                sim.spawn(3)
        link.input_ack = t - 95
        link.tick(t, **plan.get(t, {}))
        if t == 107:  # the tick-106 snapshot (with its reliable message) arrives once more
            link.deliver(link.sent[106])
    link.deliver(pk([p.Msg.ERROR, "going_away", "server shutting down"]))
    return link.doc()


def seq_desync() -> dict[str, Any]:
    """Snapshots the client must refuse (and stay as it was): missing baseline or reference,
    payloads that do not decode; then the stream goes on."""
    sim = Sim(SMALL, 54, 6)
    link = Link("desync", "snapshots the client must refuse with a desync, leaving its states as they were: a "
                "baseline or reference it does not hold, bad deflate data, and payloads that break each "
                "rule of the decoder; the valid stream then goes on", SMALL, sim.w)
    for t in range(6):
        if t:
            sim.move()
        link.tick(t)
    c = link.client
    latest = c.mirror.latest
    t, L = latest.tick + 1, latest.tick
    nf, k = len(SMALL), int(latest.alive.sum())
    first = int(np.flatnonzero(latest.alive)[0])

    def body(**change: Any) -> list[Any]:  # a valid payload against L: nothing changed
        b = [latest.n, b"", b"", b"", [b""] * nf, [[0]] * nf, None]
        for i, v in change.items():
            b[int(i[1:])] = v
        return b

    ok = body()
    assert decode_delta(SMALL, pk(ok), t, latest).same_as(latest)

    def fields(enc: list[Any]) -> list[Any]:
        return [enc] + [[0]] * (nf - 1)

    u2 = lambda *v: np.asarray(v, "<u2").tobytes()  # noqa: E731
    u4 = lambda *v: np.asarray(v, "<u4").tobytes()  # noqa: E731
    i1 = lambda *v: np.asarray(v, "<i1").tobytes()  # noqa: E731
    link.desync("baseline not held", t, 0, NO, 0, pk(ok))
    link.desync("reference not held", t, L, 1, 0, pk(ok))
    link.desync("bad deflate data", t, L, NO, 1, b"\x78\x9c\x01\x02\x03garbage")
    link.desync("truncated payload", t, L, NO, 0, pk(ok)[:-3])
    link.desync("payload is not a 7-element array", t, L, NO, 0, pk(ok[:6]))
    link.desync("entity count shrank below the baseline", t, L, NO, 0, pk(body(_0=latest.n - 1)))
    link.desync("removed slot not alive in the baseline", t, L, NO, 0, pk(body(_1=u4(latest.n + 3))))
    link.desync("created slot still alive", t, L, NO, 0,
                pk(body(_2=u4(first), _3=u4(999), _4=[np.zeros(1, f.wire_dtype).tobytes() for f in SMALL])))
    link.desync("created ids count mismatch", t, L, NO, 0, pk(body(_0=latest.n + 1, _2=u4(latest.n), _3=u4(1, 2))))
    link.desync("bad residual dtype", t, L, NO, 0, pk(body(_5=fields([1, "<i3", bytes(k)]))))
    link.desync("residual count mismatch", t, L, NO, 0, pk(body(_5=fields([1, "<i1", bytes(k + 1)]))))
    link.desync("unknown field mode", t, L, NO, 0, pk(body(_5=fields([9]))))
    link.desync("sparse position out of range", t, L, NO, 0,
                pk(body(_5=fields([2, "<u2", u2(k), "<i1", i1(1)]))))
    link.desync("changed position out of range", t, L, NO, 0, pk(body(_6=["<u1", bytes([k])])))
    link.desync("changed positions not increasing", t, L, NO, 0, pk(body(_6=["<u1", bytes([0, 0])])))
    link.desync("bad changed dtype", t, L, NO, 0, pk(body(_6=["<i1", bytes([0])])))
    alive = np.flatnonzero(latest.alive)
    link.desync("removed slots not ascending", t, L, NO, 0, pk(body(_1=u4(alive[1], alive[0]))))
    link.desync("removed slot listed twice", t, L, NO, 0, pk(body(_1=u4(alive[0], alive[0]))))
    link.desync("created slots not ascending", t, L, NO, 0,
                pk(body(_0=latest.n + 2, _2=u4(latest.n + 1, latest.n), _3=u4(998, 999),
                        _4=[np.zeros(2, f.wire_dtype).tobytes() for f in SMALL])))
    link.desync("sparse position listed twice", t, L, NO, 0,
                pk(body(_5=fields([2, "<u2", u2(0, 0), "<i1", i1(1, 1)]))))
    link.desync("outlier positions not ascending", t, L, NO, 0,
                pk(body(_5=fields([4, bytes(k), "<u2", u2(1, 0), np.asarray([500, 500], "<i4").tobytes()]))))
    for t in range(6, 10):
        sim.move()
        link.tick(t)
    return link.doc()


MODES = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2, linear
    Float("y", 0, 1000, 1 / 64),
    Angle("a", 10),  # <u2, modulus 1024
    Int("hp", "u1", predict="hold"),
    Int("score", "i4", predict="hold"),
])


def seq_modes() -> dict[str, Any]:
    """Hand-made changes that give every field mode and changed-list dtype the server uses."""
    r = np.random.default_rng(65)
    w = World(MODES)
    n0 = 260  # > 256 kept entities: a changed-list gap that needs <u2
    grid = 1 / 64
    w.spawn(n0, x=r.integers(0, 20000, n0) * grid, y=r.integers(0, 50000, n0) * grid,
            a=r.integers(0, 1024, n0) * (TAU / 1024), hp=100, score=r.integers(-(1 << 31), 1 << 31, n0))
    link = Link("modes", "hand-made changes for every field mode (0 same, 1 dense <i1/<i2/<i4, 2 sparse with "
                "<i1 and <i4 values, 3 absolute, 4 int8 + outliers), changed lists nil, <u1 and <u2, "
                "a 200-entity despawn and slot reuse", MODES, w)
    vx = np.zeros(4096)
    vy = np.zeros(4096)
    va = np.zeros(4096)
    for t in range(12):
        n = w.n
        live = np.flatnonzero(w.alive[:n])
        if t == 2:  # 3 entities start moving: kept positions 1, 258, 259, gaps 1, 257, 1 -> <u2
            vx[[1, 258, 259]] = 3 * grid
        if t == 3:  # 200 despawn; 30 of the rest lose hp, their score moves a little, 3 by a lot
            w.despawn(np.arange(20, 220))
            live = np.flatnonzero(w.alive[:n])
            who = live[::2][:30]
            w["hp"][who] -= r.integers(1, 50, who.size).astype(np.uint8)
            w["score"][who] += r.integers(-100, 100, who.size).astype(np.int32) | 1
            w["score"][who[[4, 11, 20]]] += 100_000
        if t == 4:  # 6 still ones teleport by 40000 grid steps: residuals need <i4, values <u2
            who = [i for i in live if w["x"][i] < 300 and vx[i] == 0][:6]
            w["x"][who] += 40000 * grid
        if t == 6:  # 25 start moving in y (dense <i1); among them hp (sparse <i1) and score (sparse <i4)
            who = live[:25]
            vy[who] = grid
            w["hp"][who[[3, 17]]] -= 7
            w["score"][who[9]] += 70_000
        if t == 7:  # more than half turn: changed list nil, angles wrap modulo 1024
            va[live[: 2 * live.size // 3]] = 5 * TAU / 1024
        if t == 8:  # 12 y jumps of 300 steps: dense <i2
            who = live[30:42]
            w["y"][who] += 300 * grid
        if t == 9:  # 10 scores by 100000: dense <i4; slots reused and new ones
            w["score"][live[40:50]] += 100_000
            w.despawn(live[[0, 5]])
            w.spawn(5, x=10.0, y=20.0, hp=50, score=-1)
        n = w.n
        w["x"][:n] += vx[:n]
        w["y"][:n] += vy[:n]
        w["a"][:n] = np.remainder(w["a"][:n].astype(np.float64) + va[:n], TAU)
        link.tick(t)
    return link.doc()


# ---- client messages and refusals -------------------------------------------------------------

def _join(room: str, name: str, opts: dict[str, Any] | None = None) -> bytes:
    o = opts or {}
    return p.pack_join(room, name, o.get("game"), token=o.get("token"), resume=o.get("resume"))


BUILDERS: dict[str, Callable[..., bytes]] = {
    "packJoin": _join, "packInput": p.pack_input, "packAck": p.pack_ack, "packMessage": p.pack_message,
    "packMessageAck": p.pack_message_ack, "packPing": p.pack_ping, "packLeave": p.pack_leave,
}

CLIENT_CALLS: list[tuple[str, list[Any]]] = [
    ("packJoin", ["r1", "alice"]),
    ("packJoin", ["r1", "alice", {"game": "arena"}]),
    ("packJoin", ["r1", "alice", {"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwMSJ9.c2ln"}]),
    ("packJoin", ["r1", "alice", {"resume": "n6Ohcp-DD0B2ZSALL3qw1ki5"}]),
    ("packJoin", ["lobby ✨", "Zoë 🎮", {"game": "arena", "token": "t", "resume": "r"}]),
    ("packJoin", ["r" * 64, "🎮" * 64]),  # 64 code points, 128 UTF-16 units
    ("packInput", [1, [0, -1]]),
    ("packInput", [5, [1, 0], 120, 2147483651]),
    ("packInput", [6, [1, 0], 120]),
    ("packInput", [7, {"k": "fire", "at": [1.5, -2]}, 121, 1]),
    ("packInput", [2 ** 53 - 1, None, 2 ** 40, 4294967295]),
    ("packAck", [120, 5]),
    ("packAck", [120]),
    ("packAck", [0, 2147483648]),
    ("packMessage", [{"chat": "gg"}, 7]),
    ("packMessage", ["hi"]),
    ("packMessage", [None, 0]),
    ("packMessageAck", [3]),
    ("packPing", [1234.5]),
    ("packPing", [7]),
    ("packLeave", []),
]


def client_messages() -> list[dict[str, Any]]:
    out = []
    for call, args in CLIENT_CALLS:
        data = BUILDERS[call](*args)
        p.parse_client(data)  # what the server accepts
        out.append({"call": call, "args": args, "bytes": b64(data)})
    return out


SCHEMA_WIRE = SMALL.to_wire()
SNAP_OK = [4, 5, 3, 2, 0, 0, b"\x97", []]
WELCOME_OK = [2, 2, 1, "r1", "arena", 30.0, 0, SCHEMA_WIRE, 32, "tok", False]


def _with(msg: list[Any], i: int, v: Any) -> list[Any]:
    m = list(msg)
    m[i] = v
    return m


BAD_SERVER: list[tuple[str, bytes]] = [
    ("malformed msgpack", b"\x93\x04\x05"),
    ("not an array", pk({"type": 4})),
    ("empty array", pk([])),
    ("type is not an int", pk(["4", 1])),
    ("unknown type 9", pk([9])),
    ("client message type (ack)", pk([5, 1])),
    ("extension type", pk([10, msgpack.ExtType(5, b"x"), "r"])),
    ("timestamp extension", msgpack.packb([10, msgpack.Timestamp(1, 0), "r"], use_bin_type=True, datetime=False)),
    ("non-string map key", pk([2, 2, 1, "r1", "arena", 30.0, 0, [{1: "x"}], 32])),
    ("snapshot with 7 fields", pk(SNAP_OK[:7])),
    ("snapshot with 9 fields", pk(SNAP_OK + [0])),
    ("snapshot tick negative", pk(_with(SNAP_OK, 1, -2))),
    ("snapshot tick beyond 2^53-1", pk(_with(SNAP_OK, 1, 2 ** 53))),
    ("snapshot tick a string", pk(_with(SNAP_OK, 1, "5"))),
    ("snapshot baseline not before its tick", pk(_with(SNAP_OK, 2, 5))),
    ("snapshot baseline below -1", pk(_with(SNAP_OK, 2, -2))),
    ("snapshot reference not before the baseline", pk(_with(SNAP_OK, 3, 3))),
    ("snapshot reference without a baseline", pk(_with(_with(SNAP_OK, 2, -1), 3, 0))),
    ("snapshot input_ack negative", pk(_with(SNAP_OK, 4, -1))),
    ("snapshot flags negative", pk(_with(SNAP_OK, 5, -1))),
    ("snapshot payload a string", pk(_with(SNAP_OK, 6, "payload"))),
    ("snapshot events a map", pk(_with(SNAP_OK, 7, {}))),
    ("welcome with 7 fields", pk(WELCOME_OK[:8])),
    ("welcome client id 0", pk(_with(WELCOME_OK, 2, 0))),
    ("welcome room empty", pk(_with(WELCOME_OK, 3, ""))),
    ("welcome room of 65 code points", pk(_with(WELCOME_OK, 3, "é" * 65))),
    ("welcome game not a string", pk(_with(WELCOME_OK, 4, 1))),
    ("welcome tick rate 0", pk(_with(WELCOME_OK, 5, 0))),
    ("welcome tick rate a string", pk(_with(WELCOME_OK, 5, "30"))),
    ("welcome tick negative", pk(_with(WELCOME_OK, 6, -1))),
    ("welcome schema not an array", pk(_with(WELCOME_OK, 7, {"x": 1}))),
    ("welcome schema entry not a map", pk(_with(WELCOME_OK, 7, [["x"]]))),
    ("welcome history 0", pk(_with(WELCOME_OK, 8, 0))),
    ("welcome resume token not a string", pk(_with(WELCOME_OK, 9, 5))),
    ("welcome resume token empty", pk(_with(WELCOME_OK, 9, ""))),
    ("welcome resumed not a boolean", pk(_with(WELCOME_OK, 10, 1))),
    ("error with 1 field", pk([10, "protocol"])),
    ("error with 3 fields", pk([10, "protocol", "x", "y"])),
    ("error code not a string", pk([10, 1002, "x"])),
]


def _schema_with(i: int, **change: Any) -> list[dict[str, Any]]:
    s = [dict(f) for f in SCHEMA_WIRE]
    s[i].update(change)
    return [{k: v for k, v in f.items() if v is not None} for f in s]


BAD_SCHEMAS: list[tuple[str, list[dict[str, Any]]]] = [
    ("unknown kind", _schema_with(0, kind="vector")),
    ("unknown predict", _schema_with(0, predict="cubic")),
    ("name not an identifier", _schema_with(0, name="x pos")),
    ("name not a string", _schema_with(0, name=5)),
    ("reserved name", _schema_with(1, name="id")),
    ("duplicate names", _schema_with(1, name="x")),
    ("float without step", _schema_with(0, step=None)),
    ("float with hi below lo", _schema_with(0, lo=10.0, hi=5.0)),
    ("float with step 0", _schema_with(0, step=0.0)),
    ("float with more than 2**32 levels", _schema_with(0, step=1e-9, wire="<u4")),
    ("angle of 1 bit", _schema_with(2, bits=1, wire="<u1")),
    ("angle of 33 bits", _schema_with(2, bits=33, wire="<u4")),
    ("int with an unknown wire dtype", _schema_with(3, wire="<u8")),
]

BAD_EVENTS: list[tuple[str, Any]] = [
    ("not an array", "x"),
    ("empty", []),
    ("unknown kind", [9, 1]),
    ("event without data", [0]),
    ("event with 2 values", [0, 1, 2]),
    ("reliable without ack id", [1, "d"]),
    ("reliable with a negative ack id", [1, "d", -1]),
    ("reliable with a string ack id", [1, "d", "3"]),
    ("joined without name", [2, 1]),
    ("joined with a numeric name", [2, 1, 5]),
    ("left with a string id", [3, "x"]),
    ("message_ack without id", [4]),
    ("pong with a string time", [5, "t"]),
]


def refusals() -> dict[str, list[dict[str, Any]]]:
    bad_server = []
    for why, data in BAD_SERVER:
        try:
            p.parse_server(data)
        except ProtocolViolation:
            bad_server.append({"why": why, "msg": b64(data)})
            continue
        raise AssertionError(f"parse_server accepted: {why}")
    bad_welcomes = []
    for why, schema in BAD_SCHEMAS:
        data = pk(_with(WELCOME_OK, 7, schema))
        p.parse_server(data)  # a well-formed welcome ...
        try:
            ClientProtocol("r1", "a").receive(data, 0.0)  # ... whose schema the client refuses
        except ProtocolViolation:
            bad_welcomes.append({"why": why, "msg": b64(data)})
            continue
        raise AssertionError(f"the client accepted the schema: {why}")
    bad_events = []
    for why, ev in BAD_EVENTS:
        try:
            ClientProtocol("r1", "a")._event(ev, 0.0)
        except ProtocolViolation:
            bad_events.append({"why": why, "event": b64(pk(ev))})
            continue
        raise AssertionError(f"the client accepted the event: {why}")
    return {"bad_server_messages": bad_server, "bad_welcomes": bad_welcomes, "bad_events": bad_events}


# ---- coverage: what the sequences exercise, checked and summed up in the file ------------------------

def coverage(seqs: list[dict[str, Any]]) -> dict[str, Any]:
    c: Counter[str] = Counter()
    pairs: set[tuple[int, int]] = set()
    for s in seqs:
        last: dict[int, dict[str, int]] = {}  # id -> field -> value, of the previous state
        schema = None
        for step in s["steps"]:
            e = step["expect"]
            if "welcome" in e:
                schema = Schema.from_wire(e["welcome"]["schema"])
                c["welcomes"] += 1
                c["resumed welcomes"] += e["welcome"]["resumed"]
                continue
            if "desync" in e:
                c["desync cases"] += 1
                continue
            if "error" in e:
                c["errors"] += 1
                continue
            c["snapshots"] += 1
            sn, st = e["snapshot"], e["state"]
            if st is None:
                c["ignored (stale)"] += 1
                continue
            msg = msgpack.unpackb(base64.b64decode(step["msg"]), raw=False)
            c["compressed"] += bool(sn["flags"] & 1)
            raw = zlib.decompress(msg[6]) if sn["flags"] & 1 else msg[6]
            body = msgpack.unpackb(raw, raw=False)
            if sn["base"] == NO:
                c["full"] += 1
            else:
                c["with reference" if sn["ref"] != NO else "delta without reference"] += 1
                if sn["ref"] != NO:
                    pairs.add((sn["tick"] - sn["base"], sn["base"] - sn["ref"]))
                rm = len(body[1]) // 4
                c["removed entities"] += rm
                c["created entities (deltas)"] += len(body[2]) // 4
                c["slots reused"] += len(set(np.frombuffer(body[1], "<u4")) & set(np.frombuffer(body[2], "<u4")))
            c[f"changed list {body[6][0] if body[6] else 'nil'}"] += 1
            for f, enc in zip(schema or [], body[5]):
                mode = enc[0]
                tag = {1: f" {enc[1] if mode == 1 else ''}", 2: f" {enc[3] if mode == 2 else ''}"}.get(mode, "")
                c[f"mode {mode}{tag}"] += 1
                if mode and f.predict == "hold":
                    c["hold field residuals"] += 1
            ids = st["ids"]
            for f in schema or []:
                if f.wire_dtype.itemsize != 4:
                    continue
                for i, v in zip(ids, st["fields"][f.name]):
                    old = last.get(i, {}).get(f.name)
                    if old is None:
                        continue
                    d = (v - old) % (1 << 32)
                    if d != 0 and ((d < 1 << 20 and v < old) or (d > (1 << 32) - (1 << 20) and v > old)):
                        c["32-bit wraps"] += 1
                    elif (1 << 31) - (1 << 28) < d < (1 << 31) + (1 << 28):
                        c["32-bit jumps near 2**31"] += 1
            last = {i: {f.name: st["fields"][f.name][j] for f in schema or []} for j, i in enumerate(ids)}
    need = {"mode 0", "mode 1 <i1", "mode 1 <i2", "mode 1 <i4", "mode 2 <i1", "mode 2 <i4", "mode 3", "mode 4",
            "changed list nil", "changed list <u1", "changed list <u2", "compressed", "full", "with reference",
            "delta without reference", "removed entities", "slots reused", "32-bit wraps", "ignored (stale)",
            "desync cases", "resumed welcomes", "hold field residuals", "32-bit jumps near 2**31"}
    missing = need - {k for k, v in c.items() if v}
    assert not missing, f"the vectors miss {sorted(missing)}"
    every = {(tb, br) for tb in range(1, 5) for br in range(1, 4)}
    assert every <= pairs, f"(T-B, B-R) pairs missing: {sorted(every - pairs)}"
    return {**dict(sorted(c.items())), "(T-B, B-R) pairs": sorted(list(x) for x in pairs)}


# ---- the file ------------------------------------------------------------------------------

def _dump(v: Any, depth: int = 0, key: str = "") -> str:
    """JSON with one line per step, client message and refusal (diffable, still compact)."""
    expand = depth <= 1 or key == "steps" or (isinstance(v, dict) and "steps" in v)
    if not expand or not isinstance(v, (dict, list)) or not v:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    pad = " " * (depth + 1)
    if isinstance(v, dict):
        body = ",\n".join(f"{pad}{json.dumps(k)}: {_dump(x, depth + 1, k)}" for k, x in v.items())
        return "{\n" + body + "\n" + " " * depth + "}"
    return "[\n" + ",\n".join(pad + _dump(x, depth + 1) for x in v) + "\n" + " " * depth + "]"


def build() -> dict[str, Any]:
    seqs = [seq_arena(), seq_lossy(), seq_wrap32(), seq_resets(), seq_desync(), seq_modes()]
    return {
        "about": __doc__.split("\n\n")[0].replace("\n", " "),
        "generator": "tests/vectors/make_vectors.py",
        "protocol_version": p.PROTOCOL_VERSION,
        "coverage": coverage(seqs),
        "client_messages": client_messages(),
        **refusals(),
        "sequences": seqs,
        **view_sections(),
    }


def render() -> str:
    return _dump(build()) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    text = render()
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(text.encode()):,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
