"""Every decoder that reads bytes from the network, fuzzed: random bytes and mutations of
valid input (bit flips, byte overwrites, truncation, splicing, insertion, deletion, and
length fields inflated to their maximum).

For each decoder, whatever the input:

- it raises nothing but the project's own errors (``GamesyncError`` subclasses, which
  include ``ProtocolViolation`` and ``DesyncError``; ``PayloadError`` from the payload codec;
  ``FrameTooBig`` from the frame reader; ``PeerClosed`` from a WebSocket connection);
- the memory it allocates (``tracemalloc`` peak) stays within a budget linear in the input's
  size, however large the lengths the input declares: about 1 MiB + 100 bytes per input
  byte for msgpack messages and frames; for deflated snapshot payloads up to twice what
  deflate can inflate the input to (1032:1 at most, capped by decompress_payload's limit),
  so a 4 KiB bomb costs ~9 MiB; plus, for snapshot payloads, a fixed cost per entity slot
  the payload declares (at most ``delta.MAX_SLOTS``);
- it never hangs (the hypothesis deadline).

Decoders: ``protocol.parse_client`` (what the server runs on every client message),
``protocol.parse_server``, ``delta.decompress_payload`` and ``delta.decode_delta``,
``wsframe.FrameReader`` and the server's ``WsConn.ingest`` behind it (the fast path with
wsproto taking over), and ``clientproto.ClientProtocol`` fed whole server sessions.
"""

from __future__ import annotations

import random
import socket
import tracemalloc
import zlib
from datetime import timedelta
from typing import Any, Callable

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage
from wsproto.events import BytesMessage

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.core.delta import (MAX_SLOTS, PayloadError, compress_payload, decode_delta, decompress_payload,
                                 encode_delta)
from gamesync.core.errors import GamesyncError
from gamesync.core.ratelimit import TokenBucket
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.world import World
from gamesync.server.wsconn import PeerClosed, WsConn
from gamesync.wsframe import FrameReader, FrameTooBig, binary_frame, masked_binary_frame

MiB = 1 << 20
#: hangs, not slowness, are what the deadline is for: generous for a noisy 2-core machine
FUZZ = dict(deadline=timedelta(seconds=3), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- memory ------------------------------------------------------------------------------------


class Peak:
    """Peak bytes allocated (tracemalloc) inside the block, above what was allocated before."""

    def __enter__(self) -> "Peak":
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]
        self.bytes = 0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bytes = tracemalloc.get_traced_memory()[1] - self._base
        if self._started:
            tracemalloc.stop()


def run_decoder(fn: Callable[[], Any], allowed: tuple[type[BaseException], ...], budget: int) -> Any:
    """``fn()``, which may raise only ``allowed``, within ``budget`` bytes of allocation.
    Returns its result, or the exception it raised."""
    with Peak() as peak:
        try:
            out = fn()
        except allowed as e:
            out = e
    assert peak.bytes <= budget, f"allocated {peak.bytes / MiB:.1f} MiB (budget {budget / MiB:.1f} MiB)"
    return out


# ---- mutations ---------------------------------------------------------------------------------

#: msgpack headers whose length field a mutation can inflate: first byte -> length field width
_LEN_FIELDS = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4,
               0xC7: 1, 0xC8: 2, 0xC9: 4}
#: headers planted by a mutation: each declares the largest length of its kind
_HUGE_HEADERS = [b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
                 b"\xc9\xff\xff\xff\xff\x01", b"\xdc\xff\xff", b"\xde\xff\xff", b"\xc5\xff\xff", b"\x9f", b"\x8f",
                 b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
                 b"\x7f\xff\xff\xff\xff\xff\xff\xff\xff"]  # the last: a WebSocket 64-bit length
_INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xC0, 0xC1, 0xC3, 0x90, 0x9F, 0xDC, 0xDD, 0xC4, 0xC6, 0xD9, 0xCC,
                0xCF, 0xE0, 0x82, 0x88, 0x89, 0x8A, 0xFE]

#: first bytes of WebSocket frames (FIN or not; binary, text, continuation, close, ping, pong)
_WS_FIRST = {0x82, 0x02, 0x81, 0x80, 0x00, 0x88, 0x89, 0x8A}
#: 7-bit length byte (the mask bit is kept) and extended length: 125, 2**16-1, 2**63-1, 2**64-1
_WS_LENGTHS = [b"\x7d", b"\x7e\xff\xff", b"\x7f\x7f" + b"\xff" * 7, b"\x7f" + b"\xff" * 8]

