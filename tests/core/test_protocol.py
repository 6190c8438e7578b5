"""Wire messages (gamesync.core.protocol): builders round-trip, parsers reject anything off-spec."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core import errors as E
from gamesync.core import protocol as p
from gamesync.core.errors import ProtocolViolation

FAST = settings(max_examples=150, deadline=None)


def pk(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def violation(fn, data: bytes) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as ei:
        fn(data)
    assert ei.value.close_code == 1002 and ei.value.code == "protocol"
    return ei.value


# game data: anything msgpack carries without extension types, with string map keys
leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
          | st.text(max_size=20) | st.binary(max_size=20))
game_data = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                         max_leaves=12)
uint = st.integers(0, p.MAX_INT)
bits = st.integers(0, (1 << p.ACK_BITS) - 1)
names = st.text(min_size=1, max_size=p.MAX_NAME)
rooms = st.text(min_size=1, max_size=p.MAX_ROOM)


# ---- builders round-trip -----------------------------------------------------------------------

@FAST
@given(room=rooms, name=names, game=st.none() | st.text(min_size=1, max_size=p.MAX_ROOM), version=uint)
def test_join_round_trips(room, name, game, version):
    assert p.parse_client(p.pack_join(room, name, game, version)) == p.Join(version, room, name, game)


def test_join_defaults_to_the_current_protocol_version_and_no_game():
    assert p.parse_client(p.pack_join("r", "n")) == p.Join(p.PROTOCOL_VERSION, "r", "n", None)
    assert p.parse_client(p.pack_join("r", "n", "")) == p.Join(p.PROTOCOL_VERSION, "r", "n", None)


@FAST
@given(seq=st.integers(1, p.MAX_INT), data=game_data, ack=st.none() | uint, ack_bits=bits)
def test_input_round_trips(seq, data, ack, ack_bits):
    got = p.parse_client(p.pack_input(seq, data, ack, ack_bits))
    assert got == p.InputFrame(seq, data, ack, ack_bits if ack is not None else 0)


@FAST
@given(tick=uint, b=bits)
def test_ack_round_trips(tick, b):
    assert p.parse_client(p.pack_ack(tick, b)) == p.SnapshotAck(tick, b)


@FAST
@given(data=game_data, ack_id=st.none() | uint)
def test_message_round_trips(data, ack_id):
    assert p.parse_client(p.pack_message(data, ack_id)) == p.ClientMessage(data, ack_id)


@FAST
@given(ack_id=uint)
def test_message_ack_round_trips(ack_id):
    assert p.parse_client(p.pack_message_ack(ack_id)) == p.MessageAck(ack_id)


@FAST
@given(t=st.floats(allow_nan=False) | st.integers(-(2**63), 2**63 - 1))
def test_ping_round_trips(t):
    assert p.parse_client(p.pack_ping(t)) == p.Ping(t)


def test_leave_round_trips():
    assert p.parse_client(p.pack_leave()) == p.Leave()


schema_wire = st.lists(st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8), "kind": st.sampled_from(["float", "int"]),
                                               "wire": st.sampled_from(["<u1", "<i4"])}), max_size=4)


@FAST
@given(version=uint, client_id=st.integers(1, p.MAX_INT), room=rooms, game=rooms, tick_rate=st.floats(0.1, 1000),
       tick=st.integers(0, p.MAX_INT), schema=schema_wire, history=st.integers(1, p.MAX_INT))
def test_welcome_round_trips(version, client_id, room, game, tick_rate, tick, schema, history):
    w = p.Welcome(version, client_id, room, game, tick_rate, tick, schema, history)
    assert p.parse_server(p.pack_welcome(w)) == w


@st.composite
def tick_base_ref(draw):
    """A snapshot's (tick, base, ref): base is -1 or earlier than tick, ref -1 or earlier than base."""
    tick = draw(uint)
    base = draw(st.just(-1) | st.integers(0, tick - 1)) if tick > 0 else -1
    ref = draw(st.just(-1) | st.integers(0, base - 1)) if base > 0 else -1
    return tick, base, ref


@FAST
@given(tbr=tick_base_ref(), input_ack=uint,
       flags=st.integers(0, 255), payload=st.binary(max_size=200), events=st.lists(game_data, max_size=5))
def test_snapshot_round_trips(tbr, input_ack, flags, payload, events):
    tick, base, ref = tbr
    got = p.parse_server(p.pack_snapshot(tick, base, ref, input_ack, flags, payload, events))
    assert got == p.Snapshot(tick, base, ref, input_ack, flags, payload, events)


@pytest.mark.parametrize("err", [E.ProtocolViolation("bad"), E.RateLimited(), E.RoomFull("full up"), E.DesyncError("x"),
                                 E.GamesyncError()])
def test_error_round_trips(err):
    assert p.parse_server(p.pack_error(err)) == p.ServerError(err.code, err.reason)


@pytest.mark.parametrize(("cls", "code", "close"), [
    (E.GamesyncError, "internal", 1011), (E.ProtocolViolation, "protocol", 1002), (E.UnsupportedData, "unsupported_data", 1003),
    (E.RateLimited, "rate_limited", 1008), (E.MessageTooBig, "too_big", 1009), (E.VersionMismatch, "version", 4001),
    (E.RoomFull, "room_full", 4002), (E.ServerFull, "server_full", 4003), (E.UnknownGame, "unknown_game", 4004),
    (E.Timeout, "timeout", 4008), (E.SlowConsumer, "slow_consumer", 4009), (E.DesyncError, "desync", 4010),
])
def test_every_error_carries_its_code_and_close_code(cls, code, close):
    e = cls()
    assert e.code == code and e.close_code == close and e.reason == code and str(e) == code
    assert cls("why").reason == "why"
    assert isinstance(e, E.GamesyncError)


