"""The WebSocket fast path agrees with wsproto byte for byte, and hands over at the right byte."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, Request, TextMessage

from gamesync.wsframe import FrameReader, FrameTooBig, binary_frame, header_end, masked_binary_frame


def _pair() -> tuple[WSConnection, WSConnection]:
    cli, srv = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    srv.receive_data(cli.send(Request(host="h", target="/")))
    list(srv.events())
    cli.receive_data(srv.send(AcceptConnection()))
    list(cli.events())
    return cli, srv


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


# small messages, and big ones (16- and 64-bit length forms) from a seeded generator
message = st.binary(max_size=300) | st.tuples(st.integers(65_530, 70_000), st.integers(0, 2**32)).map(
    lambda t: random.Random(t[1]).randbytes(t[0]))


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(message, min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 1 << 20), max_size=8))
def test_client_frames_parse_like_wsproto_however_the_stream_is_cut(msgs, cuts):
    cli, _ = _pair()
    stream = b"".join(cli.send(BytesMessage(data=m)) for m in msgs)  # wsproto's own masked frames
    r = FrameReader(masked=True, max_size=1 << 20)
    got: list[bytes] = []
    for chunk in _chunks(stream, cuts):
        out, rest = r.feed(chunk)
        assert rest is None
        got += out
    assert got == msgs


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(message, min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 1 << 20), max_size=8))
def test_our_frames_are_what_wsproto_reads(msgs, cuts):
    _, srv = _pair()
    cli2, _ = _pair()
    # server -> client: unmasked frames we build, read by a wsproto client
    cli2.receive_data(b"".join(binary_frame(m) for m in msgs))
    assert [bytes(e.data) for e in cli2.events() if isinstance(e, BytesMessage)] == msgs
    # client -> server: masked frames we build, read by a wsproto server
    for chunk in _chunks(b"".join(masked_binary_frame(m) for m in msgs), cuts):
        srv.receive_data(chunk)
    assert [bytes(e.data) for e in srv.events() if isinstance(e, BytesMessage)] == msgs


def test_server_frames_read_back_unmasked():
    r = FrameReader(masked=False, max_size=1 << 20)
    msgs = [b"", b"x" * 125, b"y" * 126, b"z" * 70_000]
    out, rest = r.feed(b"".join(binary_frame(m) for m in msgs))
    assert out == msgs and rest is None


@pytest.mark.parametrize("other", ["close", "text", "fragment", "unmasked"])
def test_first_unhandled_frame_and_everything_after_it_go_to_wsproto(other):
    cli, srv = _pair()
    before = [cli.send(BytesMessage(data=b"a")), cli.send(BytesMessage(data=b"b"))]
    after = cli.send(BytesMessage(data=b"e"))  # built first: nothing can be sent after a close
    if other == "close":
        odd = cli.send(CloseConnection(code=1000, reason="bye"))
    elif other == "text":
        odd = cli.send(TextMessage(data="t"))
    elif other == "fragment":
        odd = cli.send(BytesMessage(data=b"c", message_finished=False)) + cli.send(BytesMessage(data=b"d"))
    else:
        odd = binary_frame(b"u")  # a client must mask
    r = FrameReader(masked=True, max_size=1024)
    out, rest = r.feed(b"".join(before) + odd + after)
    assert out == [b"a", b"b"]
    assert rest == odd + after and r.done
    # wsproto, fed exactly the rest, sees the odd frame first and then the next message
    srv.receive_data(rest)
    events = list(srv.events())
    first = events[0]
    if other == "close":
        assert isinstance(first, CloseConnection) and first.code == 1000
        return
    if other == "text":
        assert isinstance(first, TextMessage) and first.data == "t"
    elif other == "fragment":
        assert isinstance(first, BytesMessage) and first.data == b"c" and not first.message_finished
    else:
        assert isinstance(first, CloseConnection) and first.code == 1002  # wsproto refuses it
        return
    last = events[-1]
    assert isinstance(last, BytesMessage) and last.data == b"e"


def test_pings_and_pongs_are_counted_and_the_newest_ping_is_kept_for_an_answer():
    cli, _ = _pair()
    stream = (cli.send(BytesMessage(data=b"a")) + cli.send(Ping(b"one")) + cli.send(Pong(b"x"))
              + cli.send(Ping(b"two")) + cli.send(BytesMessage(data=b"b")))
    r = FrameReader(masked=True, max_size=1024)
    assert r.feed(stream) == ([b"a", b"b"], None)
    assert r.controls == 3 and r.take_ping() == b"two" and r.take_ping() is None


@pytest.mark.parametrize("head", [
    bytes((0x82, 0xFE)) + (5).to_bytes(2, "big"),             # 16-bit length for 5 bytes
    bytes((0x82, 0xFF)) + (300).to_bytes(8, "big"),           # 64-bit length for 300 bytes
    bytes((0x82, 0xFF)) + (1 << 63 | 70_000).to_bytes(8, "big"),  # most significant bit set
])
def test_non_minimal_or_invalid_lengths_are_left_to_wsproto(head):
    r = FrameReader(masked=True, max_size=1 << 20)
    out, rest = r.feed(head + b"\0" * 4)
    assert out == [] and rest == head + b"\0" * 4 and r.done


def test_handover_happens_even_when_the_odd_frame_starts_mid_chunk_after_a_partial_frame():
    cli, _ = _pair()
    a = cli.send(BytesMessage(data=b"hello"))
    odd = cli.send(TextMessage(data="t"))
    r = FrameReader(masked=True, max_size=1024)
    assert r.feed(a[:3]) == ([], None)
    out, rest = r.feed(a[3:] + odd)
    assert out == [b"hello"] and rest == odd


@pytest.mark.parametrize("size", [1025, 70_000, 1 << 40])
def test_frame_announcing_more_than_the_limit_is_refused_from_its_header(size):
    r = FrameReader(masked=True, max_size=1024)
    if size < 126:
        head = bytes((0x82, 0x80 | size))
    elif size < 0x10000:
        head = bytes((0x82, 0xFE)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x82, 0xFF)) + size.to_bytes(8, "big")
    with pytest.raises(FrameTooBig) as e:
        r.feed(head)  # the header alone is enough: nothing is buffered waiting for the body
    assert e.value.size == size


def test_header_end_finds_the_blank_line():
    assert header_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 27
    assert header_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x82\x00") == 27
    assert header_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1
