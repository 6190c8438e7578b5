"""The native wire path (gamesync/native/_wire.pyx) and the pure-Python one agree on everything:
the same random byte streams, cut at the same random points, give the same messages, control
state, hand-over bytes and errors; the batched reads give the same results and the batched
writes put the same bytes on the wire."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import on_path
from socketpairs import socket_pairs
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from gamesync import native, sockio
from gamesync.core.acks import AckTracker
from gamesync.core.errors import GamesyncError, RateLimited
from gamesync.core.inputs import InputQueue
from gamesync.core.protocol import NO_TICK
from gamesync.core.ratelimit import TokenBucket
from gamesync.wsframe import FrameReader, FrameTooBig, binary_frame, binary_header, frame_size, masked_binary_frame
from gamesync.wsstream import WsStream

needs_native = pytest.mark.skipif(not native.available(), reason="the native extension is not built here")
MAX = 4096  # the readers' message limit in these tests


def test_the_extension_is_built_wherever_a_compiler_is():
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine: the pure-Python path is the one that runs")
    assert native.available(), native.describe()


def test_gamesync_pure_forces_the_python_path():
    code = "from gamesync import native; print(native.active()); print(native.describe())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, native.PURE_ENV: "1"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "False" and "pure-Python" in out[1]


# -- random streams --------------------------------------------------------------------------------


def _frame(opcode: int, payload: bytes, masked: bool, key: bytes, fin: bool = True) -> bytes:
    """Any frame, masked or not (what the generators below cannot get from wsframe)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    m = 0x80 if masked else 0
    head = bytes((b0, m | n)) if n < 126 else bytes((b0, m | 126)) + n.to_bytes(2, "big")
    if not masked:
        return head + payload
    return head + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


