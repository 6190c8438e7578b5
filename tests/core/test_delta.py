"""The predictive delta codec (gamesync.core.delta): exactness, compactness, robustness.

The central property: whatever baseline ``B`` and reference ``R`` the server picks among
the states a client holds, and whatever the network loses or reorders, the state the client
decodes (from its *own* decoded states) is bit-for-bit the state the server captured.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesync.core.delta import (
    COMPRESS_MIN,
    FLAG_DEFLATE,
    MODE_ABSOLUTE,
    MODE_DENSE,
    MODE_DENSE_OUTLIERS,
    MODE_SAME,
    MODE_SPARSE,
    PayloadError,
    compress_payload,
    decode_delta,
    decompress_payload,
    encode_delta,
)
from gamesync.core.schema import TAU, Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.world import World

SCHEMA = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2, multiples of 1/64 are exact in float32
    Float("y", -50, 50, 0.01),  # <u2, inexact step
    Float("z", -1e6, 1e6, 1 / 1024),  # <u4: residuals beyond int32 with extrapolation
    Angle("a", 12),
    Angle("spin", 32),  # half-modulus 2**31: wrapped residuals use the full int32 range
    Angle("tiny", 3),  # modulus 8: wraps all the time
    Int("hp", "u1"),
    Int("score", "i4"),
    Int("big", "u4"),  # jumps 0 <-> 4e9 need absolute mode
    Int("t", "i1"),
])
NF = len(SCHEMA)
VEL_CAP = 4096
MAX_N = 900


def _body(raw: bytes) -> list:
    return msgpack.unpackb(raw, raw=False, use_list=True)


def _modes(raw: bytes) -> list[int]:
    return [enc[0] for enc in _body(raw)[5]]


def _changed(raw: bytes) -> list[int] | None:
    """The payload's changed list as positions in the kept list (None: every kept entity)."""
    ch = _body(raw)[6]
    return None if ch is None else np.cumsum(np.frombuffer(ch[1], dtype=ch[0])).tolist()


def _roundtrip(schema: Schema, cur: State, base: State | None, ref: State | None,
               cbase: State | None = None, cref: State | None = None) -> State:
    """Encode against the server's states, ship, decode against the client's copies."""
    raw = encode_delta(schema, cur, base, ref)
    flags, data = compress_payload(raw)
    got = decode_delta(schema, decompress_payload(flags, data), cur.tick,
                       base if cbase is None else cbase, ref if cref is None else cref)
    return got


# ---- the simulated game -------------------------------------------------------------------------

class Sim:
    """A world whose entities move, clamp, wrap, jump, die and respawn, driven by a seeded rng."""

    def __init__(self, rng: np.random.Generator, initial: int) -> None:
        self.rng = rng
        self.w = World(SCHEMA)
        self.vel = {f.name: np.zeros(VEL_CAP) for f in SCHEMA}
        self.spawn(initial)

    def live(self) -> np.ndarray:
        return np.flatnonzero(self.w.alive[: self.w.n])

    def spawn(self, k: int) -> None:
        k = min(k, MAX_N - self.w.count)
        if k <= 0:
            return
        r = self.rng
        vals = dict(
            x=r.integers(-640, 64640, k) / 64,
            y=r.uniform(-60, 60, k),
            z=r.uniform(-1.1e6, 1.1e6, k),
            a=r.uniform(-10, 10, k),
            spin=r.uniform(-10, 10, k),
            tiny=r.uniform(-10, 10, k),
            hp=r.integers(0, 256, k),
            score=r.integers(-(1 << 31), 1 << 31, k),
            big=r.integers(0, 1 << 32, k),
            t=r.integers(-128, 128, k),
        )
        if r.random() < 0.3:  # some spawns at exact range ends
            vals["x"][:] = r.choice([0.0, 1000.0])
            vals["big"][:] = r.choice([0, (1 << 32) - 1])
        slots = self.w.spawn(k, **vals)
        moving = r.random(k) < 0.7
        v = self.vel
        v["x"][slots] = r.integers(-64, 65, k) / 64 * moving
        v["y"][slots] = r.uniform(-0.5, 0.5, k) * moving
        v["z"][slots] = np.where(r.random(k) < 0.5, r.integers(-4096, 4097, k) / 1024, r.uniform(-1e4, 1e4, k)) * moving
        v["a"][slots] = r.integers(-300, 301, k) * (TAU / 4096) * moving
        v["spin"][slots] = r.uniform(-0.5, 0.5, k) * moving
        v["tiny"][slots] = r.integers(-3, 4, k) * (TAU / 8) * moving
        v["hp"][slots] = r.integers(-3, 4, k) * moving
        v["score"][slots] = r.integers(-1000, 1001, k) * moving
        v["big"][slots] = r.integers(-5000, 5001, k) * moving
        v["t"][slots] = r.integers(-2, 3, k) * moving

    def despawn(self, k: int) -> None:
        live = self.live()
        if live.size:
            self.w.despawn(self.rng.choice(live, min(k, live.size), replace=False))

    def move(self) -> None:
        n, w, v = self.w.n, self.w, self.vel
        for name in ("x", "y", "z", "a", "spin", "tiny"):
            col = w[name]
            new = col[:n].astype(np.float64) + v[name][:n]
            if name in ("a", "spin", "tiny"):
                new = np.where(np.abs(new) > 30, np.remainder(new, TAU), new)
            col[:n] = new
        for name, lo, hi in (("x", -20, 1020), ("y", -60, 60), ("z", -1.2e6, 1.2e6)):
            out = (w[name][:n] < lo) | (w[name][:n] > hi)
            v[name][:n][out] *= -1  # bounce back after clamping for a while
        for name in ("hp", "score", "t"):
            info = np.iinfo(w[name].dtype)
            new = w[name][:n].astype(np.int64) + v[name][:n].astype(np.int64)
            w[name][:n] = np.clip(new, int(info.min), int(info.max))
        w["big"][:n] = (w["big"][:n].astype(np.int64) + v["big"][:n].astype(np.int64)) % (1 << 32)

    def jump(self) -> None:
        live = self.live()
        if not live.size:
            return
        r = self.rng
        who = r.choice(live, min(live.size, int(r.integers(1, 6))), replace=False)
        w = self.w
        w["big"][who] = np.where(w["big"][who] > (1 << 31), 0, (1 << 32) - 1 - r.integers(0, 10, who.size))
        w["z"][who] = -np.sign(w["z"][who] + 0.5) * 9.9e5
        w["score"][who] = np.where(w["score"][who] > 0, -(1 << 31), (1 << 31) - 1)
        w["spin"][who] += math.pi
        w["a"][who] = r.uniform(-100, 100, who.size)
        w["x"][who] = r.choice([0.0, 999.0, 500.0], who.size)

    def clamp(self) -> None:
        live = self.live()
        if not live.size:
            return
        who = self.rng.choice(live, min(live.size, 4), replace=False)
        self.w["x"][who] = self.rng.choice([-500.0, 2000.0, 1e9], who.size)
        self.w["y"][who] = self.rng.choice([-1e4, 1e4], who.size)
        self.w["hp"][who] = self.rng.choice([0, 255], who.size)

    def perturb(self) -> None:
        n = self.w.n
        self.w["x"][:n] += self.rng.integers(-3, 4, n) / 64
        self.w["t"][:n] = self.rng.integers(-128, 128, n)

    def freeze(self) -> None:
        live = self.live()
        who = live[self.rng.random(live.size) < 0.5]
        for v in self.vel.values():
            v[who] = 0

    def step(self, event: str) -> None:
        if event == "idle":
            return
        self.move()
        r = self.rng
        if event == "spawn":
            self.spawn(int(r.integers(1, 6)))
        elif event == "despawn":
            self.despawn(int(r.integers(1, 6)))
        elif event == "respawn":  # same tick: freed slots are reused by new entities
            k = int(r.integers(1, 4))
            self.despawn(k)
            self.spawn(k)
        elif event == "burst":  # past the initial capacity: the world grows
            self.spawn(70)
        elif event == "kill_all":
            self.w.despawn(self.live())
        elif event == "jump":
            self.jump()
        elif event == "clamp":
            self.clamp()
        elif event == "perturb":
            self.perturb()
        elif event == "freeze":
            self.freeze()


EVENTS = ["idle", "move", "move", "move", "spawn", "despawn", "respawn", "burst", "kill_all", "jump",
          "clamp", "perturb", "freeze"]


@dataclass
class Packet:
    arrival: int
    order: float
    tick: int
    base: int | None
    ref: int | None
    flags: int
    data: bytes


@dataclass
class Net:
    loss: float
    max_delay: int
    p_full: float
    newest_bias: float
    ack_loss: float
    stats: dict = field(default_factory=lambda: {"decoded": 0, "with_ref": 0, "modes": set()})