def test_message_types_are_distinct_integers():
    assert len({int(m) for m in p.Msg}) == len(p.Msg)
    assert p.pack_leave() == pk([11])


# ---- malformed input ---------------------------------------------------------------------------

MALFORMED = [b"", b"\xc1", b"\x92\x08", pk([8, 1.0]) + b"\x00", b"\xdd\xff\xff\xff\xff", b"\xa3ab", b"\x92\x08\xa2\xff\xfe"]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_msgpack_is_a_protocol_violation(data):
    violation(p.parse_client, data)
    violation(p.parse_server, data)


@pytest.mark.parametrize("obj", [5, "join", b"\x01", None, 1.5, {"t": 1}, [], ["join"], [True], [1.0], [None, 1], [[1]]])
def test_non_array_or_untyped_message_is_a_protocol_violation(obj):
    violation(p.parse_client, pk(obj))
    violation(p.parse_server, pk(obj))


@pytest.mark.parametrize("t", [0, 9, 12, 99, -1, 2**40, int(p.Msg.WELCOME), int(p.Msg.SNAPSHOT), int(p.Msg.ERROR)])
def test_unknown_client_message_type_is_a_protocol_violation(t):
    violation(p.parse_client, pk([t, 1, 2]))


@pytest.mark.parametrize("t", [0, 9, 99, -1, int(p.Msg.JOIN), int(p.Msg.INPUT), int(p.Msg.ACK), int(p.Msg.PING),
                               int(p.Msg.LEAVE)])
def test_unknown_server_message_type_is_a_protocol_violation(t):
    violation(p.parse_server, pk([t, 1, 2]))


CLIENT_WRONG_ARITY = [
    [p.Msg.INPUT], [p.Msg.INPUT, 1], [p.Msg.INPUT, 1, None, 2, 0, 9],
    [p.Msg.ACK], [p.Msg.ACK, 1, 0, 0],
    [p.Msg.PING], [p.Msg.PING, 1.0, 2.0],
    [p.Msg.MESSAGE], [p.Msg.MESSAGE, "x", 1, 2],
    [p.Msg.MESSAGE_ACK], [p.Msg.MESSAGE_ACK, 1, 2, 3],
    [p.Msg.JOIN], [p.Msg.JOIN, 1, "room"], [p.Msg.JOIN, 1, "room", "name", "game", "token", "resume", "extra"],
    [p.Msg.LEAVE, 0],
]


@pytest.mark.parametrize("msg", CLIENT_WRONG_ARITY, ids=repr)
def test_client_message_with_wrong_arity_is_a_protocol_violation(msg):
    violation(p.parse_client, pk(msg))


CLIENT_WRONG_TYPES = [
    [p.Msg.INPUT, "1", None], [p.Msg.INPUT, 1.0, None], [p.Msg.INPUT, True, None], [p.Msg.INPUT, None, None],
    [p.Msg.INPUT, 1, None, "5"], [p.Msg.INPUT, 1, None, 5.0], [p.Msg.INPUT, 1, None, 5, "0"], [p.Msg.INPUT, 1, None, 5, 1.0],
    [p.Msg.INPUT, 1, None, 5, True],
    [p.Msg.ACK, "1"], [p.Msg.ACK, None], [p.Msg.ACK, 1.5], [p.Msg.ACK, False], [p.Msg.ACK, 1, "0"], [p.Msg.ACK, 1, [0]],
    [p.Msg.PING, "now"], [p.Msg.PING, None], [p.Msg.PING, True], [p.Msg.PING, [1.0]], [p.Msg.PING, b"\x01"],
    [p.Msg.MESSAGE, "x", "1"], [p.Msg.MESSAGE, "x", 1.0], [p.Msg.MESSAGE, "x", True],
    [p.Msg.MESSAGE_ACK, "1"], [p.Msg.MESSAGE_ACK, None], [p.Msg.MESSAGE_ACK, 2.0],
    [p.Msg.JOIN, "1", "room", "name"], [p.Msg.JOIN, 1.0, "room", "name"], [p.Msg.JOIN, 1, b"room", "name"],
    [p.Msg.JOIN, 1, "room", 5], [p.Msg.JOIN, 1, "room", "name", 7], [p.Msg.JOIN, 1, None, "name"],
    [p.Msg.JOIN, 1, ["room"], "name"],
]


# no escaped backslash in a test id: mutmut (tools/mutation.sh) cannot select a test whose id has one
@pytest.mark.parametrize("msg", CLIENT_WRONG_TYPES, ids=lambda m: repr(m).replace("\\", "/"))
def test_client_message_with_wrong_field_types_is_a_protocol_violation(msg):
    violation(p.parse_client, pk(msg))


CLIENT_BAD_INTS = [
    [p.Msg.INPUT, 0, None], [p.Msg.INPUT, -1, None], [p.Msg.INPUT, 1, None, -1], [p.Msg.INPUT, 1, None, 5, -1],
    [p.Msg.INPUT, p.MAX_INT + 1, None], [p.Msg.INPUT, 2**64 - 1, None], [p.Msg.INPUT, 1, None, 5, 1 << p.ACK_BITS],
    [p.Msg.ACK, -1], [p.Msg.ACK, -(2**63)], [p.Msg.ACK, p.MAX_INT + 1], [p.Msg.ACK, 1, -1], [p.Msg.ACK, 1, 1 << p.ACK_BITS],
    [p.Msg.MESSAGE, "x", -1], [p.Msg.MESSAGE, "x", p.MAX_INT + 1],
    [p.Msg.MESSAGE_ACK, -1], [p.Msg.MESSAGE_ACK, 2**64 - 1],
    [p.Msg.JOIN, -1, "room", "name"],
]


