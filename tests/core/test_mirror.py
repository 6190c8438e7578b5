"""The client's copy of the world (gamesync.core.mirror): applying, pruning, acking, caching.

Every test runs twice: with gamesync.core.mirror's classes and with their native twins
(gamesync.native._bots.Mirror and DecodeCache, where built), which must behave alike."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesync.core.delta import FLAG_DEFLATE, compress_payload, encode_delta
from gamesync.core.errors import DesyncError
from gamesync.core.acks import AckTracker
from gamesync.core.mirror import DecodeCache, Mirror
from gamesync.core.protocol import ACK_BITS, NO_TICK
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.world import World
from gamesync.native import bots as native_bots

_PYTHON = (Mirror, DecodeCache)


@pytest.fixture(scope="module", autouse=True, params=["python", "native"])
def mirror_classes(request):
    """The module's ``Mirror`` and ``DecodeCache``: the core's, then the native twins (module
    scope, so that hypothesis tests take it too)."""
    global Mirror, DecodeCache
    if request.param == "native":
        ext = native_bots._ext
        if ext is None:
            pytest.skip("the bots' native extension is not built here")
        Mirror, DecodeCache = ext.Mirror, ext.DecodeCache
    try:
        yield request.param
    finally:
        Mirror, DecodeCache = _PYTHON

SCHEMA = Schema([Float("x", 0, 1000, 1 / 64), Float("y", 0, 1000, 1 / 64), Angle("a", 10), Int("hp", "u1")])


class Server:
    """A tiny game: entities drift, sometimes die and respawn; every tick's state is kept."""

    def __init__(self, seed: int = 0, n: int = 30) -> None:
        self.rng = np.random.default_rng(seed)
        self.w = World(SCHEMA)
        self.w.spawn(n, x=self.rng.integers(0, 64000, n) / 64, y=500.0, hp=self.rng.integers(0, 255, n))
        self.vx = self.rng.integers(-5, 6, 4096) / 64
        self.states: dict[int, State] = {}
        self.tick = -1

    def step(self) -> State:
        w, n, r = self.w, self.w.n, self.rng
        w["x"][:n] = np.clip(w["x"][:n] + self.vx[:n], 0, 1000)
        w["a"][:n] += 0.05
        w["hp"][:n] = r.integers(0, 255, n) if r.random() < 0.2 else w["hp"][:n]
        if r.random() < 0.3:
            live = np.flatnonzero(w.alive[:n])
            if live.size:
                w.despawn(r.choice(live, 1))
        if r.random() < 0.3:
            w.spawn(int(r.integers(1, 3)), x=float(r.integers(0, 64000)) / 64)
        self.tick += 1
        st_ = State.capture(w, self.tick, self.states.get(self.tick - 1))
        self.states[self.tick] = st_
        return st_

    def run(self, ticks: int) -> "Server":
        for _ in range(ticks):
            self.step()
        return self

    def snap(self, tick: int, base: int = NO_TICK, ref: int = NO_TICK) -> tuple[int, int, int, int, bytes]:
        raw = encode_delta(SCHEMA, self.states[tick], self.states.get(base), self.states.get(ref) if base != NO_TICK else None)
        flags, data = compress_payload(raw)
        return tick, base, ref, flags, data


def test_full_snapshot_then_deltas_with_baseline_and_reference():
    srv = Server().run(6)
    m = Mirror(SCHEMA, history=30)
    assert m.tick == NO_TICK and m.latest is None and len(m) == 0
    s0 = m.apply(*srv.snap(0))
    assert s0 is not None and s0.same_as(srv.states[0]) and m.tick == 0 and m.latest is s0
    assert m.get(0) is s0
    s1 = m.apply(*srv.snap(1, 0))
    assert s1.same_as(srv.states[1])
    s3 = m.apply(*srv.snap(3, 1, 0))
    assert s3.same_as(srv.states[3]) and m.tick == 3
    s5 = m.apply(*srv.snap(5, 3, 1))
    assert s5.same_as(srv.states[5]) and m.latest is s5