@st.composite
def pieces(draw: Any, masked: bool) -> bytes:
    """One piece of a stream: mostly the common frames, sometimes anything else."""
    key = draw(st.binary(min_size=4, max_size=4))
    data = draw(st.binary(max_size=200))
    kind = draw(st.sampled_from(["data"] * 6 + ["big", "ping", "pong", "text", "fragment", "close", "oversize",
                                                "nonminimal", "garbage"]))
    if kind == "data":
        return masked_binary_frame(data, key) if masked else binary_frame(data)
    if kind == "big":  # the 16-bit length form
        big = data * (300 // max(1, len(data)) + 1) if data else b"\0" * 300
        return masked_binary_frame(big, key) if masked else binary_frame(big)
    if kind in ("ping", "pong"):
        return _frame(0x9 if kind == "ping" else 0xA, data[:125], masked, key)
    if kind == "text":
        return _frame(0x1, b"hi", masked, key)
    if kind == "fragment":
        return _frame(0x2, data, masked, key, fin=False) + _frame(0x0, b"tail", masked, key)
    if kind == "close":
        return _frame(0x8, (1000).to_bytes(2, "big") + b"bye", masked, key)
    if kind == "oversize":
        return bytes((0x82, (0x80 if masked else 0) | 127)) + (MAX * 20).to_bytes(8, "big")
    if kind == "nonminimal":
        return bytes((0x82, (0x80 if masked else 0) | 126, 0, 5)) + (key if masked else b"") + b"hello"
    return data


def streams(masked: bool) -> st.SearchStrategy[tuple[bytes, list[int]]]:
    return st.tuples(st.lists(pieces(masked), min_size=1, max_size=10).map(b"".join),
                     st.lists(st.integers(0, 1 << 16), max_size=8))


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def _outcome(f: Callable[[], Any]) -> Any:
    try:
        return ("ok", f())
    except (GamesyncError, FrameTooBig) as e:
        return ("error", type(e).__name__, str(e), getattr(e, "close_code", None))


# -- the frame readers -------------------------------------------------------------------------------


def _reader_trace(reader: Any, chunks: list[bytes]) -> list[Any]:
    trace = []
    for chunk in chunks:
        out = _outcome(lambda c=chunk: reader.feed(c))
        trace.append((out, reader.done, reader.controls, reader.ping))
        if out[0] != "ok" or reader.done:
            break
    return trace


@needs_native
@settings(max_examples=150, deadline=None)
@given(masked=st.booleans(), data=st.data())
def test_both_frame_readers_give_the_same_results_however_the_stream_is_cut(masked, data):
    stream, cuts = data.draw(streams(masked))
    chunks = _chunks(stream, cuts)
    py = _reader_trace(FrameReader(masked, MAX), chunks)
    with on_path(True):
        fast = _reader_trace(native.frame_reader(masked, MAX), chunks)
    assert fast == py


# -- the whole stream engine, server side ------------------------------------------------------------


def _server_stream() -> WsStream:
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(WSConnection(ConnectionType.CLIENT).send(Request(host="h", target="/")))
    list(ws.events())
    ws.send(AcceptConnection())
    s = WsStream(ws, masked=True, max_message=MAX)
    s.start_fast()
    return s


def _stream_trace(chunks: list[bytes]) -> list[Any]:
    s = _server_stream()
    trace = []
    for chunk in chunks:
        out = _outcome(lambda c=chunk: s.receive(c))
        trace.append((out, s.take_controls(), s.take_pong(), s.peer_close, s.fast))
        if out[0] != "ok" or s.peer_close is not None:
            break
    return trace


@needs_native
@settings(max_examples=150, deadline=None)
@given(stream=streams(masked=True))
def test_the_stream_engine_gives_the_same_events_and_bytes_on_both_paths(stream):
    data, cuts = stream
    chunks = _chunks(data, cuts)
    with on_path(False):
        py = _stream_trace(chunks)
    with on_path(True):
        fast = _stream_trace(chunks)
    assert fast == py


# -- batched reads and writes on real sockets ---------------------------------------------------------


def _drain(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            got = sock.recv(1 << 20)
        except BlockingIOError:
            return out
        if not got:
            return out
        out += got


@needs_native
@settings(max_examples=40, deadline=None)
@given(stream=streams(masked=True))
def test_batched_reads_give_the_same_results_on_both_paths(stream):
    data, cuts = stream
    chunks = _chunks(data, cuts)
    with socket_pairs(2) as [(a1, b1), (a2, b2)]:
        r_py, r_fast = FrameReader(True, MAX), native._ext.FrameReader(True, MAX)  # type: ignore[union-attr]
        for chunk in [*chunks, b""]:
            if r_py.done or r_py.too_big:
                break
            if chunk:
                b1.sendall(chunk)
                b2.sendall(chunk)
            py = sockio.recv_frames([a1], [r_py], 1 << 16)
            fast = native._ext.recv_frames([a2], [r_fast], 1 << 16)  # type: ignore[union-attr]
            assert fast == py
            assert (r_fast.done, r_fast.controls, r_fast.ping, r_fast.too_big) == \
                (r_py.done, r_py.controls, r_py.ping, r_py.too_big)


@needs_native
@settings(max_examples=40, deadline=None)
@given(frames=st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=6), min_size=1, max_size=6))
def test_batched_writes_put_the_same_bytes_on_the_wire_on_both_paths(frames):
    n = len(frames)
    with socket_pairs(2 * n) as pairs:
        py = sockio.send_parts([a for a, _ in pairs[:n]], frames)
        fast = native._ext.send_parts([a for a, _ in pairs[n:]], frames)  # type: ignore[union-attr]
        assert fast == py == [sum(map(len, f)) for f in frames]
        for i in range(n):
            assert _drain(pairs[i][1]) == _drain(pairs[n + i][1]) == b"".join(frames[i])


@needs_native
@settings(max_examples=40, deadline=None)
@given(msgs=st.lists(st.binary(max_size=70_000).filter(lambda m: len(m) < 200 or len(m) > 65_536) | st.binary(
    max_size=300), min_size=1, max_size=3), keys=st.binary(min_size=12, max_size=12))
def test_masked_writes_put_the_same_bytes_on_the_wire_on_both_paths(msgs, keys):
    n = len(msgs)
    with socket_pairs(2 * n) as pairs:
        for a, _ in pairs:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        py = sockio.send_masked([a for a, _ in pairs[:n]], msgs, keys)
        fast = native._ext.send_masked([a for a, _ in pairs[n:]], msgs, keys)  # type: ignore[union-attr]
        assert fast == py
        for i, m in enumerate(msgs):
            want = masked_binary_frame(m, keys[4 * i:4 * i + 4])
            assert py[i] == frame_size(len(m), masked=True) == len(want)
            assert _drain(pairs[i][1]) == _drain(pairs[n + i][1]) == want