@pytest.mark.parametrize("msg", CLIENT_BAD_INTS, ids=repr)
def test_negative_or_oversized_integers_are_a_protocol_violation(msg):
    violation(p.parse_client, pk(msg))


def test_integer_limits_are_inclusive():
    assert p.parse_client(pk([p.Msg.ACK, p.MAX_INT, (1 << p.ACK_BITS) - 1])) == p.SnapshotAck(p.MAX_INT, (1 << p.ACK_BITS) - 1)
    assert p.parse_client(pk([p.Msg.INPUT, 1, None, 0, 0])) == p.InputFrame(1, None, 0, 0)
    assert p.parse_client(pk([p.Msg.INPUT, p.MAX_INT, None, p.MAX_INT])) == p.InputFrame(p.MAX_INT, None, p.MAX_INT, 0)


def test_nil_optional_fields_read_as_omitted():
    assert p.parse_client(pk([p.Msg.INPUT, 3, None, None])) == p.InputFrame(3, None, None, 0)
    assert p.parse_client(pk([p.Msg.INPUT, 3, None, 9, None])) == p.InputFrame(3, None, 9, 0)
    assert p.parse_client(pk([p.Msg.ACK, 9, None])) == p.SnapshotAck(9, 0)
    assert p.parse_client(pk([p.Msg.MESSAGE, "x", None])) == p.ClientMessage("x", None)
    assert p.parse_client(pk([p.Msg.JOIN, 1, "r", "n", None])) == p.Join(1, "r", "n", None)


@pytest.mark.parametrize(("room", "name", "game"), [
    ("r" * (p.MAX_ROOM + 1), "n", None), ("r", "n" * (p.MAX_NAME + 1), None), ("r", "n", "g" * (p.MAX_ROOM + 1)),
    ("", "n", None), ("r", "", None), ("r", "n", ""),
])
def test_empty_or_too_long_names_are_a_protocol_violation(room, name, game):
    violation(p.parse_client, pk([p.Msg.JOIN, 1, room, name] + ([game] if game is not None else [])))


def test_name_limits_count_characters_not_bytes():
    j = p.parse_client(pk([p.Msg.JOIN, 1, "é" * p.MAX_ROOM, "名" * p.MAX_NAME, "g" * p.MAX_ROOM]))
    assert j == p.Join(1, "é" * p.MAX_ROOM, "名" * p.MAX_NAME, "g" * p.MAX_ROOM)


@pytest.mark.parametrize("obj", [
    [p.Msg.MESSAGE, msgpack.ExtType(1, b"x")],
    [p.Msg.MESSAGE, {"a": [msgpack.ExtType(127, b"")]}],
    [p.Msg.INPUT, 1, msgpack.ExtType(5, b"\x00" * 16)],
    [p.Msg.PING, msgpack.ExtType(0, b"\x00" * 8)],
], ids=["top", "nested", "input", "ping"])
def test_extension_types_are_a_protocol_violation(obj):
    err = violation(p.parse_client, pk(obj))
    assert "extension" in err.reason


@pytest.mark.parametrize("obj", [
    [p.Msg.MESSAGE, msgpack.Timestamp(1, 0)],
    [p.Msg.INPUT, 1, {"at": msgpack.Timestamp(0, 5)}],
    [p.Msg.PING, msgpack.Timestamp(1_700_000_000, 0)],
], ids=["message", "input", "ping"])
def test_timestamp_extension_type_is_a_protocol_violation(obj):
    """Type -1 is msgpack's timestamp extension; it is still an extension type."""
    violation(p.parse_client, pk(obj))


def test_extension_types_in_server_messages_are_a_protocol_violation():
    violation(p.parse_server, pk([p.Msg.SNAPSHOT, 1, -1, -1, 0, 0, b"", [[0, msgpack.ExtType(1, b"")]]]))


def test_non_string_map_keys_are_a_protocol_violation():
    violation(p.parse_client, pk([p.Msg.MESSAGE, {1: "x"}]))


@FAST
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_protocol_violation(data):
    for fn in (p.parse_client, p.parse_server):
        try:
            fn(data)
        except ProtocolViolation as e:
            assert e.close_code == 1002


# ---- server messages ---------------------------------------------------------------------------

SNAP = [p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, b"payload", []]
WELCOME = [p.Msg.WELCOME, 1, 7, "room", "arena", 30.0, 100, [], 60]


def _with(msg, i, v):
    m = list(msg)
    m[i] = v
    return m


SERVER_WRONG_ARITY = {
    "snapshot short": SNAP[:-1],
    "welcome short": WELCOME[:-1],
    "error bare": [p.Msg.ERROR],
    "error without reason": [p.Msg.ERROR, "code"],
}


@pytest.mark.parametrize("case", sorted(SERVER_WRONG_ARITY))
def test_server_message_with_wrong_arity_is_a_protocol_violation(case):
    violation(p.parse_server, pk(SERVER_WRONG_ARITY[case]))


SERVER_WRONG_TYPES = {
    "snapshot tick str": _with(SNAP, 1, "5"),
    "snapshot tick negative": _with(SNAP, 1, -5),
    "snapshot base below -1": _with(SNAP, 2, -2),
    "snapshot ref float": _with(SNAP, 3, 2.0),
    "snapshot input_ack negative": _with(SNAP, 4, -1),
    "snapshot flags str": _with(SNAP, 5, "deflate"),
    "snapshot payload str": _with(SNAP, 6, "payload"),
    "snapshot events not a list": _with(SNAP, 7, 5),
    "welcome client_id str": _with(WELCOME, 2, "7"),
    "welcome room int": _with(WELCOME, 3, 1),
    "welcome tick_rate str": _with(WELCOME, 5, "30"),
    "welcome schema not a list": _with(WELCOME, 7, {"x": 1}),
    "welcome history negative": _with(WELCOME, 8, -60),
}