def _run(seed: int, events: list[str], initial: int, net: Net) -> dict:
    rng = np.random.default_rng(seed)
    sim = Sim(rng, initial)
    server: dict[int, State] = {}
    held: dict[int, State] = {}  # the client's decoded states (never the server's objects)
    base_of: dict[int, int | None] = {}  # server: the baseline each sent tick was encoded against
    known: set[int] = set()  # server: ticks whose ack arrived
    inflight: list[Packet] = []
    acks: list[tuple[int, int]] = []
    prev = None

    def deliver(upto: int) -> None:
        due = sorted((p for p in inflight if p.arrival <= upto), key=lambda p: (p.arrival, p.order))
        for p in due:
            inflight.remove(p)
            cbase = held[p.base] if p.base is not None else None
            cref = held[p.ref] if p.ref is not None else None
            raw = decompress_payload(p.flags, p.data)
            got = decode_delta(SCHEMA, raw, p.tick, cbase, cref)
            want = server[p.tick]
            assert got.tick == p.tick
            assert got.same_as(want), (p.tick, p.base, p.ref)
            assert got.mat.dtype == np.int32 and got.mat.shape == (NF, want.n)
            assert not (got.mat.flags.writeable or got.alive.flags.writeable or got.ids.flags.writeable)
            held.setdefault(p.tick, got)
            net.stats["decoded"] += 1
            net.stats["with_ref"] += p.ref is not None
            net.stats["modes"].update(_modes(raw))
            if rng.random() >= net.ack_loss:
                acks.append((upto + int(rng.integers(0, net.max_delay + 1)), p.tick))

    for tick, ev in enumerate(events):
        sim.step(ev)
        cur = State.capture(sim.w, tick, prev)
        server[tick] = prev = cur
        # ack arrivals
        for a in [a for a in acks if a[0] <= tick]:
            acks.remove(a)
            known.add(a[1])
        # the server picks a baseline the client acked and a reference it knows the client holds
        cand = sorted(known)
        if not cand or rng.random() < net.p_full:
            b = r = None
        else:
            b = cand[-1] if rng.random() < net.newest_bias else int(rng.choice(cand))
            older = [t for t in cand if t < b]
            u = rng.random()
            if u < 0.4 and (b - 1) in known:
                r = b - 1
            elif u < 0.65 and base_of.get(b) is not None:
                r = base_of[b]
            elif u < 0.85 and older:
                r = int(rng.choice(older))
            else:
                r = None
        base_of[tick] = b
        raw = encode_delta(SCHEMA, cur, server.get(b) if b is not None else None,
                           server.get(r) if r is not None else None)
        flags, data = compress_payload(raw)
        if rng.random() >= net.loss:
            inflight.append(Packet(tick + int(rng.integers(0, net.max_delay + 1)), rng.random(), tick, b, r,
                                   flags, data))
        deliver(tick)
    deliver(1 << 30)  # flush what is still on the wire
    return net.stats


nets = st.builds(
    Net,
    loss=st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6]),
    max_delay=st.integers(0, 4),
    p_full=st.sampled_from([0.0, 0.02, 0.1]),
    newest_bias=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    ack_loss=st.sampled_from([0.0, 0.2, 0.5]),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1),
       events=st.lists(st.sampled_from(EVENTS), min_size=1, max_size=60),
       initial=st.integers(0, 90),
       net=nets)
def test_delta_roundtrip_is_bit_exact_against_any_baseline_and_reference(seed, events, initial, net):
    _run(seed, events, initial, net)


def test_delta_long_lossy_reordered_session_is_bit_exact_and_exercises_every_mode():
    modes: set[int] = set()
    decoded = with_ref = 0
    for seed in range(6):
        rng = np.random.default_rng(1000 + seed)
        events = list(rng.choice(EVENTS, 120))
        net = Net(loss=0.2, max_delay=3, p_full=0.02, newest_bias=0.7, ack_loss=0.2)
        s = _run(seed, events, 80, net)
        modes |= s["modes"]
        decoded += s["decoded"]
        with_ref += s["with_ref"]
    assert decoded > 400 and with_ref > 200
    assert modes == {MODE_SAME, MODE_DENSE, MODE_SPARSE, MODE_ABSOLUTE, MODE_DENSE_OUTLIERS}


# ---- hand-built worlds ------------------------------------------------------------------------

def _world(n: int, schema: Schema = SCHEMA, **vals) -> World:
    w = World(schema)
    w.spawn(n, **vals)
    return w


def test_full_snapshot_round_trip_with_dead_slots():
    w = _world(10, x=np.arange(10) * 3.5, big=4_000_000_000, score=-5, a=-1.0)
    w.despawn([0, 4, 9])
    cur = State.capture(w, 7)
    raw = encode_delta(SCHEMA, cur)
    got = decode_delta(SCHEMA, raw, 7)
    assert got.same_as(cur) and got.tick == 7
    assert got.alive.tolist() == [False, True, True, True, False, True, True, True, True, False]
    assert got.ids[[0, 4, 9]].tolist() == [0, 0, 0]
    assert np.all(got.mat[:, [0, 4, 9]] == 0)
    np.testing.assert_array_equal(got.column(SCHEMA, "x"), cur.column(SCHEMA, "x"))


def test_full_snapshot_of_an_empty_world():
    cur = State.capture(World(SCHEMA), 0)
    got = decode_delta(SCHEMA, encode_delta(SCHEMA, cur), 0)
    assert got.same_as(cur) and got.n == 0


def test_full_snapshot_ignores_a_reference_without_baseline():
    w = _world(5, x=100.0)
    s0 = State.capture(w, 0)
    w["x"][:5] += 1
    s1 = State.capture(w, 1)
    assert encode_delta(SCHEMA, s1, None, s0) == encode_delta(SCHEMA, s1)
    assert decode_delta(SCHEMA, encode_delta(SCHEMA, s1), 1, None, s0).same_as(s1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 200), ticks=st.integers(1, 5))
def test_delta_against_an_identical_state_is_all_mode_same_and_tiny(seed, n, ticks):
    sim = Sim(np.random.default_rng(seed), n)
    if n > 3:
        sim.w.despawn([1, 3])
    base = State.capture(sim.w, 10)
    cur = State.capture(sim.w, 10 + ticks, base)  # same content, later tick
    fresh = State.capture(sim.w, 10 + ticks)  # same content, no shared arrays
    ref = State.capture(sim.w, 9)  # a reference equal to the baseline predicts no motion
    for c in (cur, fresh):
        for r in (None, ref):
            raw = encode_delta(SCHEMA, c, base, r)
            assert _modes(raw) == [MODE_SAME] * NF
            assert len(raw) <= 13 + 4 * NF
            got = decode_delta(SCHEMA, raw, c.tick, base, r)
            assert got.same_as(c)


def test_unchanged_dense_state_shares_the_baseline_layout():
    w = _world(20, x=5.0)
    base = State.capture(w, 1)
    w["x"][:20] += 1
    cur = State.capture(w, 2, base)
    got = decode_delta(SCHEMA, encode_delta(SCHEMA, cur, base), 2, base)
    assert got.same_as(cur)
    assert got.alive is base.alive and got.ids is base.ids


CV = Schema([
    Float("x", 0, 1000, 1 / 64),
    Float("y", -512, 512, 1 / 8),
    Angle("a", 12),
    Angle("tiny", 3),
    Int("hp", "u1"),
    Int("score", "i4"),
    Int("big", "u4"),
])


def _constant_velocity_states(seed: int, n: int, ticks: int) -> dict[int, State]:
    """Entities moving by a whole number of quantisation steps per tick (angles across 2*pi)."""
    rng = np.random.default_rng(seed)
    w = World(CV)
    w.spawn(n)
    q0 = {"x": rng.integers(20000, 40000, n), "y": rng.integers(2000, 6000, n), "a": rng.integers(0, 4096, n),
          "tiny": rng.integers(0, 8, n), "hp": rng.integers(100, 150, n), "score": rng.integers(-(1 << 30), 1 << 30, n),
          "big": rng.integers(1 << 20, (1 << 32) - (1 << 20), n)}
    v = {"x": rng.integers(-200, 201, n), "y": rng.integers(-50, 51, n), "a": rng.integers(-300, 301, n),
         "tiny": rng.integers(-1, 2, n), "hp": rng.integers(-2, 3, n), "score": rng.integers(-10**6, 10**6, n),
         "big": rng.integers(-10**4, 10**4, n)}
    states = {}
    for t in range(ticks):
        w["x"][:n] = (q0["x"] + v["x"] * t) / 64
        w["y"][:n] = (q0["y"] + v["y"] * t) / 8 - 512
        w["a"][:n] = (q0["a"] + v["a"] * t) * (TAU / 4096)  # grows past 2*pi and below 0: wraps
        w["tiny"][:n] = ((q0["tiny"] + v["tiny"] * t) % 8) * (TAU / 8)
        w["hp"][:n] = q0["hp"] + v["hp"] * t
        w["score"][:n] = q0["score"] + v["score"] * t
        w["big"][:n] = q0["big"] + v["big"] * t
        states[t] = State.capture(w, t, states.get(t - 1))
    return states


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300),
       trb=st.sampled_from([(10, 9, 8), (10, 8, 5), (12, 6, 4), (12, 11, 8), (15, 5, 2), (9, 8, 7), (20, 10, 9)]))
