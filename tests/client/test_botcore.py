"""The bots' per-state and per-input work (gamesync.client.botcore) and its native twin
(gamesync/native/_bots.pyx) give the same results: the same scripts of reads and inputs leave
the same stats, inputs awaiting their ack, protocol and mirror state, and put the same bytes on
the wire; the batched read leaves the same bots to the general path."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import on_path
from socketpairs import socket_pairs

from gamesync import native
from gamesync.client import botcore
from gamesync.client.botcore import PYTHON_KIT, Kit
from gamesync.core import protocol as p
from gamesync.core.clientproto import ClientProtocol, StateSkipped, StateUpdated
from gamesync.core.delta import compress_payload, encode_delta
from gamesync.core.errors import GamesyncError
from gamesync.core.schema import Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.world import World
from gamesync.native import bots as native_bots
from gamesync.wsframe import binary_frame

SCHEMA = Schema([Float("x", 0, 1000, 1 / 64), Int("hp", "u1")])
needs_native = pytest.mark.skipif(native_bots._ext is None, reason="the bots' native extension is not built here")


def _native_kit() -> Kit:
    with on_path(True):
        k = botcore.kit()
    assert k.native
    return k


def _kits() -> list[Kit]:
    return [PYTHON_KIT, _native_kit()]


def world_states(seed: int, ticks: int) -> list[State]:
    """A small world that drifts, loses and gains entities: its state at every tick."""
    rng = np.random.default_rng(seed)
    w = World(SCHEMA)
    w.spawn(12, x=rng.integers(0, 64000, 12) / 64, hp=rng.integers(0, 255, 12))
    out: list[State] = []
    for t in range(ticks):
        n = w.n
        w["x"][:n] = np.clip(w["x"][:n] + rng.integers(-5, 6, n) / 64, 0, 1000)
        if rng.random() < 0.3 and w.alive[:n].any():
            w.despawn(rng.choice(np.flatnonzero(w.alive[:n]), 1))
        if rng.random() < 0.3:
            w.spawn(1, x=float(rng.integers(0, 64000)) / 64)
        out.append(State.capture(w, t, out[-1] if out else None))
    return out


def snapshot(states: list[State], tick: int, base: int, ref: int, ack: int, events: list[Any]) -> bytes:
    b = states[base] if base >= 0 else None
    r = states[ref] if ref >= 0 and b is not None else None
    flags, payload = compress_payload(encode_delta(SCHEMA, states[tick], b, r))
    return p.pack_snapshot(tick, base, ref, ack, flags, payload, events)


# -- scripts: the same reads and inputs on both paths ----------------------------------------------


@st.composite
def scripts(draw: st.DrawFn) -> tuple[int, int, list[Any]]:
    """(seed, first input seq, ops): reads of snapshot messages (usual ones, stale ones, ones with
    events, ones on a baseline the bot never had, garbage), inputs, a direction of another kind,
    the measured window starting."""
    ops: list[Any] = []
    tick = -1
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["read"] * 3 + ["input"] * 3 + ["measure", "direction"]))
        if kind == "read":
            msgs = []
            for _ in range(draw(st.integers(1, 4))):
                what = draw(st.sampled_from(["usual"] * 6 + ["full", "stale", "events", "unheld", "garbage"]))
                if what == "garbage":
                    msgs.append(("garbage", 0, 0, 0))
                    continue
                if what != "stale" or tick < 0:
                    tick += draw(st.integers(1, 2))
                back = draw(st.integers(1, 3))
                base = -1 if what == "full" or tick - back < 0 else tick - back
                if what == "unheld":
                    base = max(-1, tick - 6)
                ref = base - 1 if base > 0 and draw(st.booleans()) else -1
                msgs.append((what, max(0, tick if what != "stale" else tick - 1), base, ref))
            ops.append(("read", msgs, draw(st.integers(-2, 3)), draw(st.floats(0, 0.1))))
        elif kind == "input":
            ops.append(("input", draw(st.floats(0, 0.7)), draw(st.booleans())))
        elif kind == "direction":
            ops.append(("direction", draw(st.sampled_from([[1, 0], (200, -100), ("a", 1), (True, 0), (-32, 127)]))))
        else:
            ops.append(("measure",))
    seq = draw(st.sampled_from([0, 100, 250, 65530, (1 << 32) - 3, 1 << 40]))
    return draw(st.integers(0, 2**32 - 1)), seq, ops


def _observe(core: Any, proto: ClientProtocol, cache: Any, fails: list[str]) -> tuple[Any, ...]:
    m = proto.mirror
    assert m is not None
    return (list(fails), core.states, core.decoded, core.payload_bytes, list(core.latencies), core.visible_sum,
            core.visible_samples, core.inputs, list(core.pending), proto.input_seq, proto.input_ack,
            list(proto.unacked), len(m), m.tick, m.ack_bits(), [t for t in range(-1, 80) if m.get(t) is not None],
            cache and (cache.hits, cache.misses, sorted(k[:4] for k in cache._d)), core.direction, core.next_turn)


def run_script(kit: Kit, seed: int, seq: int, ops: list[Any], states: list[State]) -> list[Any]:
    """What one bot's core and protocol hold after each op, on ``kit``'s path."""
    cache = kit.cache() if seed % 3 else None  # (a third of the scripts decode alone)
    fails: list[str] = []
    core = kit.core(random.Random(seed), fails.append)
    proto = ClientProtocol("r", "b", auto_ack=False, cache=cache, new_mirror=kit.mirror)
    proto.input_seq = seq
    proto.mirror = kit.mirror(SCHEMA, 8, cache)
    core.proto = proto
    core.attach(None, None)
    now, trace = 0.0, []
    for op in ops:
        if op[0] == "read":
            _, specs, lag, dt = op
            now += dt
            msgs = [b"\x01" if w == "garbage" else
                    snapshot(states, t, b, r, max(0, proto.input_seq - lag), [[p.Ev.EVENT, 1]] if w == "events" else [])
                    for w, t, b, r in specs]
            i = core.take(msgs, now)
            trace.append(i)
            if 0 <= i < len(msgs):  # what the swarm's Bot.apply does next
                try:
                    events = proto.receive_many(msgs[i:], now)
                except GamesyncError as e:
                    fails.append(f"{e.code}: {e.reason}")
                    events = []
                for ev in events:
                    if isinstance(ev, (StateUpdated, StateSkipped)):
                        core.on_state(ev.input_ack, ev.size, type(ev) is StateUpdated, now)
        elif op[0] == "input":
            now += op[1]
            trace.append(core.next_input(now))
            if op[2]:
                core.input_sent(now)
        elif op[0] == "direction":
            core.direction = op[1]
            core.next_turn = now + 5.0
        else:
            core.measuring = True
            core.reset_stats()
        trace.append(_observe(core, proto, cache, fails))
    return trace


@needs_native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_the_same_reads_and_inputs_leave_the_same_state_on_both_paths(script):
    seed, seq, ops = script
    states = world_states(seed, 80)
    python, native_ = (run_script(k, seed, seq, ops, states) for k in _kits())
    assert python == native_


@pytest.mark.parametrize("seq", [0, 126, 127, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, 1 << 62])
def test_inputs_are_the_bytes_the_protocol_packs(seq):
    for kit in [PYTHON_KIT, _native_kit()] if native_bots._ext is not None else [PYTHON_KIT]:
        proto = ClientProtocol("r", "b", auto_ack=False)
        proto.input_seq = seq
        core = kit.core(random.Random(seq), lambda why: None)
        core.proto = proto
        msg = core.next_input(0.0)
        assert msg == msgpack.packb([3, seq + 1, list(core.direction)])
        assert proto.unacked[-1] == (seq + 1, core.direction)


def test_the_cores_limits_are_the_same_on_both_paths():
    assert botcore.MAX_PENDING_INPUTS == 256 and botcore.VISIBLE_EVERY == 8  # the native file's enum


# -- the batched read and send, on sockets ---------------------------------------------------------


class Owner:
    """What a swarm registers in its poll set: something with a ``core``."""

    def __init__(self, name: str, core: Any) -> None:
        self.name = name
        self.core = core


def _unmasked(data: bytes) -> list[bytes]:
    """The payloads of masked binary frames (short ones: the bots' inputs)."""
    out = []
    while data:
        n = data[1] & 0x7F
        key = data[2:6]
        out.append(bytes(c ^ key[i & 3] for i, c in enumerate(data[6:6 + n])))
        data = data[6 + n:]
    return out


def _batch(kit: Kit) -> list[Any]:
    """Five bots read in one ``read_ready`` (the usual snapshots, one with events after them, a
    ping, one off the fast path, one on a baseline it never had), then send twice, the second
    time with one peer gone: what is left to Python, the counts, the bytes on the wire."""
    with on_path(kit.native):
        return _batch_on(kit)


def _batch_on(kit: Kit) -> list[Any]:
    states = world_states(7, 10)
    cache, sel, owners, fails = kit.cache(), kit.ready_set(), [], []
    with socket_pairs(5) as made:
        for k, (mine, peer) in enumerate(made):
            core = kit.core(random.Random(k), fails.append)
            proto = ClientProtocol("r", f"b{k}", auto_ack=False, cache=cache, new_mirror=kit.mirror)
            proto.mirror = kit.mirror(SCHEMA, 8, cache)
            core.proto = proto
            core.attach(mine, None if k == 3 else native.frame_reader(False, 1 << 20))
            core.measuring = True
            owners.append(Owner(f"b{k}", core))
            sel.add(mine, owners[-1])
            frames = [snapshot(states, 0, -1, -1, 0, []), snapshot(states, 1, 0, -1, 0, [])]
            frames.append(snapshot(states, 2, 1, 0, 0, [[p.Ev.EVENT, k]] if k == 1 else []))
            if k == 4:
                frames.append(snapshot(states, 5, 4, -1, 0, []))
            data = b"".join(binary_frame(f) for f in frames)
            peer.send(b"\x89\x00" + data if k == 2 else data)
        left = kit.read_ready(sel, lambda: 1.5, 1 << 16)
        out: list[Any] = [sorted((o.name, what, now, [len(x) for x in data] if what >= 0 else data is None)
                                 for o, data, what, now in left)]
        out.append([(o.core.states, o.core.payload_bytes, o.core.visible_sum, len(o.core.proto.mirror))
                    for o in owners])
        cores = [o.core for o in owners]
        kit.send_slot(cores, 2.0)
        made[1][1].close()
        kit.send_slot(cores, 2.5)
        out.append([_unmasked(peer.recv(4096)) for k, (_, peer) in enumerate(made) if k != 1])
        out.append([(c.inputs, list(c.pending), c.proto.input_seq) for c in cores])
    out.append(fails)
    sel.close()
    return out


@needs_native
def test_the_batched_read_and_send_give_the_same_results_on_both_paths():
    python, native_ = (_batch(k) for k in _kits())
    assert python == native_
    assert [(name, what) for name, what, _, _ in python[0]] == [
        ("b1", 2), ("b2", botcore.ABSORB), ("b3", botcore.PUMP), ("b4", botcore.FAILED)]
    fails = python[-1]
    assert len(fails) == 2 and "baseline tick 4" in fails[0] and fails[1] == "send failed: [Errno 32] Broken pipe"