def test_welcome_may_carry_future_fields():
    """docs/protocol.md 6.1: a client reads positions 1 to 10 and ignores further elements."""
    assert p.parse_server(pk(WELCOME)) == p.Welcome(*WELCOME[1:])  # without the resume fields
    w = p.parse_server(pk(WELCOME + ["seat-token", True, "future"]))
    assert w == p.Welcome(*WELCOME[1:], resume_token="seat-token", resumed=True)


@pytest.mark.parametrize("tail", [[7], [""], ["t", 1], ["t", None]])
def test_welcome_with_ill_typed_resume_fields_is_a_protocol_violation(tail):
    with pytest.raises(ProtocolViolation):
        p.parse_server(pk(WELCOME + tail))


@pytest.mark.parametrize("case", sorted(SERVER_WRONG_TYPES))
def test_server_message_with_wrong_field_types_is_a_protocol_violation(case):
    violation(p.parse_server, pk(SERVER_WRONG_TYPES[case]))


# ---- docs/protocol.md section 15.1: the documented bytes -----------------------------------------

@pytest.mark.parametrize(("built", "hexbytes"), [
    (lambda: p.pack_join("r1", "alice"), "94 01 05 a2 72 31 a5 61 6c 69 63 65"),
    (lambda: p.pack_input(1, [0, -1]), "93 03 01 92 00 ff"),
    (lambda: p.pack_input(5, [1, 0], 120, 0x80000003), "95 03 05 92 01 00 78 ce 80 00 00 03"),
    (lambda: p.pack_ack(120, 5), "93 05 78 05"),
    (lambda: p.pack_ack(120), "92 05 78"),
    (lambda: p.pack_message({"chat": "gg"}, 7), "93 06 81 a4 63 68 61 74 a2 67 67 07"),
    (lambda: p.pack_message_ack(3), "92 07 03"),
    (lambda: p.pack_ping(1234.5), "92 08 cb 40 93 4a 00 00 00 00 00"),
    (lambda: p.pack_leave(), "91 0b"),
], ids=["join", "input", "input+ack", "ack+bits", "ack", "message", "message_ack", "ping", "leave"])
def test_builders_produce_the_documented_bytes(built, hexbytes):
    data = built()
    assert data == bytes.fromhex(hexbytes)
    p.parse_client(data)


@settings(max_examples=200, deadline=None)
@given(tick=st.integers(0, 2**40), base=st.integers(-1, 2**40), ref=st.integers(-1, 2**40),
       ack=st.integers(0, 2**53 - 1), flags=st.integers(0, 255), payload=st.binary(max_size=70000),
       events=st.lists(st.lists(st.integers(0, 300), max_size=3), max_size=3))
def test_snapshot_parts_joined_with_a_clients_ack_and_events_equal_the_packed_snapshot(
        tick, base, ref, ack, flags, payload, events):
    head, mid = p.snapshot_parts(tick, base, ref, flags, payload)
    ev = p.pack(events) if events else p.NO_EVENTS
    assert head + p.pack(ack) + mid + ev == p.pack_snapshot(tick, base, ref, ack, flags, payload, events)


def test_join_carries_an_optional_token_after_the_game():
    assert p.parse_client(p.pack_join("r", "n", token="t.o.k")) == p.Join(p.PROTOCOL_VERSION, "r", "n", None, "t.o.k")
    assert p.parse_client(p.pack_join("r", "n", "arena", token="t")) == p.Join(p.PROTOCOL_VERSION, "r", "n", "arena", "t")
    assert p.parse_client(p.pack_join("r", "n")) == p.Join(p.PROTOCOL_VERSION, "r", "n")
    with pytest.raises(ProtocolViolation):
        p.parse_client(msgpack.packb([1, p.PROTOCOL_VERSION, "r", "n", None, 7]))
    with pytest.raises(ProtocolViolation):
        p.parse_client(msgpack.packb([1, p.PROTOCOL_VERSION, "r", "n", None, "x" * (p.MAX_TOKEN + 1)]))


@pytest.mark.parametrize("depth", [p.MAX_DEPTH + 1, 200, 1000])
def test_deeply_nested_game_data_is_a_protocol_violation_not_a_recursion_error(depth):
    data: object = 0
    for _ in range(depth):
        data = [data]
    for msg in ([3, 1, data], [6, {"k": data}]):
        with pytest.raises(ProtocolViolation, match="nested deeper"):
            p.parse_client(msgpack.packb(msg))


def test_game_data_nested_up_to_the_limit_is_accepted():
    data: object = 0
    for _ in range(p.MAX_DEPTH - 1):  # the input's own array is one level more
        data = [data]
    assert p.parse_client(msgpack.packb([3, 1, data])).data == data


# ---- the inline input path: [3, seq, data, ack, bits] ---------------------------------------------
# parse_client checks the common input shape inline and falls back to the general path
# (protocol._input) for anything it does not accept; both must judge every message alike.


def _deep(levels: int, leaf=1) -> list:
    v = [leaf]
    for _ in range(levels - 1):
        v = [v]
    return v


OK5 = [p.Msg.INPUT, 1, [1, -2, 3], 0, 0]  # the fast-path shape, accepted