def test_constant_velocity_with_a_reference_costs_zero_residuals(seed, n, trb):
    t, b, r = trb
    states = _constant_velocity_states(seed, n, t + 1)
    raw = encode_delta(CV, states[t], states[b], states[r])
    assert _modes(raw) == [MODE_SAME] * len(CV)
    assert len(raw) <= 13 + 4 * len(CV)
    got = decode_delta(CV, raw, t, states[b], states[r])
    assert got.same_as(states[t])
    # without the reference the same delta has to carry the motion
    raw_noref = encode_delta(CV, states[t], states[b])
    if not states[t].same_as(states[b]):
        assert _modes(raw_noref) != [MODE_SAME] * len(CV)
    assert decode_delta(CV, raw_noref, t, states[b]).same_as(states[t])


def test_reference_only_predicts_entities_that_were_the_same_entity_there():
    w = _world(20, schema=CV, x=100.0, hp=10)
    s0 = State.capture(w, 0)
    w["x"][:20] += 1  # everyone moves +64 steps
    w["hp"][:20] += 1
    w.despawn([2])
    w.spawn(1, x=300.0, hp=50)  # slot 2 reused by a new entity
    s1 = State.capture(w, 1, s0)
    w["x"][:20] += 1
    w["hp"][:20] += 1
    s2 = State.capture(w, 2, s1)
    raw = encode_delta(CV, s2, s1, s0)
    body = _body(raw)
    x_enc = body[5][CV.index("x")]
    # the others continue at constant velocity, the new one in slot 2 is predicted as static
    assert _changed(raw) == [2]
    assert x_enc[:2] == [MODE_DENSE, "<i1"]
    assert np.frombuffer(x_enc[2], dtype="<i1").tolist() == [64]
    assert decode_delta(CV, raw, 2, s1, s0).same_as(s2)


def _one_field(mutate, n: int = 100) -> tuple[State, State, bytes]:
    rng = np.random.default_rng(5)
    w = _world(n, x=rng.integers(20000, 40000, n) / 64, big=rng.integers(0, 1 << 31, n))
    base = State.capture(w, 1)
    mutate(w, rng)
    cur = State.capture(w, 2, base)
    return base, cur, encode_delta(SCHEMA, cur, base)


@pytest.mark.parametrize(("name", "mutate", "field_name", "mode", "dtype"), [
    ("small steps", lambda w, r: w["x"].__setitem__(slice(0, 100), w["x"][:100] + r.integers(1, 3, 100) / 64),
     "x", MODE_DENSE, "<i1"),
    ("medium steps", lambda w, r: w["x"].__setitem__(slice(0, 100), w["x"][:100] + r.integers(3, 6, 100)),
     "x", MODE_DENSE, "<i2"),
    ("large steps", lambda w, r: w["score"].__setitem__(slice(0, 100), r.integers(10**5, 10**6, 100)),
     "score", MODE_DENSE, "<i4"),
    ("one mover", lambda w, r: w["x"].__setitem__(7, w["x"][7] + 1), "x", MODE_DENSE, "<i1"),
    ("few outliers", lambda w, r: (w["x"].__setitem__(slice(0, 100), w["x"][:100] + 1 / 64),
                                   w["x"].__setitem__(slice(0, 100, 20), w["x"][:100:20] + 50)),
     "x", MODE_DENSE_OUTLIERS, None),
    ("half-turn jump of a u4", lambda w, r: w["big"].__setitem__(slice(0, 100), w["big"][:100] + (1 << 31) + 12345),
     "big", MODE_DENSE, "<i4"),  # modulo 2**32 that is -2**31 + 12345
    ("teleports", lambda w, r: w["x"].__setitem__(slice(0, 100), r.integers(0, 64000, 100) / 64),
     "x", MODE_ABSOLUTE, None),  # residuals need i4 where the u2 values take half the bytes
])
def test_each_field_mode_is_chosen_and_round_trips(name, mutate, field_name, mode, dtype):
    base, cur, raw = _one_field(mutate)
    enc = _body(raw)[5][SCHEMA.index(field_name)]
    assert enc[0] == mode, name
    if dtype is not None:
        assert enc[1] == dtype
    assert decode_delta(SCHEMA, raw, 2, base).same_as(cur)
    other = [m for i, m in enumerate(_modes(raw)) if i != SCHEMA.index(field_name)]
    assert set(other) == {MODE_SAME}


def test_only_the_changed_entities_are_listed_and_their_fields_encoded():
    base, cur, raw = _one_field(lambda w, r: w["x"].__setitem__([7, 9, 60], w["x"][[7, 9, 60]] + 1))
    assert _changed(raw) == [7, 9, 60]
    assert _body(raw)[6][0] == "<u1"  # gaps 7, 2, 51
    enc = _body(raw)[5][SCHEMA.index("x")]
    assert enc[:2] == [MODE_DENSE, "<i1"] and np.frombuffer(enc[2], dtype="<i1").tolist() == [64] * 3
    assert decode_delta(SCHEMA, raw, 2, base).same_as(cur)


def test_a_field_that_changed_for_few_of_the_changed_entities_is_sparse_among_them():
    def mutate(w, r):
        w["x"][:100] += 1 / 64  # everyone changed: no list, every field spans all kept entities
        w["score"][42] += 1000
    base, cur, raw = _one_field(mutate)
    assert _changed(raw) is None
    enc = _body(raw)[5][SCHEMA.index("score")]
    assert enc[0] == MODE_SPARSE
    assert np.frombuffer(enc[2], dtype=enc[1]).tolist() == [42]
    assert decode_delta(SCHEMA, raw, 2, base).same_as(cur)


def test_a_hold_field_is_predicted_to_stay_where_a_linear_one_carries_on():
    sch = Schema([Float("x", 0, 1000, 1 / 64), Angle("h", bits=12, predict="hold")])
    w = World(sch)
    w.spawn(10, x=100.0, h=0.0)
    s0 = State.capture(w, 0)
    w["x"][:10] += 1
    w["h"][:10] = 1.0  # a jump...
    s1 = State.capture(w, 1, s0)
    w["x"][:10] += 1  # ...then it stays; x carries on
    s2 = State.capture(w, 2, s1)
    raw = encode_delta(sch, s2, s1, s0)
    assert _modes(raw) == [MODE_SAME, MODE_SAME]
    assert decode_delta(sch, raw, 2, s1, s0).same_as(s2)
    lin = Schema([Float("x", 0, 1000, 1 / 64), Angle("h", bits=12)])
    assert _modes(encode_delta(lin, s2, s1, s0)) == [MODE_SAME, MODE_DENSE]  # linear over-shoots


def test_angle_residual_takes_the_short_way_round():
    w = _world(50, schema=CV, a=TAU - TAU / 4096)  # quantised 4095
    base = State.capture(w, 1)
    w["a"][:50] = TAU / 4096 * 2  # quantised 2: +3 steps across the wrap
    cur = State.capture(w, 2, base)
    raw = encode_delta(CV, cur, base)
    enc = _body(raw)[5][CV.index("a")]
    assert enc[:2] == [MODE_DENSE, "<i1"]
    assert np.frombuffer(enc[2], dtype="<i1").tolist() == [3] * 50
    assert decode_delta(CV, raw, 2, base).same_as(cur)


def test_created_removed_and_kept_lists():
    w = _world(5, x=10.0)
    base = State.capture(w, 1)
    w.despawn([1, 3])
    w.spawn(3, x=20.0)  # slots 3, 1 reused, then 5
    cur = State.capture(w, 2, base)
    body = _body(encode_delta(SCHEMA, cur, base))
    assert body[0] == 6
    assert np.frombuffer(body[1], "<u4").tolist() == [1, 3]
    assert sorted(np.frombuffer(body[2], "<u4").tolist()) == [1, 3, 5]
    assert decode_delta(SCHEMA, encode_delta(SCHEMA, cur, base), 2, base).same_as(cur)


@pytest.mark.parametrize("item", [1, 2], ids=["removed", "created"])
@pytest.mark.parametrize("value", [None, False, 0, []], ids=["nil", "false", "zero", "empty-array"])
def test_removed_and_created_lists_are_bin_or_refused(item, value):
    """An empty list is an empty bin (what the encoder sends); nothing else stands in for it."""
    w = _world(5, x=10.0)
    base = State.capture(w, 1)
    w["x"][:5] += 1
    cur = State.capture(w, 2, base)
    body = _body(encode_delta(SCHEMA, cur, base))
    assert body[item] == b""
    assert decode_delta(SCHEMA, msgpack.packb(body, use_bin_type=True), 2, base).same_as(cur)
    body[item] = value
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, msgpack.packb(body, use_bin_type=True), 2, base)


def test_reference_must_be_older_than_the_baseline():
    w = _world(4, x=1.0)
    s1 = State.capture(w, 1)
    s2 = State.capture(w, 2, s1)
    older = "^the reference must be older than the baseline$"
    with pytest.raises(PayloadError, match=older):
        encode_delta(SCHEMA, s2, s2, s2)
    raw = encode_delta(SCHEMA, s2, s1)
    with pytest.raises(PayloadError, match=older):
        decode_delta(SCHEMA, raw, 2, s1, s2)
    with pytest.raises(PayloadError, match=older):
        decode_delta(SCHEMA, raw, 2, s1, s1)


# ---- compression ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(raw=st.one_of(st.binary(max_size=600), st.binary(max_size=40).map(lambda b: b * 30)))
def test_compress_payload_round_trips_and_only_deflates_when_smaller(raw):
    flags, data = compress_payload(raw)
    assert decompress_payload(flags, data) == raw
    if flags & FLAG_DEFLATE:
        assert len(data) < len(raw) and len(raw) >= COMPRESS_MIN
        assert zlib.decompress(data) == raw
    else:
        assert flags == 0 and data == raw