OPS = ["flip", "set", "truncate", "splice", "insert", "delete", "inflate", "plant", "repeat"]
mutation = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16), st.integers(0, 1 << 16),
                     st.binary(max_size=8))
mutations = st.lists(mutation, min_size=1, max_size=4)


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]], others: list[bytes]) -> bytes:
    """Apply the mutations in order (positions are taken modulo the current length)."""
    b = bytearray(data)
    for op, i, j, extra in ops:
        n = len(b)
        at = i % (n + 1)
        if op == "flip" and n:
            b[i % n] ^= 1 << (j % 8)
        elif op == "set" and n:
            b[i % n] = _INTERESTING[j % len(_INTERESTING)]
        elif op == "truncate":
            del b[at:]
        elif op == "splice":
            other = others[j % len(others)] if others else bytes(extra)
            b = b[:at] + other[j % (len(other) + 1):]
        elif op == "insert":
            b[at:at] = extra
        elif op == "delete":
            del b[at:at + 1 + j % 16]
        elif op == "inflate":  # the k-th length field found gets a huge value
            spots = [k for k in range(n - 1) if b[k] in _LEN_FIELDS or b[k] in _WS_FIRST]
            if spots:
                k = spots[j % len(spots)]
                if b[k] in _LEN_FIELDS and (j >> 8) & 1:  # a msgpack length field: its maximum
                    w = _LEN_FIELDS[b[k]]
                    b[k + 1:k + 1 + w] = b"\xff" * w
                else:  # a WebSocket frame header: the 16- or 64-bit length form, maximal
                    ln = _WS_LENGTHS[(j >> 9) % len(_WS_LENGTHS)]
                    b[k + 1:k + 2] = bytes([(b[k + 1] & 0x80) | ln[0]]) + ln[1:]
        elif op == "plant":
            head = _HUGE_HEADERS[j % len(_HUGE_HEADERS)]
            b[at:at + len(head)] = head
        elif op == "repeat":  # a run of one byte: nested arrays, maps, headers
            b[at:at] = bytes([extra[0] if extra else 0x91]) * (1 + j % 2048)
    return bytes(b)


# ---- a corpus of valid traffic -----------------------------------------------------------------

SCHEMA = Schema([
    Float("x", 0, 1000, 1 / 64),  # <u2
    Float("z", -1e6, 1e6, 1 / 1024),  # <u4
    Angle("a", 12, predict="hold"),
    Angle("spin", 32),
    Int("hp", "u1", predict="hold"),
    Int("score", "i4"),
    Int("big", "u4"),
    Int("t", "i1"),
])
NF = len(SCHEMA)
#: bytes a decoder may allocate per entity slot: the state's alive/ids/rows plus the
#: prediction's temporaries (int32 and int64 rows) and index arrays
SLOT_COST = 16 + NF * 24


def _states(seed: int, ticks: int) -> list[State]:
    rnd = random.Random(seed)
    w = World(SCHEMA)
    w.spawn(40, x=np.arange(40) * 3.0, z=np.arange(40) * -100.0, score=np.arange(40) * 1000, big=7, hp=100)
    vel = np.array([rnd.choice([-1, 0, 1]) for _ in range(40)], dtype=np.float64)
    out: list[State] = []
    prev = None
    for t in range(ticks):
        n = w.n
        w["x"][:n] = np.clip(w["x"][:n] + vel[:n] / 64 * 8, 0, 1000)
        w["z"][:n] += 1.0
        w["spin"][:n] += 0.3
        w["score"][:n] += rnd.randrange(-3, 4)
        if t % 4 == 3:
            w["a"][rnd.randrange(n)] = rnd.random() * 6
            w["big"][rnd.randrange(n)] = rnd.choice([0, 4_000_000_000])
        if t % 3 == 2:
            w.despawn([rnd.randrange(n), rnd.randrange(n)])
            w.spawn(rnd.randrange(1, 4), x=rnd.random() * 1000, t=rnd.randrange(-128, 128))
            vel = np.resize(vel, w.n)
        st_ = State.capture(w, t, prev)
        out.append(st_)
        prev = st_
    return out


STATES = _states(1, 12)