FAST_SHAPE_REJECTED = [
    # seq: 0, negative, past MAX_INT, not an integer
    [3, 0, [1], 0, 0], [3, -1, [1], 0, 0], [3, p.MAX_INT + 1, [1], 0, 0], [3, 2**64 - 1, [1], 0, 0],
    [3, 1.0, [1], 0, 0], [3, True, [1], 0, 0], [3, "1", [1], 0, 0], [3, None, [1], 0, 0],
    # ack: negative, past MAX_INT, not an integer
    [3, 1, [1], -1, 0], [3, 1, [1], p.MAX_INT + 1, 0], [3, 1, [1], -(2**63), 0], [3, 1, [1], 5.0, 0],
    [3, 1, [1], True, 0], [3, 1, [1], "5", 0],
    # bits: negative, 33 bits, not an integer
    [3, 1, [1], 5, -1], [3, 1, [1], 5, 1 << p.ACK_BITS], [3, 1, [1], 5, 1.0], [3, 1, [1], 5, True],
    [3, 1, [1], 5, "0"], [3, 1, [1], 5, [0]],
    # data: extension types and nesting past MAX_DEPTH, at the top or inside the list
    [3, 1, [msgpack.Timestamp(1, 0)], 0, 0], [3, 1, [1, msgpack.Timestamp(0, 5)], 0, 0],
    [3, 1, msgpack.Timestamp(1, 0), 0, 0], [3, 1, [msgpack.ExtType(5, b"x")], 0, 0],
    [3, 1, [{"at": msgpack.Timestamp(0, 5)}], 0, 0],
    [3, 1, _deep(200), 0, 0], [3, 1, [1, _deep(p.MAX_DEPTH)], 0, 0], [3, 1, [{"a": _deep(p.MAX_DEPTH)}], 0, 0],
]


@pytest.mark.parametrize("msg", FAST_SHAPE_REJECTED, ids=repr)
def test_every_input_rejection_also_holds_on_the_five_element_shape(msg):
    violation(p.parse_client, pk(msg))


@pytest.mark.parametrize(("seq", "ack", "bits"), [(1, 0, 0), (p.MAX_INT, p.MAX_INT, (1 << p.ACK_BITS) - 1)])
def test_the_five_element_shape_accepts_its_integer_limits_inclusive(seq, ack, bits):
    assert p.parse_client(pk([3, seq, [0, -1, 2**63 - 1], ack, bits])) == p.InputFrame(seq, [0, -1, 2**63 - 1], ack, bits)


def test_game_data_nested_exactly_max_depth_passes_on_both_shapes_and_one_more_level_does_not():
    ok, too_deep = _deep(p.MAX_DEPTH), _deep(p.MAX_DEPTH + 1)
    for tail in ([], [0], [0, 0]):
        assert p.parse_client(pk([3, 1, ok, *tail])).data == ok
        violation(p.parse_client, pk([3, 1, too_deep, *tail]))


def _outcome(fn, arg):
    """(event, its fields' types) or the class of the error raised."""
    try:
        ev = fn(arg)
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return type(e)
    return ev, [type(v) for v in (ev.seq, ev.data, ev.ack, ev.ack_bits)]


edge_ints = st.sampled_from([-1, 0, 1, p.MAX_INT, p.MAX_INT + 1, (1 << p.ACK_BITS) - 1, 1 << p.ACK_BITS])
field_values = edge_ints | edge_ints | (st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1]) | st.integers(-(2**63), 2**64 - 1) | st.none() | st.booleans() | st.floats(allow_nan=False)
                            | st.text(max_size=3) | st.binary(max_size=3) | st.just(msgpack.Timestamp(1, 0))
                            | st.lists(edge_ints, max_size=2))  # two times in three one of the edges
data_leaves = (st.integers(-(2**63), 2**64 - 1) | edge_ints | st.booleans() | st.none() | st.floats(allow_nan=False)
               | st.text(max_size=3) | st.just(msgpack.Timestamp(0, 5)) | st.just(msgpack.ExtType(1, b"")))
input_data = st.one_of(
    st.lists(st.integers(-(2**63), 2**64 - 1), max_size=5),  # the fast path's own shape
    st.recursive(data_leaves, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=2),
                 max_leaves=8),
    st.builds(_deep, st.integers(p.MAX_DEPTH - 2, p.MAX_DEPTH + 2)),
    st.builds(lambda d, x: [1, _deep(d, x)], st.integers(p.MAX_DEPTH - 2, p.MAX_DEPTH + 1), data_leaves),
)


@st.composite
def input_messages(draw) -> list:
    """An input message of 3 to 5 elements: a valid one with none, one or two of its fields
    replaced, half the time by an edge value, so that every check of the inline path is reached."""
    msg = [p.Msg.INPUT, draw(st.sampled_from([1, p.MAX_INT]) | st.integers(1, p.MAX_INT)),
           draw(st.lists(st.integers(-(2**63), 2**64 - 1), max_size=5)),
           draw(st.sampled_from([0, p.MAX_INT]) | st.integers(0, p.MAX_INT)),
           draw(st.sampled_from([0, (1 << p.ACK_BITS) - 1]) | bits)]
    for i in draw(st.sampled_from([(1,), (2,), (3,), (4,)]) | st.sampled_from([(), (1, 2), (2, 3), (3, 4), (1, 4)])):
        if i == 2:
            msg[i] = draw(input_data)
        else:
            msg[i] = draw(edge_ints) if draw(st.booleans()) else draw(field_values)
    return msg[:5 if draw(st.integers(0, 3)) else draw(st.sampled_from([3, 4]))]