def test_a_reference_without_baseline_is_ignored():
    srv = Server().run(3)
    m = Mirror(SCHEMA, history=30)
    st_ = m.apply(2, NO_TICK, 1, *srv.snap(2)[3:])  # ref 1 is not held, but there is no baseline
    assert st_.same_as(srv.states[2])


def test_stale_or_duplicate_snapshot_is_ignored():
    srv = Server().run(5)
    m = Mirror(SCHEMA, history=30)
    m.apply(*srv.snap(0))
    s4 = m.apply(*srv.snap(4, 0))
    held = len(m)
    assert m.apply(*srv.snap(3, 0)) is None
    assert m.apply(*srv.snap(4, 0)) is None
    assert m.apply(4, 0, NO_TICK, FLAG_DEFLATE, b"not even a payload") is None  # not decoded at all
    assert m.latest is s4 and m.tick == 4 and len(m) == held and m.get(3) is None


def test_missing_baseline_raises_desync_and_changes_nothing():
    srv = Server().run(5)
    m = Mirror(SCHEMA, history=30)
    s0 = m.apply(*srv.snap(0))
    with pytest.raises(DesyncError) as ei:
        m.apply(*srv.snap(3, 2))
    assert ei.value.close_code == 4010 and ei.value.code == "desync"
    assert m.latest is s0 and len(m) == 1


def test_missing_reference_raises_desync():
    srv = Server().run(5)
    m = Mirror(SCHEMA, history=30)
    m.apply(*srv.snap(0))
    m.apply(*srv.snap(2, 0))
    with pytest.raises(DesyncError):
        m.apply(*srv.snap(3, 2, 1))
    assert m.tick == 2


def test_undecodable_payload_raises_desync():
    srv = Server().run(3)
    m = Mirror(SCHEMA, history=30)
    m.apply(*srv.snap(0))
    with pytest.raises(DesyncError):
        m.apply(1, 0, NO_TICK, 0, b"\x93\x01\x02\x03")
    assert m.tick == 0


def test_corrupt_deflate_payload_raises_desync():
    srv = Server().run(3)
    m = Mirror(SCHEMA, history=30)
    m.apply(*srv.snap(0))
    with pytest.raises(DesyncError):
        m.apply(1, 0, NO_TICK, FLAG_DEFLATE, b"this is not a zlib stream")


def test_pruning_keeps_states_from_base_minus_one_and_their_baselines():
    srv = Server().run(8)
    m = Mirror(SCHEMA, history=30)
    plan = [(0, NO_TICK, NO_TICK), (1, 0, NO_TICK), (2, 0, NO_TICK), (3, 1, 0), (4, 2, 1), (5, 4, 2), (6, 4, 3),
            (7, 6, 5)]
    expect = [{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 6},
              {4, 5, 6, 7}]
    for (t, b, r), want in zip(plan, expect):
        assert m.apply(*srv.snap(t, b, r)).same_as(srv.states[t])
        held = {t_ for t_ in range(8) if m.get(t_) is not None}
        assert held == want, (t, held)
        assert len(m) == len(want)


def test_full_snapshots_keep_one_history_worth_of_states():
    srv = Server().run(21)
    m = Mirror(SCHEMA, history=8)
    for t in range(21):
        m.apply(*srv.snap(t))
    assert {t for t in range(21) if m.get(t) is not None} == set(range(12, 21))


@pytest.mark.parametrize(("held", "top", "bits"), [
    ([0], 0, 0),
    ([0, 1], 1, 1),
    ([0, 3, 10], 10, (1 << 6) | (1 << 9)),
    ([0, 1, 32, 33], 33, 1 | (1 << 31)),  # tick 0 is 33 before the newest: out of reach
    ([5, 6, 7, 8, 9], 9, 0b1111),
    ([0, 40], 40, 0),
])
def test_ack_bits_report_held_ticks_before_the_newest(held, top, bits):
    srv = Server().run(top + 1)
    m = Mirror(SCHEMA, history=1000)
    for t in held:
        m.apply(*srv.snap(t))
    assert m.tick == top
    assert m.ack_bits() == bits
    assert 0 <= m.ack_bits() < 1 << ACK_BITS


def test_ack_bits_of_an_empty_mirror_are_zero():
    assert Mirror(SCHEMA, history=10).ack_bits() == 0