def _payloads() -> list[tuple[int, int, int, bytes]]:
    """(tick, base tick, ref tick, raw payload): full snapshots and deltas of every shape."""
    out = []
    for t in (0, 3, 11):
        out.append((t, p.NO_TICK, p.NO_TICK, encode_delta(SCHEMA, STATES[t])))
    for t, b, r in [(5, 4, 3), (8, 7, 6), (9, 7, 6), (11, 8, 5), (10, 9, p.NO_TICK), (6, 4, 1), (7, 6, 5), (11, 10, 9)]:
        out.append((t, b, r, encode_delta(SCHEMA, STATES[t], STATES[b], STATES[r] if r >= 0 else None)))
    return out


PAYLOADS = _payloads()
RAW = [raw for *_, raw in PAYLOADS]
COMPRESSED = [zlib.compress(raw) for raw in RAW]
WELCOME = p.Welcome(p.PROTOCOL_VERSION, 7, "room", "arena", 30.0, 0, SCHEMA.to_wire(), 32)



def _snapshot(t: int, b: int, r: int, events: list[Any]) -> bytes:
    raw = encode_delta(SCHEMA, STATES[t], STATES[b] if b >= 0 else None, STATES[r] if r >= 0 else None)
    return p.pack_snapshot(t, b, r, t, *compress_payload(raw), events)


#: a session as a server sends it: welcome, then snapshots, each against states the client
#: holds by then (full, full, then deltas with and without a reference), with events
SESSION = [
    p.pack_welcome(WELCOME),
    _snapshot(0, p.NO_TICK, p.NO_TICK, [[0, {"you": 3}], [2, 9, "bob"]]),
    _snapshot(3, p.NO_TICK, p.NO_TICK, [[5, 12.5]]),
    _snapshot(4, 3, p.NO_TICK, [[1, "hi", 4], [4, 2]]),
    _snapshot(5, 4, 3, [[3, 9]]),
    _snapshot(7, 5, 4, []),
    _snapshot(8, 7, 5, [[0, [1, 2, 3]]]),
]
SERVER_MSGS = SESSION + [msgpack.packb([10, "protocol", "nope"])]

CLIENT_MSGS = [
    p.pack_join("room", "alice"), p.pack_join("room", "bob", "arena"), p.pack_input(1, [1, 0]),
    p.pack_input(2, [0, -1], 5, 0b1011), p.pack_input(3, {"fire": True, "aim": [0.5, -1.25]}, 7),
    p.pack_ack(9, 0xFFFFFFFF), p.pack_ack(0), p.pack_message({"chat": "hello", "to": [1, 2]}, 3),
    p.pack_message(b"\x00\x01" * 20), p.pack_message_ack(12), p.pack_ping(123.5), p.pack_ping(7), p.pack_leave(),
]


def test_the_corpus_is_valid():
    for m in CLIENT_MSGS:
        p.parse_client(m)
    c = cp.ClientProtocol("room", "me")
    ticks = []
    for m in SESSION:
        for ev in c.receive(m, 0.0):
            if isinstance(ev, cp.StateUpdated):
                ticks.append(ev.state.tick)
                assert ev.state.same_as(STATES[ev.state.tick])
    assert ticks == [0, 3, 4, 5, 7, 8]
    for t, b, r, raw in PAYLOADS:
        got = decode_delta(SCHEMA, raw, t, STATES[b] if b >= 0 else None, STATES[r] if r >= 0 and b >= 0 else None)
        assert got.same_as(STATES[t])


# ---- protocol.parse_client / parse_server -------------------------------------------------------

#: parsing builds Python objects from msgpack: up to ~64 bytes per input byte (a 1-byte empty
#: array is a 56-byte list plus its slot in the parent)
def msg_budget(data: bytes) -> int:
    return MiB + 96 * len(data)


leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=12)
          | st.binary(max_size=12) | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)))
values = st.recursive(leaves, lambda kids: st.lists(kids, max_size=5)
                      | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), kids, max_size=3), max_leaves=20)


def structured(types: list[int]) -> st.SearchStrategy[bytes]:
    """Arrays of a real message type followed by random values (types right, fields wrong)."""
    return st.builds(lambda t, rest: msgpack.packb([t, *rest], use_bin_type=True),
                     st.sampled_from(types), st.lists(values, max_size=9))


@settings(max_examples=250, **FUZZ)
@given(data=st.binary(max_size=2048) | structured([1, 3, 5, 6, 7, 8, 11, 2, 4, 10, 0, 12]))
def test_parse_client_on_random_input(data):
    run_decoder(lambda: p.parse_client(data), (GamesyncError,), msg_budget(data))