def test_decompress_payload_refuses_to_inflate_past_its_limit():
    raw = bytes(1 << 20)
    flags, data = compress_payload(raw)
    assert flags == FLAG_DEFLATE and len(data) < 8000
    with pytest.raises(PayloadError, match="^payload inflates past the limit$"):
        decompress_payload(flags, data, limit=1000)
    with pytest.raises(PayloadError, match="^payload inflates past the limit$"):
        decompress_payload(flags, data, limit=len(raw) - 1)
    assert decompress_payload(flags, data, limit=len(raw)) == raw
    assert decompress_payload(flags, data) == raw
    bomb = zlib.compress(bytes(80 << 20), 9)  # above the 64 MiB default
    with pytest.raises(PayloadError):
        decompress_payload(FLAG_DEFLATE, bomb)


def test_raw_payloads_pass_through_without_a_limit_check():
    assert decompress_payload(0, b"\x01\x02", limit=1) == b"\x01\x02"


@pytest.mark.parametrize("data", [b"garbage that is not deflate", b"\x78\x9c\xff\xff\xff", b"\x78"])
def test_corrupt_deflate_data_raises_payload_error(data):
    if data != b"\x78":  # a bare header inflates to nothing; the decoder then refuses that
        with pytest.raises(PayloadError, match="^bad deflate data: "):
            decompress_payload(FLAG_DEFLATE, data)
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, decompress_payload(FLAG_DEFLATE, data), 1)


# ---- malformed payloads -----------------------------------------------------------------------

def _pair() -> tuple[State, State, State, list]:
    """A reference, a baseline and a state with removals, creations and changes; and its body."""
    rng = np.random.default_rng(3)
    w = _world(40, x=rng.integers(0, 64000, 40) / 64, hp=7, big=10)
    w.despawn([5])
    ref = State.capture(w, 1)
    w["x"][:40] += 1 / 64
    base = State.capture(w, 2, ref)
    w["x"][:40] += 1 / 64
    w["x"][3] += 100
    w.despawn([1, 2])
    w.spawn(4, x=3.0, hp=9)  # slots 2, 1, 5 reused, then 40
    cur = State.capture(w, 3, base)
    body = _body(encode_delta(SCHEMA, cur, base, ref))
    assert body[1] and body[2] and body[3] and any(body[4])
    assert int(np.count_nonzero(base.alive)) - len(body[1]) // 4 == K
    return ref, base, cur, body


def _decode_body(body, base, ref) -> State:
    return decode_delta(SCHEMA, msgpack.packb(body, use_bin_type=True), 3, base, ref)


def test_the_malformed_payload_fixture_is_valid():
    ref, base, cur, body = _pair()
    assert _decode_body(body, base, ref).same_as(cur)


def test_truncated_payloads_raise_payload_error():
    ref, base, cur, body = _pair()
    raw = msgpack.packb(body, use_bin_type=True)
    for k in range(len(raw)):
        with pytest.raises(PayloadError):
            decode_delta(SCHEMA, raw[:k], 3, base, ref)
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, raw + b"\x00", 3, base, ref)


def _set(body, path, value):
    b = msgpack.unpackb(msgpack.packb(body, use_bin_type=True), raw=False)
    target = b
    for i in path[:-1]:
        target = target[i]
    target[path[-1]] = value
    return b


FIELD_X = SCHEMA.index("x")
K = 37  # entities kept from the fixture's baseline to its state
FIELD_HP = SCHEMA.index("hp")

BAD_BODIES = {
    "n negative": lambda b: _set(b, [0], -1),
    "n not an int": lambda b: _set(b, [0], "41"),
    "n a float": lambda b: _set(b, [0], 41.0),
    "n below the baseline": lambda b: _set(b, [0], 39),
    "removed not bytes": lambda b: _set(b, [1], [1, 2]),
    "removed ragged": lambda b: _set(b, [1], b[1] + b"\x00"),
    "removed beyond baseline": lambda b: _set(b, [1], np.array([40], "<u4").tobytes()),
    "removed already dead": lambda b: _set(b, [1], np.array([5], "<u4").tobytes()),
    "created ragged": lambda b: _set(b, [2], b[2][:-1]),
    "created beyond n": lambda b: _set(b, [2], np.array([1, 2, 5, 41], "<u4").tobytes()),
    "created still alive": lambda b: _set(b, [2], np.array([1, 2, 5, 6], "<u4").tobytes()),
    "created ids short": lambda b: _set(b, [3], b[3][:-4]),
    "created ids not bytes": lambda b: _set(b, [3], 7),
    "created values short": lambda b: _set(b, [4, FIELD_X], b[4][FIELD_X][:-2]),
    "created values missing": lambda b: _set(b, [4, FIELD_HP], b""),
    "created values list short": lambda b: _set(b, [4], b[4][:-1]),
    "fields list short": lambda b: _set(b, [5], b[5][:-1]),
    "fields not a list": lambda b: _set(b, [5], b"\x00" * NF),
    "field enc not a list": lambda b: _set(b, [5, FIELD_X], 0),
    "field enc empty": lambda b: _set(b, [5, FIELD_X], []),
    "unknown mode 7": lambda b: _set(b, [5, FIELD_X], [7, "<i1", b""]),
    "unknown mode -1": lambda b: _set(b, [5, FIELD_X], [-1]),
    "unknown mode str": lambda b: _set(b, [5, FIELD_X], ["dense"]),
    "unknown mode nil": lambda b: _set(b, [5, FIELD_X], [None]),
    "dense bad dtype": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, "<i8", bytes(8 * K)]),
    "dense float dtype": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, "<f4", bytes(4 * K)]),
    "dense dtype not str": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, [1], bytes(K)]),
    "dense wrong count": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, "<i1", bytes(K - 1)]),
    "dense ragged": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, "<i2", bytes(2 * K + 1)]),
    "dense residuals not bytes": lambda b: _set(b, [5, FIELD_X], [MODE_DENSE, "<i1", [0] * K]),
    "sparse position out of range": lambda b: _set(
        b, [5, FIELD_X], [MODE_SPARSE, "<u2", np.array([K], "<u2").tobytes(), "<i1", b"\x01"]),
    "sparse count mismatch": lambda b: _set(
        b, [5, FIELD_X], [MODE_SPARSE, "<u2", np.array([1, 2], "<u2").tobytes(), "<i1", b"\x01"]),
    "sparse bad index dtype": lambda b: _set(
        b, [5, FIELD_X], [MODE_SPARSE, "<i2", np.array([1], "<i2").tobytes(), "<i1", b"\x01"]),
    "sparse bad value dtype": lambda b: _set(
        b, [5, FIELD_X], [MODE_SPARSE, "<u2", np.array([1], "<u2").tobytes(), "<u1", b"\x01"]),
    "outlier position out of range": lambda b: _set(
        b, [5, FIELD_X], [MODE_DENSE_OUTLIERS, bytes(K), "<u2", np.array([99], "<u2").tobytes(), bytes(4)]),
    "outlier count mismatch": lambda b: _set(
        b, [5, FIELD_X], [MODE_DENSE_OUTLIERS, bytes(K), "<u2", np.array([1], "<u2").tobytes(), bytes(8)]),
    "outlier bytes wrong count": lambda b: _set(
        b, [5, FIELD_X], [MODE_DENSE_OUTLIERS, bytes(30), "<u2", b"", b""]),
    "absolute wrong count": lambda b: _set(b, [5, FIELD_X], [MODE_ABSOLUTE, bytes(2 * (K - 1))]),
    "absolute ragged": lambda b: _set(b, [5, FIELD_X], [MODE_ABSOLUTE, bytes(2 * K + 1)]),
    "absolute not bytes": lambda b: _set(b, [5, FIELD_X], [MODE_ABSOLUTE, "x" * (2 * K)]),
    "changed missing": lambda b: b[:6],
    "changed not a list": lambda b: _set(b, [6], 7),
    "changed one item": lambda b: _set(b, [6], ["<u1"]),
    "changed bad dtype": lambda b: _set(b, [6], ["<i1", b"\x01"]),
    "changed past the kept list": lambda b: _set(b, [6], ["<u1", bytes([K])]),
    "changed not increasing": lambda b: _set(b, [6], ["<u1", bytes([3, 0])]),
    "changed longer than the kept list": lambda b: _set(b, [6], ["<u1", bytes([0] + [1] * K)]),
    "fields sized for every kept entity, not the list": lambda b: _set(b, [6], ["<u1", bytes([1, 1])]),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_malformed_payload_raises_payload_error(case):
    ref, base, cur, body = _pair()
    bad = BAD_BODIES[case](body)
    with pytest.raises(PayloadError):
        _decode_body(bad, base, ref)


TRUNCATED_FIELD_ENCODINGS = {
    "dense without residuals": [MODE_DENSE, "<i1"],
    "dense without dtype": [MODE_DENSE],
    "sparse without values": [MODE_SPARSE, "<u2", b""],
    "sparse header only": [MODE_SPARSE],
    "outliers without outliers": [MODE_DENSE_OUTLIERS, bytes(K)],
    "outliers header only": [MODE_DENSE_OUTLIERS],
    "absolute without values": [MODE_ABSOLUTE],
}