@settings(max_examples=1000, deadline=None)
@given(msg=input_messages())
def test_the_inline_input_path_and_the_general_one_agree_on_every_input(msg):
    """Same event (field types included) or the same error class, whatever the fields hold."""
    raw = pk(msg)
    assert _outcome(p.parse_client, raw) == _outcome(lambda r: p._input(p.unpack(r)), raw)


EDGES = [-1, 0, 1, p.MAX_INT, p.MAX_INT + 1, (1 << p.ACK_BITS) - 1, 1 << p.ACK_BITS, -(2**63), 2**64 - 1,
         None, True, False, 1.0, "1", b"1", [1], {"a": 1}, msgpack.Timestamp(1, 0)]
EDGE_DATA = [[], [0], [2**64 - 1, -(2**63)], [True], [1.5], [None], ["a"], [[1]], [{"a": 1}], {"a": 1}, 7, None,
             [msgpack.Timestamp(0, 5)], [1, msgpack.ExtType(3, b"")], _deep(p.MAX_DEPTH), _deep(p.MAX_DEPTH + 1), _deep(200)]


@pytest.mark.parametrize("arity", [3, 4, 5])
def test_the_inline_input_path_and_the_general_one_agree_on_every_edge_of_every_field(arity):
    valid = [p.Msg.INPUT, 1, [1], 0, 0]
    cases = [valid[:i] + [v] + valid[i + 1:] for i in (1, 3, 4) for v in EDGES]
    cases += [valid[:2] + [d] + valid[3:] for d in EDGE_DATA]
    for msg in cases:
        raw = pk(msg[:arity])
        assert _outcome(p.parse_client, raw) == _outcome(lambda r: p._input(p.unpack(r)), raw), msg[:arity]


# ---- every refusal says why: the reason a peer gets, case by case -----------------------------
# The reason travels: in the error message and the close frame a client gets, and in the
# exception a bot reports. Each case names one check; the table holds the reason it gives.