@settings(max_examples=600, **FUZZ)
@given(i=st.integers(0, len(CLIENT_MSGS) - 1), ops=mutations)
def test_parse_client_on_mutated_messages(i, ops):
    data = mutate(CLIENT_MSGS[i], ops, CLIENT_MSGS)
    run_decoder(lambda: p.parse_client(data), (GamesyncError,), msg_budget(data))


@settings(max_examples=200, **FUZZ)
@given(data=st.binary(max_size=2048) | structured([2, 4, 10, 1, 3, 99]))
def test_parse_server_on_random_input(data):
    run_decoder(lambda: p.parse_server(data), (GamesyncError,), msg_budget(data))


@settings(max_examples=500, **FUZZ)
@given(i=st.integers(0, len(SERVER_MSGS) - 1), ops=mutations)
def test_parse_server_on_mutated_messages(i, ops):
    data = mutate(SERVER_MSGS[i], ops, SERVER_MSGS)
    run_decoder(lambda: p.parse_server(data), (GamesyncError,), msg_budget(data))


def _nest(depth: int, opener: bytes = b"\x91", leaf: bytes = b"\xc0") -> bytes:
    return opener * depth + leaf


# Headers that declare far more than follows them, and nesting from past protocol.MAX_DEPTH
# to far beyond msgpack's own depth limit.
HUGE_DECLARATIONS = {
    "array32 of 2**32-1": b"\xdd\xff\xff\xff\xff" + b"\x00" * 16,
    "map32 of 2**32-1": b"\xdf\xff\xff\xff\xff" + b"\x00" * 16,
    "bin32 of 2**32-1": b"\xc6\xff\xff\xff\xff" + b"\x00" * 16,
    "str32 of 2**32-1": b"\xdb\xff\xff\xff\xff" + b"a" * 16,
    "ext32 of 2**32-1": b"\xc9\xff\xff\xff\xff\x01" + b"\x00" * 16,
    "array16 of 65535 nils, short": b"\xdc\xff\xff" + b"\xc0" * 100,
    "inner array32 of 2**32-1": b"\x93\x03\x01\xdd\xff\xff\xff\xff\x01",
    "inner bin32 of 2**32-1": b"\x92\x06\xc6\xff\xff\xff\xff\x01",
    "snapshot with payload bin32 of 2**32-1": b"\x98\x04\x05\xff\xff\x00\x00\xc6\xff\xff\xff\xff\x00",
    "welcome with schema array32 of 2**32-1": b"\x99\x02\x02\x07\xa1r\xa1g\x1e\x00\xdd\xff\xff\xff\xff",
    "arrays nested 100000 deep": _nest(100_000),
    "maps nested 20000 deep": _nest(20_000, b"\x81\xa1k"),
    "arrays nested 600 deep in data": b"\x92\x06" + _nest(600),
    "arrays nested 2000 deep in data": b"\x92\x06" + _nest(2000),
    "arrays nested 1000 deep in data": b"\x92\x06" + _nest(1000),
    "arrays nested 1020 deep in an input": b"\x93\x03\x01" + _nest(1020),
    "16 KiB of empty arrays": b"\x92\x06\xdc\x3f\xf0" + b"\x90" * 0x3FF0,
    "16 KiB of empty maps": b"\x92\x06\xdc\x3f\xf0" + b"\x80" * 0x3FF0,
}


@pytest.mark.parametrize("data", HUGE_DECLARATIONS.values(), ids=HUGE_DECLARATIONS.keys())
@pytest.mark.parametrize("parse", [p.parse_client, p.parse_server], ids=["parse_client", "parse_server"])
def test_parsers_on_declared_lengths_and_nesting(parse, data):
    run_decoder(lambda: parse(data), (GamesyncError,), msg_budget(data))


# ---- delta.decompress_payload / decode_delta -----------------------------------------------------

#: the payload codec: the input itself (and one copy, e.g. the trailing bytes msgpack
#: reports), per input byte, on top of a fixed allowance
PAYLOAD_PER_BYTE = 4
#: deflate inflates at most 1032:1; zlib's output buffer costs up to twice the output
DEFLATE_RATIO = 1100


def declared_slots(raw: bytes) -> int:
    """The slot count a payload declares (what decode_delta may allocate per-slot state for),
    or 0 when it declares none the decoder would accept."""
    try:
        top = msgpack.unpackb(raw, raw=False, max_array_len=64, max_map_len=64)
    except Exception:
        return 0
    n = top[0] if isinstance(top, list) and top else None
    return n if type(n) is int and 0 <= n <= MAX_SLOTS else 0