@pytest.mark.parametrize("case", sorted(TRUNCATED_FIELD_ENCODINGS))
def test_truncated_field_encoding_raises_payload_error(case):
    ref, base, cur, body = _pair()
    bad = _set(body, [5, FIELD_X], TRUNCATED_FIELD_ENCODINGS[case])
    with pytest.raises(PayloadError):
        _decode_body(bad, base, ref)


@pytest.mark.parametrize("obj", [None, 5, "payload", b"\x00" * 6, [], [1, 2, 3], [0] * 7, {"n": 1},
                                 [0, b"", b"", b"", [], []] + [0]])
def test_payload_that_is_not_a_six_element_array_raises_payload_error(obj):
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, msgpack.packb(obj, use_bin_type=True), 1)


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x96", b"\xdd\xff\xff\xff\xff", b"\xc7\x01\x05x"])
def test_undecodable_msgpack_raises_payload_error(raw):
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, raw, 1)


@pytest.mark.parametrize("n", [2**40, 2**63, 2**64 - 1])
def test_absurd_entity_count_raises_payload_error(n):
    body = [n, b"", b"", b"", [b""] * NF, [[MODE_SAME]] * NF, None]
    with pytest.raises(PayloadError):
        decode_delta(SCHEMA, msgpack.packb(body, use_bin_type=True), 1)


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_payload_bytes_raise_only_payload_error(flips):
    ref, base, cur, body = _pair()
    raw = bytearray(msgpack.packb(body, use_bin_type=True))
    for pos, x in flips:
        raw[pos % len(raw)] ^= x
    try:
        decode_delta(SCHEMA, bytes(raw), 3, base, ref)
    except PayloadError:
        pass


# ---- docs/protocol.md section 15.3: the documented payloads --------------------------------------

DOC = Schema([Float("x", 0.0, 1000.0, 0.015625), Angle("heading", 12), Int("hp", "u1", predict="hold")])
DOC_TICK9 = """97 02 c4 00 c4 08 00 00 00 00 01 00 00 00 c4 08 01 00 00 00 02 00 00 00
               93 c4 04 00 19 00 7d c4 04 fa 0f 00 00 c4 02 64 64 93 91 00 91 00 91 00 c0"""
DOC_TICK10 = """97 02 c4 00 c4 00 c4 00 93 c4 00 c4 00 c4 00
                93 93 01 a3 3c 69 31 c4 01 40 93 01 a3 3c 69 31 c4 01 04 93 01 a3 3c 69 31 c4 01 fd
                92 a3 3c 75 31 c4 01 00"""
DOC_TICK12 = """97 03 c4 04 01 00 00 00 c4 08 01 00 00 00 02 00 00 00 c4 08 03 00 00 00 04 00 00 00
                93 c4 04 00 32 00 fa c4 04 00 04 00 08 c4 02 64 32
                93 91 00 91 00 93 01 a3 3c 69 31 c4 01 fe c0"""
DOC_CHANGED = "92 a3 3c 75 31 c4 03 07 02 33"  # section 9.3: kept positions 7, 9, 60
DOC_FRAME12 = """98 04 0c 0a 09 05 00 c4 3c""", """92 92 05 cb 40 93 4a 00 00 00 00 00 93 01 81 a1 6d 01 03"""


def test_documented_worked_example_payloads_match_the_codec_byte_for_byte():
    from gamesync.core.delta import _gaps
    from gamesync.core.protocol import pack_snapshot

    assert [f.to_wire()["predict"] for f in DOC] == ["linear", "linear", "hold"]
    step = TAU / 4096
    w = World(DOC)
    w.spawn(2, x=[100.0, 500.0], heading=[4090 * step, 0.0], hp=100)
    s9 = State.capture(w, 9)
    w["x"][0] = 101.0
    w["heading"][0] = 4094 * step
    w["hp"][0] = 97
    s10 = State.capture(w, 10, s9)
    w["x"][0] = 103.0
    w["heading"][0] = 6 * step
    w["hp"][0] = 95
    w.despawn([1])
    w.spawn(1, x=200.0, heading=1024 * step, hp=100)
    w.spawn(1, x=1000.0, heading=2048 * step, hp=50)
    s12 = State.capture(w, 12, s10)
    assert s12.ids.tolist() == [1, 3, 4]
    p9, p10, p12 = (bytes.fromhex(h) for h in (DOC_TICK9, DOC_TICK10, DOC_TICK12))
    assert encode_delta(DOC, s9) == p9 and len(p9) == 49
    assert encode_delta(DOC, s10, s9) == p10 and len(p10) == 51
    assert encode_delta(DOC, s12, s10, s9) == p12 and len(p12) == 60
    assert _changed(p9) is None and _changed(p10) == [0] and _changed(p12) is None
    c9 = decode_delta(DOC, p9, 9)
    c10 = decode_delta(DOC, p10, 10, c9)
    c12 = decode_delta(DOC, p12, 12, c10, c9)
    assert c9.same_as(s9) and c10.same_as(s10) and c12.same_as(s12)
    assert c10.mat.tolist() == [[6464, 32000], [4094, 0], [97, 100]]
    assert c12.mat.tolist() == [[6592, 12800, 64000], [6, 1024, 2048], [95, 100, 50]]
    assert compress_payload(p12) == (0, p12)  # below COMPRESS_MIN: never compressed
    head, tail = (bytes.fromhex(h) for h in DOC_FRAME12)
    frame = pack_snapshot(12, 10, 9, 5, 0, p12, [[5, 1234.5], [1, {"m": 1}, 3]])
    assert frame == head + p12 + tail and len(frame) == 88
    assert msgpack.packb(_gaps(np.array([7, 9, 60])), use_bin_type=True) == bytes.fromhex(DOC_CHANGED)

# section 15.5: residual rows of a <u4 int field (the last one of the u2 field x), as (residuals,
# values, bytes); values only matter for mode 3
DOC_ROWS = [
    ([0, 0, 0, 0, 0], None, "91 00"),
    ([1, -2, 0, 3], None, "93 01 a3 3c 69 31 c4 04 01 fe 00 03"),
    ([300, -2, 0, 3], None, "93 01 a3 3c 69 32 c4 08 2c 01 fe ff 00 00 03 00"),
    ([0] * 19 + [-5], None, "95 02 a3 3c 75 32 c4 02 13 00 a3 3c 69 31 c4 01 fb"),
    ([0, 0, 0, 70000] + [0] * 16, None, "95 02 a3 3c 75 32 c4 02 03 00 a3 3c 69 34 c4 04 70 11 01 00"),
    ([1] * 7 + [1000] + [2] * 8, None, "95 04 c4 10 01 01 01 01 01 01 01 00 02 02 02 02 02 02 02 02"
                                       " a3 3c 75 32 c4 02 07 00 c4 04 e8 03 00 00"),
    ([3_000_000_000 - (1 << 32), 0], None, "93 01 a3 3c 69 34 c4 08 00 5e d0 b2 00 00 00 00"),
    ([40000, -3], [46400, 6464], "92 03 c4 04 40 b5 40 19"),
]


def test_documented_residual_rows_match_the_codec_byte_for_byte():
    from gamesync.core.delta import _encode_row

    for res, vals, want in DOC_ROWS:
        f = Int("v", "u4") if vals is None else DOC.fields[0]
        r = np.array(res, dtype=np.int32)
        v = np.zeros_like(r) if vals is None else np.array(vals, dtype=np.int32)
        assert msgpack.packb(_encode_row(f, r, v), use_bin_type=True) == bytes.fromhex(want), res


# ---- edges: position and gap widths past 8 and 16 bits, predictions across several ticks ----------

INTS = Schema([Int("a", "i4"), Int("b", "i4"), Int("c", "i2")])


def _states(*mats: tuple[int, list[list[int]]]) -> list[State]:
    """Dense states over the same entities (ids 1..n), one per (tick, rows); read-only, as
    every State is (the codec computes in place on what it may)."""
    n = len(mats[0][1][0])
    alive, ids = np.ones(n, dtype=bool), np.arange(1, n + 1, dtype="<u4")
    out = []
    for tick, rows in mats:
        mat = np.array(rows, dtype=np.int32)
        for a in (alive, ids, mat):
            a.flags.writeable = False
        out.append(State(tick, n, alive, ids, mat))
    return out