@pytest.mark.parametrize("path", ["python", "native"])
def test_a_full_socket_takes_part_of_a_frame_and_the_result_says_how_much(path):
    if path == "native" and not native.available():
        pytest.skip("the native extension is not built here")
    send_parts = native._ext.send_parts if path == "native" else sockio.send_parts  # type: ignore[union-attr]
    recv_frames = native._ext.recv_frames if path == "native" else sockio.recv_frames  # type: ignore[union-attr]
    reader = native._ext.FrameReader(True, MAX) if path == "native" else FrameReader(True, MAX)  # type: ignore
    with socket_pairs(1) as [(a, b)]:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = [b"x" * 1_000_000, b"y" * 10]
        sent = send_parts([a, a], [big, big])
        assert 0 < sent[0] < 1_000_010 and sent[1] == 0  # part of the first, none of the second
        assert recv_frames([a], [reader], 100)[0] == (-errno.EAGAIN, [], None)  # nothing to read
        b.close()
        assert send_parts([a], [big])[0] == -errno.EPIPE  # the peer is gone: minus the errno
        assert recv_frames([a], [reader], 100)[0][0] in (0, -errno.ECONNRESET)  # end of stream


def test_a_ping_then_the_peers_close_in_one_read_owes_no_pong():
    """wsproto refuses to send once the peer has closed: a ping answered in the same read as the
    close is simply not answered (both paths), instead of raising."""
    mask = b"\x01\x02\x03\x04"
    ping = bytes([0x89, 0x82]) + mask + bytes(a ^ b for a, b in zip(b"hi", mask, strict=False))
    close = bytes([0x88, 0x82]) + b"\x00\x00\x00\x00" + (1000).to_bytes(2, "big")
    for use in (False, True):
        with on_path(use):
            s = _server_stream()
            s.receive(ping + close)
            assert s.take_pong() is None
            assert s.peer_close is not None


# -- the common input message ------------------------------------------------------------------------

_ints = st.one_of(st.integers(-40, 200), st.integers(-(1 << 63), (1 << 64) - 1),
                  st.sampled_from([0, 1, 1 << 53, (1 << 53) - 1, 1 << 32, (1 << 32) - 1, -1]))
_values = st.one_of(_ints, st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3),
                    st.lists(_ints, max_size=20), st.binary(max_size=3))


@st.composite
def _input_messages(draw: st.DrawFn) -> bytes:
    """Input-shaped msgpack (some valid, some one field off), or a few bytes cut from one."""
    import msgpack

    head = draw(st.sampled_from([3, 3, 3, 1, 4, 6]))
    msg = [head, draw(st.one_of(_ints, _values)), draw(st.one_of(st.lists(_ints, max_size=20), _values))]
    msg += draw(st.lists(st.one_of(_ints, _values), max_size=3))
    return _cut(draw, msgpack.packb(msg, use_bin_type=True), draw(st.sampled_from(["whole", "whole", "short", "long"])))


def _cut(draw: Any, data: bytes, cut: str) -> bytes:
    """The message as it is, cut short, or with bytes after it."""
    if cut == "short":
        return data[:draw(st.integers(0, len(data) - 1))]
    if cut == "long":
        return data + draw(st.binary(min_size=1, max_size=3))
    return data


@needs_native
@settings(max_examples=2000, deadline=None)
@given(_input_messages())
def test_the_common_input_is_recognised_alike_on_both_paths(data):
    from gamesync.core import protocol as p

    fast = native._ext.input_fields(data)  # type: ignore[union-attr]
    slow = p.input_fields(data)
    if fast is not None:  # the native reader may leave an odd encoding to the Python path, never the reverse
        assert fast == slow and [type(x) for x in fast[1]] == [int] * len(fast[1])
    if slow is not None:
        ev = p.parse_client(data)  # and what it recognised is what parse_client makes of it
        assert ev == p.InputFrame(*slow)