def decode_budget(raw: bytes, base: State | None) -> int:
    slots = max(declared_slots(raw), base.n if base is not None else 0)
    return 2 * MiB + PAYLOAD_PER_BYTE * len(raw) + SLOT_COST * slots


def decode(raw: bytes, tick: int, base: State | None, ref: State | None) -> Any:
    out = run_decoder(lambda: decode_delta(SCHEMA, raw, tick, base, ref), (PayloadError,), decode_budget(raw, base))
    if isinstance(out, State):  # what decodes is a consistent state
        assert out.n == len(out.alive) == len(out.ids) == out.mat.shape[1] and out.mat.shape[0] == NF
        assert not out.ids[~out.alive].any()
    return out


states = st.sampled_from(STATES)


@settings(max_examples=500, **FUZZ)
@given(i=st.integers(0, len(PAYLOADS) - 1), ops=mutations, other_base=st.none() | states,
       tick_shift=st.sampled_from([0, 0, 0, 1, -1, 5]))
def test_decode_delta_on_mutated_payloads(i, ops, other_base, tick_shift):
    t, b, r, raw = PAYLOADS[i]
    base = STATES[b] if b >= 0 else None
    ref = STATES[r] if r >= 0 and base is not None else None
    if other_base is not None:  # the right payload against the wrong baseline, too
        base, ref = other_base, None
    bad = mutate(raw, ops, RAW)
    tick = t + tick_shift
    if base is not None and tick <= base.tick:
        tick = base.tick + 1
    decode(bad, tick, base, ref)


def _nodes(obj: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths to every element of nested lists (the payload's structure)."""
    out = [path]
    if isinstance(obj, list):
        for k, x in enumerate(obj):
            out += _nodes(x, path + (k,))
    return out


def _replace(obj: Any, path: tuple[int, ...], value: Any) -> Any:
    if not path:
        return value
    out = list(obj)
    out[path[0]] = _replace(obj[path[0]], path[1:], value)
    return out


slot_bytes = st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 64), max_size=8).map(
    lambda xs: np.array(xs, dtype="<u4").tobytes())
replacements = (values | slot_bytes | st.binary(max_size=64) | st.integers(-(2**63), 2**64 - 1)
                | st.sampled_from([0, 1, 2, 3, 4, 5, -1, "<u1", "<u2", "<u4", "<i1", "<i2", "<i4", "<f8", None, [], [0]]))


@settings(max_examples=400, **FUZZ)
@given(i=st.integers(0, len(PAYLOADS) - 1), picks=st.lists(st.tuples(st.integers(0, 10_000), replacements),
                                                          min_size=1, max_size=3))
def test_decode_delta_on_structurally_mutated_payloads(i, picks):
    """Valid msgpack, wrong content: any element of a payload (a slot list, a dtype, a mode,
    a count, a field encoding) replaced by something else."""
    t, b, r, raw = PAYLOADS[i]
    body = msgpack.unpackb(raw, raw=False, use_list=True)
    for k, value in picks:
        paths = _nodes(body)
        body = _replace(body, paths[k % len(paths)], value)
    bad = msgpack.packb(body, use_bin_type=True)
    decode(bad, t, STATES[b] if b >= 0 else None, STATES[r] if r >= 0 and b >= 0 else None)


@settings(max_examples=150, **FUZZ)
@given(raw=st.binary(max_size=2048) | st.builds(lambda v: msgpack.packb(v, use_bin_type=True), values),
       base=st.none() | states)
def test_decode_delta_on_random_payloads(raw, base):
    decode(raw, 20, base, None)


@settings(max_examples=300, **FUZZ)
@given(i=st.integers(0, len(COMPRESSED) - 1), ops=mutations)
def test_decompress_then_decode_on_mutated_deflate_streams(i, ops):
    z = mutate(COMPRESSED[i], ops, COMPRESSED)
    limit = 1 * MiB
    out = run_decoder(lambda: decompress_payload(1, z, limit), (PayloadError,), 2 * MiB + 2 * limit)
    if isinstance(out, bytes):
        t, b, r, _ = PAYLOADS[i]
        decode(out, t, STATES[b] if b >= 0 else None, STATES[r] if r >= 0 and b >= 0 else None)


def _tree(depth: int) -> bytes:
    """A complete tree of 7-element arrays: its arrays are all short, but there are 7**depth."""
    return b"\x90" if depth == 0 else b"\x97" + _tree(depth - 1) * 7