# ---- the server's baseline policy against a pruning mirror -------------------------------------

def Session(lag: int, history: int) -> AckTracker:
    """The server's per-client baseline bookkeeping, exactly as the server runs it."""
    return AckTracker(history, lag)


def next_tick(srv: Server, hist: dict[int, State], history: int, acks: list[tuple[int, int, int]],
              sess: AckTracker) -> State:
    """Step the world, keep the last ``history`` ticks, and hand the server the acks due by
    now (``acks`` holds (due tick, acked tick, bits))."""
    cur = srv.step()
    hist[cur.tick] = cur
    for t in [t for t in hist if t <= cur.tick - history]:
        del hist[t]
    for a in sorted(a for a in acks if a[0] <= cur.tick):
        acks.remove(a)
        sess.on_ack(a[1], a[2])
    return cur


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ticks=st.integers(5, 80), lag=st.integers(0, 4),
       history=st.sampled_from([4, 8, 30]), loss=st.sampled_from([0.0, 0.1, 0.3, 0.5]),
       ack_loss=st.sampled_from([0.0, 0.2, 0.6]), max_delay=st.integers(0, 4))
def test_pruning_never_drops_a_state_the_server_may_still_use(seed, ticks, lag, history, loss, ack_loss, max_delay):
    srv = Server(seed)
    rng = np.random.default_rng(seed ^ 0x5EED)
    sess = Session(lag, history)
    m = Mirror(SCHEMA, history=history)
    hist: dict[int, State] = {}
    wire: list[tuple[int, float, tuple]] = []
    acks: list[tuple[int, int, int]] = []
    applied = 0
    for _ in range(ticks):
        cur = next_tick(srv, hist, history, acks, sess)
        b, r = sess.choose(cur.tick, hist)
        snap = srv.snap(cur.tick, b, r)
        sess.on_sent(cur.tick, b)
        if rng.random() >= loss:
            wire.append((cur.tick + int(rng.integers(0, max_delay + 1)), rng.random(), snap))
        for item in sorted(w for w in wire if w[0] <= cur.tick):
            wire.remove(item)
            st_ = m.apply(*item[2])  # must never raise DesyncError
            if st_ is not None:
                applied += 1
                assert st_.same_as(srv.states[st_.tick])
                assert len(m) <= st_.tick + 1
                if rng.random() >= ack_loss:
                    acks.append((cur.tick + int(rng.integers(0, max_delay + 1)), st_.tick, m.ack_bits()))
    assert applied > 0 or loss > 0


# ---- decode cache ---------------------------------------------------------------------------

def test_decode_cache_returns_the_identical_state_for_the_same_key():
    srv = Server().run(4)
    cache = DecodeCache()
    a, b = Mirror(SCHEMA, 30, cache), Mirror(SCHEMA, 30, cache)
    sa0, sb0 = a.apply(*srv.snap(0)), b.apply(*srv.snap(0))
    assert sa0 is sb0
    assert (cache.hits, cache.misses) == (1, 1)
    sa2 = a.apply(*srv.snap(2, 0))
    sb2 = b.apply(*srv.snap(2, 0))
    assert sa2 is sb2 and sa2.same_as(srv.states[2])
    assert (cache.hits, cache.misses) == (2, 2)
    sb3 = b.apply(*srv.snap(3, 2, 0))
    sa3 = a.apply(*srv.snap(3, 0))  # another baseline: another key
    assert sa3 is not sb3 and sa3.same_as(sb3)
    assert (cache.hits, cache.misses) == (2, 4)


def test_decode_cache_key_includes_the_payload_and_flags():
    srv = Server().run(2)
    cache = DecodeCache()
    s0 = srv.states[0]
    raw = encode_delta(SCHEMA, srv.states[1], s0)
    x = cache.decode(SCHEMA, 1, s0, None, 0, raw)
    y = cache.decode(SCHEMA, 1, s0, None, 0, raw)
    import zlib

    z = cache.decode(SCHEMA, 1, s0, None, FLAG_DEFLATE, zlib.compress(raw))
    assert x is y and z is not x and z.same_as(x)
    assert (cache.hits, cache.misses) == (1, 2)