@pytest.mark.parametrize("n", [65_535, 65_536, 65_537, 70_000])
def test_sparse_and_outlier_positions_past_65535_entities_round_trip(n):
    """Field ``a`` changes everywhere (so nothing is listed in ``changed``: positions are kept
    positions, up to n - 1), ``b`` at a few entities (sparse), ``c`` by 1 everywhere with a
    few jumps (int8 + outliers)."""
    zero = np.zeros(n, dtype=np.int64)
    at = sorted({p for p in (0, 1, 65_534, 65_535, 65_536, n - 1) if p < n})
    b, c = zero.copy(), zero + 1
    b[at] = -5
    c[at] = 1000
    base, cur = _states((1, [zero, zero, zero]), (2, [zero + 1, b, c]))
    raw = encode_delta(INTS, cur, base)
    body = _body(raw)
    assert body[6] is None and _modes(raw) == [MODE_DENSE, MODE_SPARSE, MODE_DENSE_OUTLIERS]
    sparse, outliers = body[5][1], body[5][2]
    want_idx = "<u2" if n <= 65_535 else None  # the smallest that holds n - 1 (either fits 65,536)
    for code, pos in ((sparse[1], sparse[2]), (outliers[2], outliers[3])):
        assert np.frombuffer(pos, dtype=code).tolist() == at
        if want_idx:
            assert code == want_idx
        elif n - 1 > 0xFFFF:
            assert code == "<u4"
    got = decode_delta(INTS, raw, 2, base)
    assert got.same_as(cur)
    assert got.mat[1, at].tolist() == [-5] * len(at) and int(np.count_nonzero(got.mat[1])) == len(at)


@pytest.mark.parametrize(("positions", "code"), [
    ([255], "<u1"), ([256], "<u2"), ([0, 255], "<u1"), ([0, 256], "<u2"), ([3, 258, 513], "<u1"),
    ([3, 259, 514], "<u2"), ([0, 65_535], "<u2"), ([0, 65_536], "<u4"), ([65_535], "<u2"), ([65_536], "<u4"),
    ([1, 65_536, 131_071], "<u2"), ([1, 65_537, 131_072], "<u4"),
])
def test_changed_gaps_of_255_256_65535_65536_take_the_smallest_width_and_round_trip(positions, code):
    n = 140_000
    zero = np.zeros(n, dtype=np.int64)
    a = zero.copy()
    a[positions] = 7
    base, cur = _states((1, [zero, zero, zero]), (2, [a, zero, zero]))
    raw = encode_delta(INTS, cur, base)
    changed = _body(raw)[6]
    assert changed[0] == code
    gaps = np.diff(positions, prepend=0).tolist()
    assert np.frombuffer(changed[1], dtype=code).tolist() == gaps  # first position, then gaps
    got = decode_delta(INTS, raw, 2, base)
    assert got.same_as(cur)
    assert np.flatnonzero(got.mat[0]).tolist() == positions


# By hand, from docs/protocol.md section 10: pred = b + ((b - r) * (T - B)) // (B - R), floor
# division. Reference at tick 4, baseline at tick 7 (B - R = 3), falling and rising values.
#                 v: b - r = -10, -9, 10, -1        w (i2): b - r = -1, -2, 1, -3
# T = 9 (x 2 / 3):  -7, -6, 6, -1 -> 83, -15, 16, 3     -1, -2, 0, -2 -> -2, -4, 1, -5
# T = 8 (x 1 / 3):  -4, -3, 3, -1 -> 86, -12, 13, 3     -1, -1, 0, -1 -> -2, -3, 1, -4
# (division towards zero would give 84, -15, 16, 4 and -1, -3, 1, -5 at T = 9)
EDGE_R = [[100, 0, 0, 5], [0, 0, 0, 0], [0, 0, 0, 0]]
EDGE_B = [[90, -9, 10, 4], [-1, -2, 1, -3], [0, 0, 0, 0]]
EDGE_PRED9 = [[83, -15, 16, 3], [-2, -4, 1, -5], [0, 0, 0, 0]]
EDGE_PRED8 = [[86, -12, 13, 3], [-2, -3, 1, -4], [0, 0, 0, 0]]
# every value as predicted: [4, "", "", "", ["", "", ""], [[0], [0], [0]], nil]
EDGE_SAME = "97 04 c4 00 c4 00 c4 00 93 c4 00 c4 00 c4 00 93 91 00 91 00 91 00 c0"
# a at T = 9 off by -3 and +1 at kept positions 0 and 2: changed [<u1, gaps 0 2], a dense <i1
EDGE_OFF = ("97 04 c4 00 c4 00 c4 00 93 c4 00 c4 00 c4 00 93 93 01 a3 3c 69 31 c4 02 fd 01 91 00 91 00"
            " 92 a3 3c 75 31 c4 02 00 02")


def test_floor_division_prediction_with_a_two_and_three_tick_gap_and_negative_velocity_matches_by_hand():
    ref, base, at9, at8 = _states((4, EDGE_R), (7, EDGE_B), (9, EDGE_PRED9), (8, EDGE_PRED8))
    same = bytes.fromhex(EDGE_SAME)
    assert encode_delta(INTS, at9, base, ref) == same
    assert encode_delta(INTS, at8, base, ref) == same
    assert decode_delta(INTS, same, 9, base, ref).mat.tolist() == EDGE_PRED9
    assert decode_delta(INTS, same, 8, base, ref).mat.tolist() == EDGE_PRED8
    off = [[80, -15, 17, 3], EDGE_PRED9[1], EDGE_PRED9[2]]
    (cur,) = _states((9, off))
    assert encode_delta(INTS, cur, base, ref) == bytes.fromhex(EDGE_OFF)
    assert decode_delta(INTS, bytes.fromhex(EDGE_OFF), 9, base, ref).mat.tolist() == off


def test_prediction_across_a_wide_gap_wraps_a_32_bit_field_by_hand():
    """B - R = 2, T - B = 5 on an <i4 field near its limits: (b - r) * 5 // 2 overflows int32
    before the division, the prediction wraps modulo 2**32."""
    r, b = -(2**31) + 10, -(2**31) + 4  # falling by 3 a tick
    ref, base = _states((10, [[r, 2**31 - 1], [0, 0], [0, 0]]), (12, [[b, 2**31 - 1], [0, 0], [0, 0]]))
    # entity 0: -6 * 5 // 2 = -15 -> b - 15 wraps to 2**31 - 11; entity 1: no motion
    want = [[2**31 - 11, 2**31 - 1], [0, 0], [0, 0]]
    same = bytes.fromhex("97 02 c4 00 c4 00 c4 00 93 c4 00 c4 00 c4 00 93 91 00 91 00 91 00 c0")
    assert decode_delta(INTS, same, 17, base, ref).mat.tolist() == want
    (cur,) = _states((17, want))
    assert encode_delta(INTS, cur, base, ref) == same


# ---- each malformed payload is refused by its own check, with its own message ------------------
# The decoder turns any stray IndexError/ValueError into a PayloadError too, so "raises
# PayloadError" alone does not show that the check meant for a case is the one that caught
# it. Here every field encoding covers all K kept entities (changed = nil).


def _all_kept_body():
    """The fixture's body with every field predicted ([0]) and nothing listed in changed."""
    ref, base, cur, body = _pair()
    b = _set(body, [5], [[MODE_SAME]] * NF)
    return ref, base, _set(b, [6], None)


def _u(code: str, *xs: int) -> bytes:
    return np.array(xs, dtype=code).tobytes()


ALL_KEPT_BAD = {
    "sparse position out of range": ([MODE_SPARSE, "<u2", _u("<u2", 1, K), "<i1", b"\x01\x01"], "^sparse position out of range$"),
    "sparse count mismatch": ([MODE_SPARSE, "<u2", _u("<u2", 1, 2), "<i1", b"\x01"], "^expected 2 values, got 1$"),
    "sparse bad index dtype": ([MODE_SPARSE, "<u1", _u("<u1", 1), "<i1", b"\x01"], "^bad dtype '<u1'$"),
    "sparse bad value dtype": ([MODE_SPARSE, "<u2", _u("<u2", 1), "<u1", b"\x01"], "^bad dtype '<u1'$"),
    "outlier position out of range": ([MODE_DENSE_OUTLIERS, bytes(K), "<u4", _u("<u4", 0, K), bytes(8)],
                                      "^outlier position out of range$"),
    "outlier count mismatch": ([MODE_DENSE_OUTLIERS, bytes(K), "<u2", _u("<u2", 1), bytes(8)], "^expected 1 values, got 2$"),
    "outlier small count": ([MODE_DENSE_OUTLIERS, bytes(K - 1), "<u2", b"", b""], f"^expected {K} values, got {K - 1}$"),
    "outlier bad index dtype": ([MODE_DENSE_OUTLIERS, bytes(K), "<i2", _u("<i2", 1), bytes(4)], "^bad dtype '<i2'$"),
    "absolute wrong count": ([MODE_ABSOLUTE, bytes(2 * (K - 1))], f"^expected {K} values, got {K - 1}$"),
    "absolute ragged": ([MODE_ABSOLUTE, bytes(2 * K + 1)], "^buffer length is not a multiple of its dtype$"),
    "dense wrong count": ([MODE_DENSE, "<i2", bytes(2 * (K + 1))], f"^expected {K} values, got {K + 1}$"),
    "dense not bytes": ([MODE_DENSE, "<i1", 5], "^expected bytes$"),
    "dense bad dtype": ([MODE_DENSE, "<u1", bytes(K)], "^bad dtype '<u1'$"),
    "enc empty": ([], "^bad field encoding$"),
    "enc an int": (5, "^bad field encoding$"),
    "enc a string": ("dense", "^bad field encoding$"),
    "unknown mode": ([9], "^unknown field mode 9$"),
}