#: what each bomb inflates to (built on first use, not at collection)
BOMBS: dict[str, Callable[[], bytes]] = {
    "4 MiB of zeros": lambda: b"\0" * (4 * MiB),
    "4 MiB of nils": lambda: b"\xc0" * (4 * MiB),
    "array32 of 4 Mi empty arrays": lambda: b"\xdd\x00\x40\x00\x00" + b"\x90" * (4 * MiB),
    "array32 of 4 Mi empty maps": lambda: b"\xdd\x00\x40\x00\x00" + b"\x80" * (4 * MiB),
    "7-array tree 7 deep (960k arrays)": lambda: _tree(7),
    "4 Mi nested arrays in a payload": lambda: (b"\x97\x00\xc4\x00\xc4\x00\xc4\x00\xdd\x00\x40\x00\x00"
                                                + b"\x91" * (4 * MiB) + b"\xc0"),
    "bin32 of 4 MiB in a payload": lambda: b"\x97\x00\xc6\x00\x40\x00\x00" + b"\0" * (4 * MiB),
    "65 MiB of zeros (over the limit)": lambda: b"\0" * (65 * MiB),
}
_bombs: dict[str, bytes] = {}


def bomb(name: str) -> bytes:
    if name not in _bombs:
        _bombs[name] = zlib.compress(BOMBS[name](), 9)
    return _bombs[name]


@pytest.mark.parametrize("name", BOMBS)
def test_deflate_bombs_cost_at_most_their_inflated_size(name):
    """Deflate inflates up to ~1000x (and inflating costs up to twice the output); what the
    decoder builds from the inflated bytes must not multiply that again (one byte of msgpack
    can be a 56-byte Python list)."""
    z = bomb(name)
    assert len(z) < 80 * 1024
    inflated = run_decoder(lambda: decompress_payload(1, z), (PayloadError,), 2 * MiB + 2 * DEFLATE_RATIO * len(z))
    if isinstance(inflated, bytes):
        decode(inflated, 20, None, None)
        decode(inflated, 20, STATES[5], STATES[4])


def test_decompress_payload_stops_at_its_limit():
    z = bomb("4 MiB of zeros")
    out = run_decoder(lambda: decompress_payload(1, z, limit=256 * 1024), (PayloadError,), MiB)
    assert isinstance(out, PayloadError)


@pytest.mark.parametrize("n", [0, 1, 1000, 1 << 16, MAX_SLOTS + 1, 1 << 32, 1 << 63])
def test_memory_scales_with_the_declared_slot_count_and_stops_at_max_slots(n):
    """The one input-independent cost: a payload of a few bytes may declare up to MAX_SLOTS
    dead slots, and the decoded state holds arrays that long (SLOT_COST bytes a slot)."""
    raw = msgpack.packb([n, b"", b"", b"", [b""] * NF, [[0]] * NF, None], use_bin_type=True)
    out = decode(raw, 0, None, None)
    if n <= MAX_SLOTS:
        assert isinstance(out, State) and out.n == n and not out.alive.any()
    else:
        assert isinstance(out, PayloadError)


# ---- wsframe.FrameReader and the server's WsConn -------------------------------------------------

MAX_FRAME = 16 * 1024


def _client_stream() -> bytes:
    """Frames a client sends: binary messages of each length form, pings, pongs."""
    cli = WSConnection(ConnectionType.CLIENT)
    srv = WSConnection(ConnectionType.SERVER)
    srv.receive_data(cli.send(Request(host="h", target="/")))
    list(srv.events())
    cli.receive_data(srv.send(AcceptConnection()))
    list(cli.events())
    parts = [masked_binary_frame(CLIENT_MSGS[2]), masked_binary_frame(b"x" * 300), cli.send(Ping(b"p1")),
             masked_binary_frame(CLIENT_MSGS[7]), cli.send(Pong(b"")), masked_binary_frame(b""), cli.send(BytesMessage(data=b"frag", message_finished=False)),
             cli.send(BytesMessage(data=b"ment", message_finished=True)), cli.send(TextMessage(data="text")),
             masked_binary_frame(CLIENT_MSGS[5]), cli.send(CloseConnection(code=1000, reason="bye"))]
    return b"".join(parts)