def test_decode_cache_forgets_old_ticks():
    srv = Server().run(12)
    cache = DecodeCache(keep_ticks=3)
    m = Mirror(SCHEMA, 30, cache)
    for t in range(12):
        m.apply(*srv.snap(t))
    assert sorted(k[0] for k in cache._d) == [8, 9, 10, 11]
    other = Mirror(SCHEMA, 30, cache)
    other.apply(*srv.snap(11))
    assert cache.hits == 1
    other2 = Mirror(SCHEMA, 30, cache)
    other2.apply(*srv.snap(5))  # evicted: decoded again
    assert cache.hits == 1 and cache.misses == 13


def test_decode_cache_errors_become_desync_and_are_not_cached():
    srv = Server().run(2)
    cache = DecodeCache()
    m = Mirror(SCHEMA, 30, cache)
    m.apply(*srv.snap(0))
    with pytest.raises(DesyncError):
        m.apply(1, 0, NO_TICK, 0, b"\x01")
    with pytest.raises(DesyncError):
        m.apply(1, 0, NO_TICK, 0, b"\x01")
    assert cache.misses == 3 and cache.hits == 0
    assert m.apply(*srv.snap(1, 0)).same_as(srv.states[1])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ticks=st.integers(5, 80), lag=st.integers(0, 3),
       history=st.sampled_from([4, 8, 30]), loss=st.sampled_from([0.0, 0.2]),
       ack_loss=st.sampled_from([0.0, 0.3]), max_delay=st.integers(0, 5),
       crowded=st.sampled_from([0.0, 0.5, 1.0]), skip=st.booleans())
def test_payload_sharing_past_the_cap_and_skipping_never_desync(seed, ticks, lag, history, loss, ack_loss,
                                                                 max_delay, crowded, skip):
    """The room's whole policy against a pruning mirror: when the tick's payload cap is full
    of other clients' (baseline, reference) pairs, the client rides one it can decode
    (``usable``/``settle``) or gets the full snapshot; and a client that reads several
    snapshots at once decodes only the newest (``ClientProtocol.receive_many``). No
    snapshot may ever need a tick the client no longer holds."""
    srv = Server(seed)
    rng = np.random.default_rng(seed ^ 0xCA9)
    sess = Session(lag, history)
    m = Mirror(SCHEMA, history=history)
    hist: dict[int, State] = {}
    wire: list[tuple[int, float, tuple]] = []
    acks: list[tuple[int, int, int]] = []
    rode = 0
    for _ in range(ticks):
        cur = next_tick(srv, hist, history, acks, sess)
        floor = sess.base
        key = sess.choose(cur.tick, hist)
        if rng.random() < crowded:  # the cap is full with other clients' pairs, none of them ours
            ticks_held = sorted(hist)
            others = {(int(b), int(r)) for b, r in zip(rng.choice(ticks_held, 6), rng.choice(ticks_held + [-1], 6))
                      if r < b} - {key}
            fits = [k for k in others if sess.usable(k, floor)]
            key = sess.settle(max(fits)) if fits else sess.restart()
            rode += bool(fits)
        b, r = key
        snap = srv.snap(cur.tick, b, r)
        sess.on_sent(cur.tick, b)
        if rng.random() >= loss:
            wire.append((cur.tick + int(rng.integers(0, max_delay + 1)), rng.random(), snap))
        batch = sorted(w for w in wire if w[0] <= cur.tick)
        for item in batch:
            wire.remove(item)
        if skip and batch:
            batch = [max(batch, key=lambda w: w[2][0])]  # only the newest tick is decoded
        for item in batch:
            st_ = m.apply(*item[2])  # must never raise DesyncError
            if st_ is not None:
                assert st_.same_as(srv.states[st_.tick])
                if rng.random() >= ack_loss:
                    acks.append((cur.tick + int(rng.integers(0, max_delay + 1)), st_.tick, m.ack_bits()))


def test_the_classes_in_use_are_the_ones_named(mirror_classes):
    native = mirror_classes == "native"
    assert (Mirror.__module__ == "gamesync.native._bots") is native
    assert (DecodeCache.__module__ == "gamesync.native._bots") is native