@pytest.mark.parametrize("case", sorted(ALL_KEPT_BAD))
def test_a_malformed_field_encoding_is_refused_by_its_own_check(case):
    ref, base, body = _all_kept_body()
    assert _decode_body(body, base, ref).n == 41  # the fixture itself decodes
    enc, message = ALL_KEPT_BAD[case]
    with pytest.raises(PayloadError, match=message):
        _decode_body(_set(body, [5, FIELD_X], enc), base, ref)


CHANGED_BAD = {
    "not a list": (7, "^bad changed list$"),
    "one item": (["<u1"], "^bad changed list$"),
    "three items": (["<u1", b"\x01", b""], "^bad changed list$"),
    "bad dtype": (["<i1", b"\x01"], "^bad dtype '<i1'$"),
    "ragged": (["<u2", b"\x01"], "^buffer length is not a multiple of its dtype$"),
    "repeats the second": (["<u1", bytes([3, 0])], "^changed positions must increase$"),
    "repeats the third": (["<u1", bytes([1, 1, 0])], "^changed positions must increase$"),
    "longer than the kept list": (["<u1", bytes([0] + [1] * K)], "^changed positions must increase$"),
    "past the kept list": (["<u1", bytes([K])], "^changed position out of range$"),
    "last past the kept list": (["<u1", bytes([0, K])], "^changed position out of range$"),
}


@pytest.mark.parametrize("case", sorted(CHANGED_BAD))
def test_a_malformed_changed_list_is_refused_by_its_own_check(case):
    ref, base, body = _all_kept_body()
    changed, message = CHANGED_BAD[case]
    with pytest.raises(PayloadError, match=message):
        _decode_body(_set(body, [6], changed), base, ref)


@pytest.mark.parametrize("code", ["<u1", "<u2", "<u4"])
def test_a_changed_list_of_any_width_up_to_every_kept_entity_is_accepted(code):
    ref, base, body = _all_kept_body()
    want = _decode_body(body, base, ref)
    for gaps in ([0], [5], [0] + [1] * (K - 1)):  # the last: every kept entity, listed
        got = _decode_body(_set(body, [6], [code, _u(code, *gaps)]), base, ref)
        assert got.same_as(want)


def test_the_index_dtypes_of_sparse_and_outlier_encodings_may_be_either_width():
    ref, base, body = _all_kept_body()
    want = _decode_body(body, base, ref).mat[FIELD_X].astype(np.int64)
    for code in ("<u2", "<u4"):
        got = _decode_body(_set(body, [5, FIELD_X], [MODE_SPARSE, code, _u(code, 1, K - 1), "<i2", _u("<i2", -300, 7)]),
                           base, ref)
        d = got.mat[FIELD_X] - want  # over the slots; kept positions 1 and K - 1 are the second and last kept
        assert d[np.flatnonzero(d)].tolist() == [-300, 7]
        small = np.zeros(K, dtype="<i1")
        small[[1, 2]] = [3, -4]
        got = _decode_body(_set(body, [5, FIELD_X], [MODE_DENSE_OUTLIERS, small.tobytes(), code, _u(code, 1, K - 1),
                                                     _u("<i4", 1000, -2000)]), base, ref)
        # docs/protocol.md: small and outlier are added both, even where the encoder puts 0 in small
        d = got.mat[FIELD_X] - want
        assert d[np.flatnonzero(d)].tolist() == [1003, -4, -2000]


@pytest.mark.parametrize(("res", "code"), [([-128], "<i1"), ([127], "<i1"), ([-129], "<i2"), ([128], "<i2"),
                                           ([-32768], "<i2"), ([32768], "<i4"), ([-(2**31)], "<i4")])
def test_sparse_residuals_take_the_smallest_signed_width_both_limits_inclusive(res, code):
    from gamesync.core.delta import _encode_row

    r = np.zeros(40, dtype=np.int32)
    r[7] = res[0]
    enc = _encode_row(Int("v", "i4"), r, np.zeros_like(r))
    assert enc[0] == MODE_SPARSE and enc[3] == code and np.frombuffer(enc[4], dtype=code).tolist() == res


def test_entities_replaced_in_the_same_slots_round_trip_though_the_alive_mask_is_shared():
    """Two states may share ``alive`` (the same slots live) and still hold other entities in
    some slots: whether each slot kept its entity is decided by the ids, not the mask."""
    alive = np.ones(4, dtype=bool)
    alive.flags.writeable = False
    ids_b, ids_c = np.array([1, 2, 3, 4], dtype="<u4"), np.array([1, 9, 3, 8], dtype="<u4")
    mat_b, mat_c = np.array([[10, 20, 30, 40]], dtype=np.int32), np.array([[11, 25, 31, 45]], dtype=np.int32)
    for a in (ids_b, ids_c, mat_b, mat_c):
        a.flags.writeable = False
    one = Schema([Int("v", "i4")])
    base, cur = State(1, 4, alive, ids_b, mat_b), State(2, 4, alive, ids_c, mat_c)
    raw = encode_delta(one, cur, base)
    assert np.frombuffer(_body(raw)[2], "<u4").tolist() == [1, 3]  # slots 1 and 3 created anew
    assert decode_delta(one, raw, 2, base).same_as(cur)


def test_compression_starts_at_exactly_compress_min_and_needs_a_strictly_smaller_result():
    small = bytes(COMPRESS_MIN)
    assert compress_payload(small)[0] == FLAG_DEFLATE and compress_payload(small[:-1]) == (0, small[:-1])
    # 81 random bytes and 15 zeros: deflate gives exactly 96 bytes back, no gain, so it is sent raw
    tie = bytes(np.random.default_rng(0).integers(0, 256, 96, dtype=np.uint8))[:81] + bytes(15)
    assert len(zlib.compress(tie, 6)) == len(tie) == COMPRESS_MIN
    assert compress_payload(tie) == (0, tie)


def test_payloads_above_compress_fast_above_get_the_fastest_level_and_the_rest_the_default():
    from gamesync.core.delta import COMPRESS_FAST_ABOVE, COMPRESS_LEVEL

    rng = np.random.default_rng(5)
    text = rng.integers(0, 40, COMPRESS_FAST_ABOVE + 1, dtype=np.uint8).tobytes()  # compressible, not trivially
    at, above = text[:COMPRESS_FAST_ABOVE], text
    assert compress_payload(at) == (FLAG_DEFLATE, zlib.compress(at, COMPRESS_LEVEL))
    assert compress_payload(above) == (FLAG_DEFLATE, zlib.compress(above, 1))
    assert zlib.compress(above, 1) != zlib.compress(above, 2) != zlib.compress(above, COMPRESS_LEVEL)


def test_a_reference_sharing_the_alive_mask_predicts_only_entities_it_held():
    """The reference shares the baseline's ``alive`` but slot 1 holds another entity there:
    that entity has no velocity yet (prediction: its baseline value), the others carry on."""
    alive = np.ones(3, dtype=bool)
    ids_r, ids_b = np.array([1, 2, 3], dtype="<u4"), np.array([1, 9, 3], dtype="<u4")
    mats = [np.array([v], dtype=np.int32) for v in ([0, 0, 0], [10, 50, 10], [20, 50, 20])]
    for a in (alive, ids_r, ids_b, *mats):
        a.flags.writeable = False
    one = Schema([Int("v", "i4")])
    ref, base, cur = State(1, 3, alive, ids_r, mats[0]), State(2, 3, alive, ids_b, mats[1]), State(3, 3, alive, ids_b, mats[2])
    raw = encode_delta(one, cur, base, ref)
    assert _modes(raw) == [MODE_SAME] and _changed(raw) is None
    same = msgpack.packb([3, b"", b"", b"", [b""], [[MODE_SAME]], None], use_bin_type=True)
    assert raw == same
    assert decode_delta(one, same, 3, base, ref).mat.tolist() == [[20, 50, 20]]


# ---- the decoder's bounds on what it unpacks, and the encoder's mode thresholds -----------------

ONE = Schema([Int("v", "i4")])
MAX_SLOTS = 1 << 24  # gamesync.core.delta.MAX_SLOTS, checked below


def _one_body(**parts):
    """A one-field full snapshot of 3 entities, with some parts replaced."""
    body = {"n": 3, "removed": b"", "created": _u("<u4", 0, 1, 2), "ids": _u("<u4", 1, 2, 3),
            "values": [_u("<i4", 5, 6, 7)], "fields": [[MODE_SAME]], "changed": None}
    body.update(parts)
    return msgpack.packb(list(body.values()), use_bin_type=True)


def test_the_one_field_fixture_decodes():
    assert decode_delta(ONE, _one_body(), 1).mat.tolist() == [[5, 6, 7]]