CLIENT_STREAM = _client_stream()
SERVER_STREAM = b"".join(binary_frame(m) for m in SERVER_MSGS) + binary_frame(b"z" * 1000)
FRAME_STREAMS = [CLIENT_STREAM, SERVER_STREAM, masked_binary_frame(b"q" * 200) * 3]
cuts = st.lists(st.integers(0, 1 << 20), max_size=6)


def _chunks(data: bytes, points: list[int]) -> list[bytes]:
    ps = sorted({c % (len(data) + 1) for c in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(ps, ps[1:])] or [b""]


def feed_reader(masked: bool, data: bytes, points: list[int]) -> None:
    r = FrameReader(masked=masked, max_size=MAX_FRAME)

    def go() -> None:
        got = 0
        for chunk in _chunks(data, points):
            msgs, rest = r.feed(chunk)
            got += sum(len(m) for m in msgs)
            assert all(len(m) <= MAX_FRAME for m in msgs)
            if rest is not None:
                assert r.done and len(rest) <= len(data)
                break
        assert got <= len(data)

    run_decoder(go, (FrameTooBig,), MiB + 8 * len(data))


@settings(max_examples=400, **FUZZ)
@given(i=st.integers(0, len(FRAME_STREAMS) - 1), ops=mutations, points=cuts, masked=st.booleans())
def test_frame_reader_on_mutated_streams(i, ops, points, masked):
    feed_reader(masked, mutate(FRAME_STREAMS[i], ops, FRAME_STREAMS), points)


@settings(max_examples=150, **FUZZ)
@given(data=st.binary(max_size=4096), points=cuts, masked=st.booleans())
def test_frame_reader_on_random_bytes(data, points, masked):
    feed_reader(masked, data, points)


@pytest.mark.parametrize("length", [MAX_FRAME + 1, 1 << 20, (1 << 63) - 1, (1 << 64) - 1])
def test_frame_reader_refuses_a_huge_frame_from_its_header(length):
    if length < 0x10000:  # the minimal length form, as RFC 6455 requires
        header = bytes([0x82, 0xFE]) + length.to_bytes(2, "big") + b"mask"
    else:
        header = bytes([0x82, 0xFF]) + length.to_bytes(8, "big") + b"mask"
    r = FrameReader(masked=True, max_size=MAX_FRAME)
    out = run_decoder(lambda: r.feed(header), (FrameTooBig,), 64 * 1024)
    assert isinstance(out, FrameTooBig) or (length >> 63 and out[1] is not None)  # 2**63+: wsproto's to refuse


def _wsconn() -> tuple[WsConn, socket.socket]:
    """A server-side WsConn past its handshake (done by hand, without I/O), as app.py has it."""
    a, b = socket.socketpair()
    a.setblocking(False)
    conn = WsConn(a, MAX_FRAME, 64 * 1024, TokenBucket(1e12, 1e12, 0.0), TokenBucket(1e12, 1e12, 0.0))
    conn.ws.receive_data(WSConnection(ConnectionType.CLIENT).send(Request(host="h", target="/")))
    assert any(isinstance(ev, Request) for ev in conn.ws.events())
    conn.ws.send(AcceptConnection())
    conn.stream.start_fast()
    return conn, b


def feed_wsconn(data: bytes, points: list[int]) -> None:
    conn, peer = _wsconn()

    def go() -> None:
        for chunk in _chunks(data, points):
            msgs = conn.ingest(chunk, 1.0)
            assert all(isinstance(m, bytes) and len(m) <= MAX_FRAME for m in msgs)
            conn.take_pong()  # as the room does after every read

    try:
        run_decoder(go, (GamesyncError, PeerClosed), MiB + 8 * len(data))
    finally:
        conn.sock.close()
        peer.close()


@settings(max_examples=400, **FUZZ)
@given(ops=mutations, points=cuts)
def test_server_websocket_on_mutated_client_streams(ops, points):
    feed_wsconn(mutate(CLIENT_STREAM, ops, FRAME_STREAMS), points)


@settings(max_examples=100, **FUZZ)
@given(data=st.binary(max_size=4096), points=cuts)
def test_server_websocket_on_random_bytes(data, points):
    feed_wsconn(data, points)


# ---- clientproto.ClientProtocol ------------------------------------------------------------------


def session_budget(c: cp.ClientProtocol, m: bytes) -> int:
    """What receiving ``m`` may allocate: the message inflated (deflate: up to ~1000x) and
    copied once, plus the per-slot cost of the new state and of the states it is decoded
    against."""
    held = max((st_.n for st_, _ in c.mirror._states.values()), default=0) if c.mirror else 0
    slots = held
    try:
        snap = p.parse_server(m)
        if isinstance(snap, p.Snapshot):
            slots = max(held, declared_slots(decompress_payload(snap.flags, snap.payload)))
    except (GamesyncError, PayloadError):
        pass
    return 4 * MiB + 3 * DEFLATE_RATIO * len(m) + 2 * SLOT_COST * slots


def run_session(msgs: list[bytes]) -> None:
    """A client fed a whole session: any message may end it with a project error (after which
    a client closes and reconnects), nothing else; memory stays within session_budget."""
    c = cp.ClientProtocol("room", "me")
    for m in msgs:
        out = run_decoder(lambda: c.receive(m, 100.0), (GamesyncError,), session_budget(c, m))
        if isinstance(out, GamesyncError):
            return
        assert isinstance(out, list)
        for o in c.outbox:
            p.parse_client(o)  # whatever it answers is a valid client message
        c.outbox.clear()


@settings(max_examples=300, **FUZZ)
@given(which=st.lists(st.tuples(st.integers(0, len(SESSION) - 1), mutations), max_size=3))
def test_client_protocol_on_mutated_sessions(which):
    msgs = list(SESSION)
    for i, ops in which:
        msgs[i] = mutate(msgs[i], ops, SESSION)
    run_session(msgs)


ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack carries
welcome_fields = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["x", "id", "alive", "2x", ""]) | ints | st.none(),
    "kind": st.sampled_from(["float", "angle", "int", "quat"]) | ints,
    "wire": st.sampled_from(["<u1", "<u2", "<u4", "<i1", "<i4", "<f8", "u9", ""]) | ints,
    "predict": st.sampled_from(["linear", "hold", "cubic"]) | st.none(),
    "lo": st.floats() | ints | st.text(max_size=2), "hi": st.floats() | ints | st.text(max_size=2),
    "step": st.floats() | ints | st.none(), "bits": st.integers(-1, 70) | st.floats(),
})