REDIR = [p.Msg.REDIRECT, "ws://h:1/", "room", 500]
CLIENT_REASONS = [
    ([p.Msg.INPUT], 'input takes 2..4 fields, got 0'),
    ([p.Msg.INPUT, 1], 'input takes 2..4 fields, got 1'),
    ([p.Msg.INPUT, 1, None, 2, 0, 9], 'input takes 2..4 fields, got 5'),
    ([p.Msg.ACK], 'ack takes 1..2 fields, got 0'),
    ([p.Msg.ACK, 1, 0, 0], 'ack takes 1..2 fields, got 3'),
    ([p.Msg.PING], 'ping takes 1..1 fields, got 0'),
    ([p.Msg.PING, 1.0, 2.0], 'ping takes 1..1 fields, got 2'),
    ([p.Msg.MESSAGE], 'message takes 1..2 fields, got 0'),
    ([p.Msg.MESSAGE, 'x', 1, 2], 'message takes 1..2 fields, got 3'),
    ([p.Msg.MESSAGE_ACK], 'message ack takes 1..2 fields, got 0'),
    ([p.Msg.MESSAGE_ACK, 1, 2, 3], 'message ack takes 1..2 fields, got 3'),
    ([p.Msg.JOIN], 'join takes 3..6 fields, got 0'),
    ([p.Msg.JOIN, 1, 'room'], 'join takes 3..6 fields, got 2'),
    ([p.Msg.JOIN, 1, 'room', 'name', 'game', 'token', 'resume', 'extra'], 'join takes 3..6 fields, got 7'),
    ([p.Msg.LEAVE, 0], 'leave takes 0..0 fields, got 1'),
    ([p.Msg.INPUT, '1', None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, 1.0, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, True, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, None, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, 1, None, '5'], 'ack tick must be an integer >= 0'),
    ([p.Msg.INPUT, 1, None, 5.0], 'ack tick must be an integer >= 0'),
    ([p.Msg.INPUT, 1, None, 5, '0'], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.INPUT, 1, None, 5, 1.0], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.INPUT, 1, None, 5, True], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.ACK, '1'], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, None], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, 1.5], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, False], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, 1, '0'], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.ACK, 1, [0]], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.PING, 'now'], 'ping time must be a number'),
    ([p.Msg.PING, None], 'ping time must be a number'),
    ([p.Msg.PING, True], 'ping time must be a number'),
    ([p.Msg.PING, [1.0]], 'ping time must be a number'),
    ([p.Msg.PING, b'\x01'], 'ping time must be a number'),
    ([p.Msg.MESSAGE, 'x', '1'], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE, 'x', 1.0], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE, 'x', True], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE_ACK, '1'], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE_ACK, None], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE_ACK, 2.0], 'ack id must be an integer >= 0'),
    ([p.Msg.JOIN, '1', 'room', 'name'], 'version must be an integer >= 0'),
    ([p.Msg.JOIN, 1.0, 'room', 'name'], 'version must be an integer >= 0'),
    ([p.Msg.JOIN, 1, b'room', 'name'], 'room must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, 'room', 5], 'name must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, 'room', 'name', 7], 'game must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, None, 'name'], 'room must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, ['room'], 'name'], 'room must be a string of 1..64 characters'),
    ([p.Msg.INPUT, 0, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, -1, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, 1, None, -1], 'ack tick must be an integer >= 0'),
    ([p.Msg.INPUT, 1, None, 5, -1], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.INPUT, 9007199254740992, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, 18446744073709551615, None], 'input seq must be an integer >= 1'),
    ([p.Msg.INPUT, 1, None, 5, 4294967296], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.ACK, -1], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, -9223372036854775808], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, 9007199254740992], 'ack tick must be an integer >= 0'),
    ([p.Msg.ACK, 1, -1], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.ACK, 1, 4294967296], 'ack bits must be an unsigned 32-bit integer'),
    ([p.Msg.MESSAGE, 'x', -1], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE, 'x', 9007199254740992], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE_ACK, -1], 'ack id must be an integer >= 0'),
    ([p.Msg.MESSAGE_ACK, 18446744073709551615], 'ack id must be an integer >= 0'),
    ([p.Msg.JOIN, -1, 'room', 'name'], 'version must be an integer >= 0'),
    ([3, 0, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, -1, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, 9007199254740992, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, 18446744073709551615, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, 1.0, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, True, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, '1', [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, None, [1], 0, 0], 'input seq must be an integer >= 1'),
    ([3, 1, [1], -1, 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], 9007199254740992, 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], -9223372036854775808, 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], 5.0, 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], True, 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], '5', 0], 'ack tick must be an integer >= 0'),
    ([3, 1, [1], 5, -1], 'ack bits must be an unsigned 32-bit integer'),
    ([3, 1, [1], 5, 4294967296], 'ack bits must be an unsigned 32-bit integer'),
    ([3, 1, [1], 5, 1.0], 'ack bits must be an unsigned 32-bit integer'),
    ([3, 1, [1], 5, True], 'ack bits must be an unsigned 32-bit integer'),
    ([3, 1, [1], 5, '0'], 'ack bits must be an unsigned 32-bit integer'),
    ([3, 1, [1], 5, [0]], 'ack bits must be an unsigned 32-bit integer'),
    ([8, 1, [1], 0, 0], 'ping takes 1..1 fields, got 4'),
    ([4, 1, [1], 0, 0], 'unknown message type 4'),
    ([1, 1, [1], 0, 0], 'room must be a string of 1..64 characters'),
    ([p.Msg.MESSAGE, msgpack.ExtType(code=1, data=b'x')], 'msgpack extension types are not accepted'),
    ([p.Msg.INPUT, 1, [msgpack.Timestamp(seconds=1, nanoseconds=0)], 0, 0], 'msgpack extension types are not accepted'),
    ([p.Msg.JOIN, 1, 'r', 'n', 'g' * 65], 'game must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, 'r', 'n', 'g', 't' * 2049], 'token must be a string of 1..2048 characters'),
    ([p.Msg.JOIN, 1, 'r', 'n', 'g', 't', ''], 'resume token must be a string of 1..2048 characters'),
    ([p.Msg.JOIN, 1, '', 'n'], 'room must be a string of 1..64 characters'),
    ([p.Msg.JOIN, 1, 'r', ''], 'name must be a string of 1..64 characters'),
    ([99], 'unknown message type 99'),
    ([p.Msg.INPUT, 1, _deep(40)], 'game data nested deeper than 32 levels'),
]
SERVER_REASONS = [
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, b'payload'], 'snapshot takes 7..7 fields, got 6'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, []], 'welcome takes 8..63 fields, got 7'),
    ([p.Msg.ERROR], 'error takes 2..2 fields, got 0'),
    ([p.Msg.ERROR, 'code'], 'error takes 2..2 fields, got 1'),
    ([p.Msg.SNAPSHOT, '5', 3, 2, 7, 0, b'payload', []], 'tick must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, -5, 3, 2, 7, 0, b'payload', []], 'tick must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 5, -2, 2, 7, 0, b'payload', []], 'snapshot baseline must be -1 or an earlier tick'),
    ([p.Msg.SNAPSHOT, 5, 3, 2.0, 7, 0, b'payload', []], 'snapshot reference must be -1 or a tick before the baseline'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, -1, 0, b'payload', []], 'input ack must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 'deflate', b'payload', []], 'flags must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, 'payload', []], 'snapshot payload must be bin and events an array'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, b'payload', 5], 'snapshot payload must be bin and events an array'),
    ([p.Msg.WELCOME, 1, '7', 'room', 'arena', 30.0, 100, [], 60], 'client id must be an integer >= 1'),
    ([p.Msg.WELCOME, 1, 7, 1, 'arena', 30.0, 100, [], 60], 'room must be a string of 1..64 characters'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', '30', 100, [], 60], 'tick rate must be a positive number'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, {'x': 1}, 60], 'schema must be an array of maps'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], -60], 'history must be an integer >= 1'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, b'payload', [], 0], 'snapshot takes 7..7 fields, got 8'),
    (WELCOME + [None, False] + [0] * 54, 'welcome takes 8..63 fields, got 64'),
    ([p.Msg.ERROR, 'code', 'reason', 'x'], 'error takes 2..2 fields, got 3'),
    ([p.Msg.REDIRECT, 'ws://h:1/', 'room', 500] + [0] * 61, 'redirect takes 3..63 fields, got 64'),
    ([p.Msg.SNAPSHOT, -1, 3, 2, 7, 0, b'payload', []], 'tick must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 9007199254740992, 3, 2, 7, 0, b'payload', []], 'tick must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 5, 5, 2, 7, 0, b'payload', []], 'snapshot baseline must be -1 or an earlier tick'),
    ([p.Msg.SNAPSHOT, 5, 3, 3, 7, 0, b'payload', []], 'snapshot reference must be -1 or a tick before the baseline'),
    ([p.Msg.SNAPSHOT, 5, '3', 2, 7, 0, b'payload', []], 'snapshot baseline must be -1 or an earlier tick'),
    ([p.Msg.SNAPSHOT, 5, 3, '2', 7, 0, b'payload', []], 'snapshot reference must be -1 or a tick before the baseline'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, 0, b'payload', {}], 'snapshot payload must be bin and events an array'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, '7', 0, b'payload', []], 'input ack must be an integer >= 0'),
    ([p.Msg.SNAPSHOT, 5, 3, 2, 7, -1, b'payload', []], 'flags must be an integer >= 0'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 60, ''], 'resume token must be a string'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 60, 't' * 2049], 'resume token must be a string'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 60, 7], 'resume token must be a string'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 60, None, 1], 'resumed must be a boolean'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 60, None, None], 'resumed must be a boolean'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 0, 100, [], 60], 'tick rate must be a positive number'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', -1.5, 100, [], 60], 'tick rate must be a positive number'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [1], 60], 'schema must be an array of maps'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [{}, 1], 60], 'schema must be an array of maps'),
    ([p.Msg.WELCOME, '2', 7, 'room', 'arena', 30.0, 100, [], 60], 'version must be an integer >= 0'),
    ([p.Msg.WELCOME, 1, 0, 'room', 'arena', 30.0, 100, [], 60], 'client id must be an integer >= 1'),
    ([p.Msg.WELCOME, 1, 7, 'room', '', 30.0, 100, [], 60], 'game must be a string of 1..64 characters'),
    ([p.Msg.WELCOME, 1, 7, 'room', 5, 30.0, 100, [], 60], 'game must be a string of 1..64 characters'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, -1, [], 60], 'tick must be an integer >= 0'),
    ([p.Msg.WELCOME, 1, 7, 'room', 'arena', 30.0, 100, [], 0], 'history must be an integer >= 1'),
    ([p.Msg.ERROR, 'c', 5], 'error code and reason must be strings'),
    ([p.Msg.ERROR, 5, 'r'], 'error code and reason must be strings'),
    ([p.Msg.REDIRECT, 'http://h/', 'room', 5], 'redirect url must be ws:// or wss://'),
    ([p.Msg.REDIRECT, '', 'room', 5], 'redirect url must be a string of 1..2048 characters'),
    ([p.Msg.REDIRECT, 'ws://h/', '', 5], 'room must be a string of 1..64 characters'),
    ([p.Msg.REDIRECT, 'ws://h/', 'room', -1], 'redirect ttl must be an integer >= 0'),
    ([p.Msg.REDIRECT, 'ws://h/', 'room'], 'redirect takes 3..63 fields, got 2'),
    ([99, 1], 'unknown message type 99'),
]