@pytest.mark.parametrize("path", ["native", "pure"])
def test_the_usual_inputs_are_recognised_on_both_paths(path):
    from gamesync.core import protocol as p

    if path == "native" and not native.available():
        pytest.skip("the native extension is not built here")
    with on_path(path == "native"):
        assert native.input_fields(p.pack_input(7, [1, -1])) == (7, [1, -1], None, 0)
        assert native.input_fields(p.pack_input(70000, [0, 1], 300, 5)) == (70000, [0, 1], 300, 5)
        assert native.input_fields(p.pack_input(2, [0, 1], 9)) == (2, [0, 1], 9, 0)
        assert native.input_fields(p.pack_input(0, [0, 1])) is None  # seq starts at 1
        assert native.input_fields(p.pack_input(3, {"move": 1})) is None  # other game data: parse_client
        assert native.input_fields(p.pack_ack(5)) is None


# -- the usual snapshot (the bots' side) -------------------------------------------------------------

_ticks = st.one_of(st.integers(-3, 300), st.sampled_from([0, -1, (1 << 53) - 1, 1 << 53, 1 << 63, -(1 << 63)]))


@st.composite
def _snapshot_messages(draw: st.DrawFn) -> bytes:
    """Snapshot-shaped msgpack (most valid, some with one field off), or a few bytes cut from one."""
    import msgpack

    tick = draw(st.one_of(st.integers(0, 300), st.sampled_from([(1 << 53) - 1, 1 << 16, 1 << 32])))
    base = draw(st.sampled_from([tick - 1, -1, tick, max(-1, tick - 2)]))
    ref = draw(st.sampled_from([base - 1, -1, base, max(-1, base - 3)]))
    payload = draw(st.one_of(st.binary(max_size=300), st.binary(min_size=70000, max_size=70001)))
    msg = [4, tick, base, ref, draw(st.integers(0, 1 << 20)), draw(st.integers(0, 3)), payload, []]
    if draw(st.booleans()):  # one field off
        odd = st.one_of(_ticks, _values, st.lists(st.lists(_ints, max_size=2), min_size=1, max_size=2))
        msg[draw(st.integers(0, len(msg) - 1))] = draw(odd)
    cut = draw(st.sampled_from(["whole", "whole", "whole", "short", "long", "drop"]))
    if cut == "drop":
        msg.pop(draw(st.integers(0, len(msg) - 1)))
    return _cut(draw, msgpack.packb(msg, use_bin_type=True), cut)


@needs_native
@settings(max_examples=2000, deadline=None)
@given(_snapshot_messages())
def test_the_usual_snapshot_is_recognised_alike_on_both_paths(data):
    from gamesync.core import protocol as p

    fast = native._ext.snapshot_fields(data)  # type: ignore[union-attr]
    slow = p.snapshot_fields(data)
    if fast is not None:  # the native reader may leave an odd encoding to the Python path, never the reverse
        assert fast == slow and [type(x) for x in fast] == [int] * 5 + [bytes]
    if slow is not None:
        assert p.parse_server(data) == p.Snapshot(*slow, [])  # and what it recognised is what parse_server makes


@pytest.mark.parametrize("path", ["native", "pure"])
def test_the_usual_snapshots_are_recognised_on_both_paths(path):
    """The bots' native reader (``_shared.read_snapshot``, through ``_wire.snapshot_fields``) and
    the Python one (``protocol.snapshot_fields``, the Python bots')."""
    from gamesync.core import protocol as p

    if path == "native" and not native.available():
        pytest.skip("the native extension is not built here")
    fields = native._ext.snapshot_fields if path == "native" else p.snapshot_fields  # type: ignore[union-attr]
    big = bytes(range(256)) * 300  # a payload past bin 16
    assert fields(p.pack_snapshot(9, 8, 7, 3, 0, b"ab", [])) == (9, 8, 7, 3, 0, b"ab")
    assert fields(p.pack_snapshot(9, -1, -1, 0, 1, b"", [])) == (9, -1, -1, 0, 1, b"")
    assert fields(p.pack_snapshot(70000, 69999, 5, 1 << 40, 1, big, [])) == (70000, 69999, 5, 1 << 40, 1, big)
    assert fields(p.pack_snapshot(9, 8, 7, 3, 0, b"ab", [[5, 1.5]])) is None  # events: parse_server
    assert fields(p.pack_snapshot(9, 9, 7, 3, 0, b"ab", [])) is None  # baseline not before the tick
    assert fields(p.pack_snapshot(9, -1, 7, 3, 0, b"ab", [])) is None  # reference without baseline
    assert fields(p.pack_input(7, [1, -1])) is None