@settings(max_examples=250, **FUZZ)
@given(schema=st.lists(welcome_fields | st.sampled_from(SCHEMA.to_wire()), max_size=6),
       history=st.integers(-1, 1 << 60), rate=st.floats() | ints)
def test_client_protocol_on_random_welcome_schemas(schema, history, rate):
    welcome = msgpack.packb([2, p.PROTOCOL_VERSION, 7, "room", "arena", rate, 0, schema, history],
                            use_bin_type=True)
    run_session([welcome] + SESSION[1:])


@pytest.mark.parametrize("field", [
    {"name": "x", "kind": "float"},  # no bounds
    {"name": "id", "kind": "int", "wire": "<u1", "predict": "hold"},  # a reserved name
    {"name": None, "kind": "int", "wire": "<u1", "predict": "hold"},  # not a string
    {"name": "x", "kind": "float", "lo": "", "hi": 0.0, "step": None},  # not numbers
    {"name": "x", "kind": "float", "lo": "a", "hi": "b", "step": 1},  # ordered, not numbers
    {"name": "x", "kind": "float", "lo": 0, "hi": float("inf"), "step": 1},  # infinitely many levels
    {"name": "x", "kind": "float", "lo": 0, "hi": 1e12, "step": 1},  # more levels than 32 bits
    {"name": "x", "kind": "angle", "bits": 12.0},  # bits must be an int
    {"name": "x", "kind": "int", "wire": "<f8"},  # no such wire type
])
def test_a_welcome_with_a_bad_schema_is_a_protocol_violation(field):
    welcome = msgpack.packb([2, p.PROTOCOL_VERSION, 7, "room", "arena", 30.0, 0, [field], 32])
    with pytest.raises(p.ProtocolViolation, match="bad schema in welcome"):
        cp.ClientProtocol("room", "me").receive(welcome, 0.0)


@settings(max_examples=100, **FUZZ)
@given(msgs=st.lists(st.binary(max_size=512) | st.builds(lambda v: msgpack.packb(v, use_bin_type=True),
                                                        st.lists(values, max_size=8).map(lambda l: [4] + l)),
                     max_size=4))
def test_client_protocol_on_random_messages_after_a_valid_welcome(msgs):
    run_session(SESSION[:2] + msgs)


def test_client_protocol_on_a_deflate_bomb_snapshot():
    for name in BOMBS:
        run_session(SESSION[:2] + [p.pack_snapshot(1, 0, p.NO_TICK, 0, 1, bomb(name), [])])