@pytest.mark.parametrize(("msg", "reason"), CLIENT_REASONS, ids=lambda v: repr(v).replace("\\", "/")[:60])
def test_each_refused_client_message_gives_its_reason(msg, reason):
    assert violation(p.parse_client, pk(msg)).reason == reason


@pytest.mark.parametrize(("msg", "reason"), SERVER_REASONS, ids=lambda v: repr(v).replace("\\", "/")[:60])
def test_each_refused_server_message_gives_its_reason(msg, reason):
    assert violation(p.parse_server, pk(msg)).reason == reason


def test_the_largest_tick_and_the_oldest_references_a_snapshot_may_carry():
    snap = p.parse_server(pk(_with(_with(_with(SNAP, 1, p.MAX_INT), 2, p.MAX_INT - 1), 3, p.MAX_INT - 2)))
    assert (snap.tick, snap.base, snap.ref) == (p.MAX_INT, p.MAX_INT - 1, p.MAX_INT - 2)
    assert p.parse_server(pk(_with(_with(SNAP, 2, 0), 3, -1))).base == 0


@pytest.mark.parametrize(("built", "obj"), [
    (lambda: p.pack_input(4, [1], 9), [3, 4, [1], 9]),  # no bits: four elements
    (lambda: p.pack_input(4, [1], 9, 0), [3, 4, [1], 9]),
    (lambda: p.pack_input(4, [1]), [3, 4, [1]]),
    (lambda: p.pack_message("hi"), [6, "hi"]),
    (lambda: p.pack_message("hi", 0), [6, "hi", 0]),
    (lambda: p.pack_join("r", "n", resume="tok"), [1, p.PROTOCOL_VERSION, "r", "n", None, None, "tok"]),
    (lambda: p.pack_join("r", "n", token="t"), [1, p.PROTOCOL_VERSION, "r", "n", None, "t"]),
    (lambda: p.pack_join("r", "n", "g", resume=""), [1, p.PROTOCOL_VERSION, "r", "n", "g"]),
])
def test_builders_leave_out_only_trailing_optional_fields(built, obj):
    assert built() == pk(obj)


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xc1", "malformed msgpack: FormatError"), (b"", "malformed msgpack: ValueError"),
    (pk(5), "a message is an array whose first element is its integer type"),
    (pk([1.0]), "a message is an array whose first element is its integer type"),
])
def test_undecodable_or_untyped_bytes_give_their_reason(data, reason):
    assert violation(p.parse_client, data).reason == reason
    assert violation(p.parse_server, data).reason == reason


@pytest.mark.parametrize("token", ["t", "t" * p.MAX_TOKEN])
def test_resume_tokens_of_one_to_max_token_characters_are_read_both_ways(token):
    assert p.parse_client(p.pack_join("r", "n", resume=token)).resume == token
    assert p.parse_server(pk(WELCOME + [token, True])).resume_token == token


def test_a_message_ack_may_carry_a_reply_of_any_game_data():
    assert p.parse_client(p.pack_message_ack(7)) == p.MessageAck(7)
    assert p.parse_client(p.pack_message_ack(7, {"yes": [1, 2]})) == p.MessageAck(7, True, {"yes": [1, 2]})
    assert p.parse_client(p.pack_message_ack(7, None)) == p.MessageAck(7, True, None)  # nil is a reply too
    with pytest.raises(ProtocolViolation):
        p.parse_client(p.pack_message_ack(7, msgpack.ExtType(5, b"x")))  # the limits of message data apply