# -- the token bucket --------------------------------------------------------------------------------


@needs_native
@settings(max_examples=300, deadline=None)
@given(rate=st.floats(0, 1e6), burst=st.floats(1e-3, 1e6),
       ops=st.lists(st.tuples(st.sampled_from(["take", "take_oversize", "refill"]), st.floats(0, 2e6),
                              st.floats(-1, 5)), max_size=30))
def test_the_native_token_bucket_keeps_the_same_numbers(rate: float, burst: float,
                                                        ops: list[tuple[str, float, float]]) -> None:
    """The same calls at the same times (time sometimes going back) give the same answers and
    leave the same tokens, to the last bit."""
    with on_path(True):
        nat = native.token_bucket(rate, burst, 1.0)
    py = TokenBucket(rate, burst, 1.0)
    assert type(nat) is not TokenBucket
    now = 1.0
    for op, n, dt in ops:
        now += dt
        args = (now,) if op == "refill" else (n, now)
        assert getattr(nat, op)(*args) == getattr(py, op)(*args)
        assert (nat.tokens, nat._last, nat.rate, nat.burst) == (py.tokens, py._last, py.rate, py.burst)


@pytest.mark.parametrize("path", ["native", "python"])
def test_both_token_buckets_refuse_what_the_core_one_refuses(path: str) -> None:
    if path == "native" and not native.available():
        pytest.skip("the native extension is not built here")
    with on_path(path == "native"):
        for rate, burst in ((-1.0, 1.0), (1.0, 0.0)):
            with pytest.raises(ValueError):
                native.token_bucket(rate, burst)
        with pytest.raises(ValueError):
            native.token_bucket(1.0, 1.0).take(-1, 0.0)


# -- the ack tracker ---------------------------------------------------------------------------------