@pytest.mark.parametrize(("parts", "message"), [
    # nf + 4 arrays at most: top, created values, fields, one per field, changed
    ({"fields": [[MODE_DENSE, ["<i1"], b""]], "changed": ["<u1", b""]}, "^undecodable payload: more arrays than a payload holds$"),
    ({"changed": ["<u1", [b""]]}, "^undecodable payload: more arrays than a payload holds$"),
    ({"fields": [{"mode": 0}]}, "^undecodable payload: .*max_map_len"),
    ({"fields": [[MODE_DENSE, "<i1", msgpack.ExtType(1, b"\x00")]]}, "^undecodable payload: .*max_ext_len"),
    ({"fields": [[MODE_DENSE, "<i1" + " " * 14, b""]]}, "^undecodable payload: .*max_str_len"),  # 17 characters
    ({"fields": [[MODE_SAME] * 8]}, "^undecodable payload: .*max_array_len"),  # max(7, nf) = 7 items
    ({"n": -1}, "^bad payload header$"), ({"n": MAX_SLOTS + 1}, "^bad payload header$"), ({"n": "3"}, "^bad payload header$"),
    ({"n": 3.0}, "^bad payload header$"), ({"fields": []}, "^bad payload header$"), ({"fields": b"\x00"}, "^bad payload header$"),
    ({"values": []}, "^bad payload header$"), ({"values": b""}, "^bad payload header$"),
    ({"fields": [[MODE_DENSE]]}, "^malformed payload: IndexError: "),
])
def test_what_no_payload_holds_is_refused_while_unpacking_or_by_the_header_check(parts, message):
    with pytest.raises(PayloadError, match=message):
        decode_delta(ONE, _one_body(**parts), 1)


def test_a_string_of_16_characters_and_an_array_of_7_items_are_within_the_bounds():
    ok = decode_delta(ONE, _one_body(fields=[[MODE_DENSE, "<i1", b""]], changed=["<u1", b""]), 1)  # nf + 4 arrays
    assert ok.mat.tolist() == [[5, 6, 7]]
    with pytest.raises(PayloadError, match="^bad dtype '<i1 {13}'$"):  # unpacked, then refused by name
        decode_delta(ONE, _one_body(fields=[[MODE_DENSE, "<i1" + " " * 13, b""]]), 1)
    with pytest.raises(PayloadError, match="^unknown field mode 7$"):  # 7 items unpack
        decode_delta(ONE, _one_body(fields=[[7] * 7]), 1)


def test_the_largest_entity_count_a_decoder_accepts_is_max_slots():
    from gamesync.core import delta

    assert delta.MAX_SLOTS == MAX_SLOTS
    body = [MAX_SLOTS, b"", b"", b"", [b""], [[MODE_SAME]], None]  # all dead: the arrays stay untouched
    assert decode_delta(ONE, msgpack.packb(body, use_bin_type=True), 1).n == MAX_SLOTS


def test_a_schema_without_fields_still_encodes_its_entities():
    none = Schema([])
    alive, ids = np.ones(3, dtype=bool), np.array([1, 2, 3], dtype="<u4")
    a, b = State(1, 3, alive, ids, np.zeros((0, 3), dtype=np.int32)), State(2, 3, alive, ids, np.zeros((0, 3), dtype=np.int32))
    assert _body(encode_delta(none, b, a)) == [3, b"", b"", b"", [], [], None]
    assert decode_delta(none, encode_delta(none, b, a), 2, decode_delta(none, encode_delta(none, a), 1)).same_as(b)


def test_a_single_field_lists_the_few_entities_that_changed():
    n = 10
    alive, ids = np.ones(n, dtype=bool), np.arange(1, n + 1, dtype="<u4")
    base = State(1, n, alive, ids, np.zeros((1, n), dtype=np.int32))
    cur = State(2, n, alive, ids, np.array([[0, 0, 0, 4, 0, 0, 0, 0, 0, 0]], dtype=np.int32))
    raw = encode_delta(ONE, cur, base)
    assert _changed(raw) == [3] and _body(raw)[5] == [[MODE_DENSE, "<i1", b"\x04"]]


@pytest.mark.parametrize(("k", "nnz", "sparse"), [(97, 8, True), (96, 8, False), (25, 2, True), (24, 2, False)])
def test_sparse_is_chosen_only_when_it_is_more_than_sparse_ratio_times_smaller(k, nnz, sparse):
    """Sparse costs (1 + 2) bytes per non-zero with <u2 positions against 1 per entity dense:
    chosen when nnz * 3 * SPARSE_RATIO < k."""
    from gamesync.core.delta import SPARSE_RATIO, _encode_row

    assert SPARSE_RATIO == 4
    r = np.zeros(k, dtype=np.int32)
    r[:nnz] = 1
    assert (_encode_row(Int("v", "i4"), r, r)[0] == MODE_SPARSE) is sparse


@pytest.mark.parametrize(("k", "outliers", "mode"), [(16, 2, MODE_DENSE_OUTLIERS), (15, 2, MODE_DENSE), (8, 1, MODE_DENSE_OUTLIERS)])
def test_int8_plus_outliers_is_chosen_with_at_most_one_outlier_in_outlier_ratio(k, outliers, mode):
    from gamesync.core.delta import OUTLIER_RATIO, _encode_row

    assert OUTLIER_RATIO == 8
    r = np.ones(k, dtype=np.int32)
    r[:outliers] = 1000
    assert _encode_row(Int("v", "i4"), r, r)[0] == mode


SLOT_BAD = {
    "n below the baseline": "^entity count shrank below the baseline$",
    "removed beyond baseline": "^slot out of range$",  # slot 40 = the baseline's n
    "removed already dead": "^slot out of range$",
    "created beyond n": "^slot out of range$",  # slot 41 = n
    "created still alive": "^created slot is still alive$",
    "created ids short": "^expected 4 values, got 3$",
    "created values short": "^expected 4 values, got 3$",
    "created values list short": "^bad payload header$",
    "n negative": "^bad payload header$",
    "n not an int": "^bad payload header$",
}


@pytest.mark.parametrize("case", sorted(SLOT_BAD))
def test_slot_lists_that_do_not_fit_the_baseline_are_refused_by_their_own_check(case):
    ref, base, cur, body = _pair()
    with pytest.raises(PayloadError, match=SLOT_BAD[case]):
        _decode_body(BAD_BODIES[case](body), base, ref)


@pytest.mark.parametrize("created", [[2, 1], [1, 1], [1, 5, 2], [40, 1, 2, 5]])
def test_created_slots_must_strictly_ascend(created):
    ref, base, cur, body = _pair()
    b = _set(body, [2], _u("<u4", *created))
    b = _set(b, [3], _u("<u4", *range(100, 100 + len(created))))
    b = _set(b, [4], [bytes(len(created) * np.dtype(f.wire_dtype).itemsize) for f in SCHEMA])
    with pytest.raises(PayloadError, match="^created slots must ascend$"):
        _decode_body(b, base, ref)


@pytest.mark.parametrize("order", [[1, 0], [0, 0], [0, 2, 1]])
def test_removed_slots_must_strictly_ascend(order):
    ref, base, cur, body = _pair()
    alive = np.flatnonzero(base.alive)
    with pytest.raises(PayloadError, match="^removed slots must ascend$"):
        _decode_body(_set(body, [1], _u("<u4", *(alive[i] for i in order))), base, ref)


@pytest.mark.parametrize(("mode", "positions"), [(2, [0, 0]), (2, [1, 0]), (4, [0, 0]), (4, [2, 1])])
def test_sparse_and_outlier_positions_must_strictly_ascend(mode, positions):
    """A position twice would add its residuals once (numpy's fancy +=) or twice (a loop):
    implementations would disagree, so the format has each position once, ascending."""
    ref, base, cur, body = _pair()
    pos, res = _u("<u2", *positions), np.full(len(positions), 3, "<i4")
    enc = ([2, "<u2", pos, "<i1", res.astype("<i1").tobytes()] if mode == 2
           else [4, bytes(K), "<u2", pos, res.tobytes()])
    b = _set(_set(body, [5, FIELD_X], enc), [6], None)
    with pytest.raises(PayloadError, match=f"^{'sparse' if mode == 2 else 'outlier'} positions must ascend$"):
        _decode_body(b, base, ref)


def test_one_created_value_is_not_spread_over_several_created_slots():
    ref, base, cur, body = _pair()
    with pytest.raises(PayloadError, match="^expected 4 values, got 1$"):
        _decode_body(_set(body, [4, FIELD_X], body[4][FIELD_X][:2]), base, ref)  # one <u2 value
    with pytest.raises(PayloadError, match="^expected 4 values, got 1$"):
        _decode_body(_set(body, [3], _u("<u4", 7)), base, ref)


def test_a_decoded_state_keeps_the_layout_facts_of_its_baseline_or_drops_them():
    """Without a spawn or despawn the decoded state shares the baseline's alive and ids and
    its layout version (and its cached dense/live); otherwise its layout is unknown (-1),
    its ids are uint32 like every State's."""
    w = _world(6, x=1.0)
    s1 = State.capture(w, 1)
    w["x"][:6] += 1 / 64
    s2 = State.capture(w, 2, s1)
    c1 = decode_delta(SCHEMA, encode_delta(SCHEMA, s1), 1)
    assert c1.layout == -1 and c1.ids.dtype == np.dtype("<u4")
    c1b = State(1, c1.n, c1.alive, c1.ids, c1.mat, layout=7)
    c2 = decode_delta(SCHEMA, encode_delta(SCHEMA, s2, s1), 2, c1b)
    assert c2.alive is c1b.alive and c2.layout == 7 and c2.dense is True and c2.live == slice(0, 6)
    w.despawn([2])
    s3 = State.capture(w, 3, s2)
    c3 = decode_delta(SCHEMA, encode_delta(SCHEMA, s3, s2), 3, c2)
    assert c3.layout == -1 and c3.ids.dtype == np.dtype("<u4") and c3.dense is False and c3.same_as(s3)