class _History:
    """The ticks a room's history holds: ``lo`` to ``hi``."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __contains__(self, tick: int) -> bool:
        return self.lo <= tick <= self.hi


_ACK_OPS = st.tuples(st.sampled_from(["send", "ack", "choose", "usable", "settle"]),
                     st.integers(0, 40), st.integers(0, 2**32 - 1), st.integers(-3, 45))


def _tracker_state(t: Any) -> tuple[Any, ...]:
    return (t._ticks, t._bases, t.newest_sent, t.acked, t.ack_bits, t.base, t.waits, t.keep, t.lag, t.stream)


@needs_native
@settings(max_examples=400, deadline=None)
@given(keep=st.integers(1, 40), lag=st.integers(0, 4), stream=st.booleans(), ops=st.lists(_ACK_OPS, max_size=60))
def test_the_native_ack_tracker_gives_the_same_answers(keep: int, lag: int, stream: bool,
                                                       ops: list[tuple[str, int, int, int]]) -> None:
    """A room's life with one client, as random steps: snapshots sent at rising ticks against
    any baseline, acks for any tick (sent or not), baselines chosen against a history of the
    last ``keep`` ticks, payload keys tried and settled. Every answer, every raised error and
    the whole state after each step are the same."""
    with on_path(True):
        nat = native.ack_tracker(keep, lag, stream)
    py = AckTracker(keep, lag, stream)
    assert type(nat) is not AckTracker
    tick = 0
    for op, step, bits, other in ops:
        tick += step
        hist = _History(tick - keep, tick)
        results = []
        for t in (nat, py):
            try:
                if op == "send":
                    base = NO_TICK if other <= 0 or other > tick else tick - other
                    results.append(t.on_sent(tick, base))
                elif op == "ack":
                    results.append(t.on_ack(tick - other, bits))
                elif op == "choose":
                    results.append(t.choose(tick, hist))
                elif op == "usable":
                    key = (tick - other, tick - other - bits % 3)
                    results.append((t.usable(key, tick - keep), t.holds(tick - other), t.was_sent(tick - other),
                                    t.sent_base(tick - other)))
                else:
                    results.append((t.settle((tick - other, NO_TICK)), t.restart()))
            except Exception as e:  # noqa: BLE001 - the same error on both sides is the point
                results.append((type(e), str(e)))
        assert results[0] == results[1]
        assert _tracker_state(nat) == _tracker_state(py)


# -- the input queue ---------------------------------------------------------------------------------


@needs_native
@settings(max_examples=400, deadline=None)
@given(max_per_tick=st.integers(1, 6), backlog=st.integers(0, 3), drain=st.integers(1, 5), ints=st.booleans(),
       ticks=st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(-1, 1), st.integers(-1, 1)), max_size=8),
                      max_size=25))
def test_the_native_input_queue_hands_out_the_same_inputs(max_per_tick: int, backlog: int, drain: int, ints: bool,
                                                          ticks: list[list[tuple[int, int, int]]]) -> None:
    """Seqs arriving at random (late, repeated with other data, out of order, in floods) give
    the same inputs at the same ticks, the same input ack, backlog state and flood errors: with
    the inputs kept as objects, and as C rows once ``expect_ints`` said they are integers (a
    repeated seq's last arrival wins either way)."""
    with on_path(True):
        nat = native.input_queue(max_per_tick, backlog, drain)
    py = InputQueue(max_per_tick, backlog, drain)
    assert type(nat) is not InputQueue
    if ints:
        for q in (nat, py):
            q.expect_ints((-1, -1), (1, 1))
        assert nat.ints == py.ints == 2
    for arrivals in ticks:
        for seq, dx, dy in arrivals:
            outcomes = []
            for q in (nat, py):
                try:
                    q.add(seq, (dx, dy))
                    outcomes.append(None)
                except RateLimited as e:
                    outcomes.append(str(e))
                    q.clear()
            assert outcomes[0] == outcomes[1]
        assert (nat.arrived, len(nat)) == (py.arrived, len(py))
        taken = [[(f.seq, f.data) for f in q.take()] for q in (nat, py)]
        assert taken[0] == taken[1]
        assert (nat.last_applied, nat._standing, nat.arrived) == (py.last_applied, py._standing, py.arrived)


# -- the frame of the room's native send pass ------------------------------------------------------


@needs_native
@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 255, 256, 0xFFFF, 0x10000, 0x10001, 2**31, 2**40])
def test_the_native_frame_headers_are_wsframes(n: int) -> None:
    assert native._ext is not None
    head = binary_header(n)
    assert native._ext.frame_header(n) == head
    assert native._ext.frame_header(n, True) == bytes((head[0], head[1] | 0x80)) + head[2:]  # a client's


@needs_native
@pytest.mark.parametrize("v", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 2**32 - 1, 2**32, 2**53 - 1, 2**63 - 1,
                               -1, -32, -33, -128, -129, -2**15 - 1, -2**31 - 1, -2**63])
def test_the_native_msgpack_integers_are_msgpacks(v: int) -> None:
    """The input ack in the send pass and the bots' inputs are written as msgpack writes them."""
    assert native._ext is not None
    assert native._ext.msgpack_int(v) == msgpack.packb(v)


@needs_native
def test_the_native_ack_tracker_refuses_a_ring_it_cannot_hold() -> None:
    with on_path(True):
        with pytest.raises(MemoryError):
            native.ack_tracker(2**61, 0)
        with pytest.raises(ValueError):
            native.ack_tracker(-2, 0)
        with pytest.raises(ValueError):  # a payload key is a (baseline, reference) pair
            native.ack_tracker(8, 1).usable((5,), 0)


@needs_native
def test_the_passes_read_a_sockets_descriptor_as_fileno_gives_it() -> None:
    """The read and send passes take a socket's descriptor from the object itself (no method
    call): the same number as ``fileno()`` for open sockets of either kind, -1 once closed, and
    anything else is asked."""
    assert native._ext is not None
    a, b = socket.socketpair()
    tcp = socket.socket()

    class Fake:
        def fileno(self) -> int:
            return 12345

    try:
        for s in (a, b, tcp):
            assert native._ext.descriptor(s) == s.fileno() >= 0
        assert native._ext.descriptor(Fake()) == 12345
    finally:
        for s in (a, b, tcp):
            s.close()
    assert native._ext.descriptor(a) == a.fileno() == -1
