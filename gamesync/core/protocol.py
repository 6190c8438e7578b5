"""Wire messages: msgpack arrays ``[type, ...]``, parsed into frozen events and built from them.

Every message is one binary WebSocket message. docs/protocol.md is the reference; this
module is its executable form. Parsing never trusts the peer: anything off-spec raises a
``GamesyncError`` carrying the close code to use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from .errors import GamesyncError, ProtocolViolation, Redirect

PROTOCOL_VERSION = 5
#: the versions a server speaks: 3 takes baselines from the stream (docs/protocol.md 12.1),
#: 2 from the client's acks, 4 is 3 plus view rooms (section 18), 5 is 4 with packed record
#: lists in view payloads (18.3.1); a welcome names the version of the join it answers
SUPPORTED_VERSIONS = (2, 3, 4, 5)
#: the first version whose clients can join a view room (interest management)
VIEW_VERSION = 4
#: the first version whose view payloads carry packed record lists (cell listings, enter records)
PACKED_VERSION = 5
#: the first version whose clients decode every snapshot of their stream, in order
STREAM_VERSION = 3
NO_TICK = -1  # baseline / reference "none" in a snapshot header
MAX_NAME = 64
MAX_ROOM = 64
MAX_TOKEN = 2048
MAX_INT = (1 << 53) - 1  # integers JavaScript holds exactly
ACK_BITS = 32  # ticks before the acked one that an ack can also report as held


class Msg(IntEnum):
    """Message type, the first element of every message."""

    JOIN = 1
    WELCOME = 2
    INPUT = 3
    SNAPSHOT = 4
    ACK = 5
    MESSAGE = 6
    MESSAGE_ACK = 7
    PING = 8
    ERROR = 10
    LEAVE = 11
    REDIRECT = 12


class Ev(IntEnum):
    """Kind of an entry in a snapshot's event list, its first element."""

    EVENT = 0  # [0, data]: a game event
    RELIABLE = 1  # [1, data, ack_id]: a game message the client must acknowledge
    JOINED = 2  # [2, client_id, name]
    LEFT = 3  # [3, client_id]
    MESSAGE_ACK = 4  # [4, ack_id]: the server applied the client's reliable message
    PONG = 5  # [5, client_time]: answer to a ping


# ---- client -> server events -------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    version: int
    room: str
    name: str
    game: str | None = None
    token: str | None = None  # a join token (gamesync.tokens), where the server wants one
    resume: str | None = None  # a resume token from an earlier welcome: take that seat again


@dataclass(frozen=True)
class InputFrame:
    seq: int
    data: Any
    ack: int | None = None  # newest snapshot tick the client holds (saves a separate ack)
    ack_bits: int = 0  # bit i set: the client also holds tick ack - 1 - i


def input_frame(seq: int, data: Any, _new: Callable[[type], Any] = object.__new__) -> InputFrame:
    """``InputFrame(seq, data)``, as a game gets it (no ack), built without the frozen
    dataclass's ``__init__`` (a third of the cost; this runs for every input): the two
    fields set in the instance, ``ack`` and ``ack_bits`` from the class defaults."""
    f = _new(InputFrame)
    d = f.__dict__
    d["seq"] = seq
    d["data"] = data
    return f  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SnapshotAck:
    tick: int
    bits: int = 0  # bit i set: the client also holds tick - 1 - i


@dataclass(frozen=True)
class ClientMessage:
    data: Any
    ack_id: int | None = None


@dataclass(frozen=True)
class MessageAck:
    ack_id: int
    #: the client answered the message with ``reply`` (``[7, ack_id, reply]``), not just acked it
    replied: bool = False
    reply: Any = None


@dataclass(frozen=True)
class Ping:
    time: float


@dataclass(frozen=True)
class Leave:
    pass


ClientEvent = Join | InputFrame | SnapshotAck | ClientMessage | MessageAck | Ping | Leave

# ---- server -> client events -------------------------------------------------------------


@dataclass(frozen=True)
class Welcome:
    version: int
    client_id: int
    room: str
    game: str
    tick_rate: float
    tick: int
    schema: list[dict[str, Any]]
    history: int
    #: hand this back in a join to take this seat again after a dropped connection
    resume_token: str | None = None
    #: this welcome continues an earlier connection's seat (same client id, same entity)
    resumed: bool = False
    #: a view room's grid (docs/protocol.md 18.1); None in a room where everyone sees everything
    view: dict[str, Any] | None = None


@dataclass(frozen=True)
class Snapshot:
    tick: int
    base: int
    ref: int
    input_ack: int
    flags: int
    payload: bytes
    events: list[Any]


@dataclass(frozen=True)
class ServerError:
    code: str
    reason: str


#: a ``redirect`` message parses to the Redirect error itself (url, room, ttl_ms)
ServerEvent = Welcome | Snapshot | ServerError | Redirect

MAX_URL = 2048


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolViolation("msgpack extension types are not accepted")


def unpack(data: bytes) -> list[Any]:
    """Decode one message to its array form, or raise ProtocolViolation."""
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext, use_list=True)
    except GamesyncError:
        raise
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise ProtocolViolation(f"malformed msgpack: {type(e).__name__}") from None
    if not isinstance(msg, list) or not msg or type(msg[0]) is not int:
        raise ProtocolViolation("a message is an array whose first element is its integer type")
    return msg


def _int(v: Any, what: str, lo: int = 0) -> int:
    if type(v) is not int or not lo <= v <= MAX_INT:
        raise ProtocolViolation(f"{what} must be an integer >= {lo}")
    return v


_BITS_END = 1 << ACK_BITS


def _bits(v: Any) -> int:
    if v is None:
        return 0
    if type(v) is not int or not 0 <= v < (1 << ACK_BITS):
        raise ProtocolViolation(f"ack bits must be an unsigned {ACK_BITS}-bit integer")
    return v


def _str(v: Any, what: str, limit: int) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= limit:
        raise ProtocolViolation(f"{what} must be a string of 1..{limit} characters")
    return v


def _arity(msg: list[Any], lo: int, hi: int, name: str) -> None:
    if not lo <= len(msg) <= hi:
        raise ProtocolViolation(f"{name} takes {lo - 1}..{hi - 1} fields, got {len(msg) - 1}")


#: the common input message's fields: (seq, data: list of ints, ack or None, ack bits)
InputFields = tuple[int, list[int], int | None, int]


def _common_input(msg: list[Any]) -> InputFields | None:
    """``[3, seq, [ints], (ack(, bits))]`` with every field in range, as its fields (else None)."""
    if msg[0] != 3 or not 3 <= len(msg) <= 5:
        return None
    seq, d = msg[1], msg[2]
    ack = msg[3] if len(msg) > 3 else None
    bits = msg[4] if len(msg) == 5 else 0
    if (type(seq) is int and 1 <= seq <= MAX_INT and (ack is None or (type(ack) is int and 0 <= ack <= MAX_INT))
            and type(bits) is int and 0 <= bits < _BITS_END and type(d) is list and all(type(x) is int for x in d)):
        return seq, d, ack, bits
    return None


def input_fields(data: bytes) -> InputFields | None:
    """The fields of ``data`` when it is the common input message (``[3, seq, [ints]]``,
    optionally with ack and ack bits, every field in range); None for anything else, which
    ``parse_client`` then handles (and refuses, if malformed). ``gamesync.native`` has a
    twin that reads the msgpack bytes directly."""
    try:
        msg = unpack(data)
    except GamesyncError:  # malformed, or not a message at all: parse_client says which
        return None
    return _common_input(msg)


def parse_client(data: bytes) -> ClientEvent:
    """One client message to its event (any type; the session decides what is allowed when)."""
    msg = unpack(data)
    t = msg[0]
    if t == 3:  # the common input [3, seq, data(, ack(, bits))]: checked inline
        f = _common_input(msg)
        if f is not None:
            return InputFrame(*f)
    if t == Msg.INPUT:
        return _input(msg)
    if t == Msg.ACK:
        _arity(msg, 2, 3, "ack")
        return SnapshotAck(_int(msg[1], "ack tick"), _bits(msg[2]) if len(msg) > 2 else 0)
    if t == Msg.PING:
        _arity(msg, 2, 2, "ping")
        if type(msg[1]) not in (int, float):
            raise ProtocolViolation("ping time must be a number")
        return Ping(msg[1])
    if t == Msg.MESSAGE:
        _arity(msg, 2, 3, "message")
        ack_id = msg[2] if len(msg) > 2 else None
        return ClientMessage(_free_data(msg[1]), None if ack_id is None else _int(ack_id, "ack id"))
    if t == Msg.MESSAGE_ACK:
        _arity(msg, 2, 3, "message ack")
        if len(msg) > 2:
            return MessageAck(_int(msg[1], "ack id"), True, _free_data(msg[2]))
        return MessageAck(_int(msg[1], "ack id"))
    if t == Msg.JOIN:
        _arity(msg, 4, 7, "join")
        game = msg[4] if len(msg) > 4 else None
        token = msg[5] if len(msg) > 5 else None
        resume = msg[6] if len(msg) > 6 else None
        return Join(
            _int(msg[1], "version"),
            _str(msg[2], "room", MAX_ROOM),
            _str(msg[3], "name", MAX_NAME),
            None if game is None else _str(game, "game", MAX_ROOM),
            None if token is None else _str(token, "token", MAX_TOKEN),
            None if resume is None else _str(resume, "resume token", MAX_TOKEN),
        )
    if t == Msg.LEAVE:
        _arity(msg, 1, 1, "leave")
        return Leave()
    raise ProtocolViolation(f"unknown message type {t}")


def _input(msg: list[Any]) -> InputFrame:
    """An input message, every field checked (the general path behind parse_client's inline one)."""
    _arity(msg, 3, 5, "input")
    ack = msg[3] if len(msg) > 3 else None
    bits = _bits(msg[4]) if len(msg) > 4 else 0
    return InputFrame(_int(msg[1], "input seq", lo=1), _free_data(msg[2]),
                      None if ack is None else _int(ack, "ack tick"), bits)


def _tick(v: Any, what: str, allow_none: bool = False) -> int:
    if type(v) is not int or not (NO_TICK if allow_none else 0) <= v <= MAX_INT:
        raise ProtocolViolation(f"{what} must be an integer >= {NO_TICK if allow_none else 0}")
    return v


#: the fields of a snapshot without events: (tick, base, ref, input_ack, flags, payload)
SnapshotFields = tuple[int, int, int, int, int, bytes]


def snapshot_fields(data: bytes) -> SnapshotFields | None:
    """The fields of ``data`` when it is a snapshot whose event list is empty, every field
    checked as ``parse_server`` checks it; None for anything else, which ``parse_server`` then
    handles (and refuses, if malformed). ``gamesync.native`` has a twin that reads the msgpack
    bytes directly."""
    try:
        msg = unpack(data)
    except GamesyncError:
        return None
    if msg[0] != 4 or len(msg) != 8 or msg[7] != []:
        return None
    _, tick, base, ref, input_ack, flags, payload, events = msg
    if (type(tick) is int and 0 <= tick <= MAX_INT and type(base) is int and (base == NO_TICK or 0 <= base < tick)
            and type(ref) is int and (ref == NO_TICK or 0 <= ref < base) and type(input_ack) is int
            and 0 <= input_ack <= MAX_INT and type(flags) is int and 0 <= flags <= MAX_INT
            and type(payload) is bytes and type(events) is list):
        return tick, base, ref, input_ack, flags, payload
    return None


def parse_server(data: bytes) -> ServerEvent:
    """One server message to its event, every field checked."""
    msg = unpack(data)
    t = msg[0]
    if t == Msg.SNAPSHOT:
        _arity(msg, 8, 8, "snapshot")
        _, tick, base, ref, input_ack, flags, payload, events = msg
        _tick(tick, "tick")
        if not isinstance(payload, bytes) or not isinstance(events, list):
            raise ProtocolViolation("snapshot payload must be bin and events an array")
        if base != NO_TICK and not (type(base) is int and 0 <= base < tick):
            raise ProtocolViolation("snapshot baseline must be -1 or an earlier tick")
        if ref != NO_TICK and not (type(ref) is int and 0 <= ref < base):
            raise ProtocolViolation("snapshot reference must be -1 or a tick before the baseline")
        return Snapshot(_tick(tick, "tick"), base, ref, _int(input_ack, "input ack"), _int(flags, "flags"),
                        payload, events)
    if t == Msg.WELCOME:
        _arity(msg, 9, 64, "welcome")  # later versions may append fields: ignore them
        _, version, cid, room, game, rate, tick, schema, history = msg[:9]
        resume_token = msg[9] if len(msg) > 9 else None
        resumed = msg[10] if len(msg) > 10 else False
        view = msg[11] if len(msg) > 11 and version >= VIEW_VERSION else None  # older: ignore the rest
        if view is not None and not isinstance(view, dict):
            raise ProtocolViolation("view must be a map or nil")
        if resume_token is not None and not (isinstance(resume_token, str) and 0 < len(resume_token) <= MAX_TOKEN):
            raise ProtocolViolation("resume token must be a string")
        if type(resumed) is not bool:
            raise ProtocolViolation("resumed must be a boolean")
        if type(rate) not in (int, float) or not rate > 0:
            raise ProtocolViolation("tick rate must be a positive number")
        if not isinstance(schema, list) or not all(isinstance(f, dict) for f in schema):
            raise ProtocolViolation("schema must be an array of maps")
        return Welcome(_int(version, "version"), _int(cid, "client id", lo=1), _str(room, "room", MAX_ROOM),
                       _str(game, "game", MAX_ROOM), float(rate), _tick(tick, "tick"), schema,
                       _int(history, "history", lo=1), resume_token, resumed, view)
    if t == Msg.ERROR:
        _arity(msg, 3, 3, "error")
        if not isinstance(msg[1], str) or not isinstance(msg[2], str):
            raise ProtocolViolation("error code and reason must be strings")
        return ServerError(msg[1], msg[2])
    if t == Msg.REDIRECT:
        _arity(msg, 4, 64, "redirect")  # later versions may append fields: ignore them
        url = _str(msg[1], "redirect url", MAX_URL)
        if not url.startswith(("ws://", "wss://")):
            raise ProtocolViolation("redirect url must be ws:// or wss://")
        return Redirect(url, _str(msg[2], "room", MAX_ROOM), _int(msg[3], "redirect ttl"))
    raise ProtocolViolation(f"unknown message type {t}")


MAX_DEPTH = 32  # nesting of arrays and maps in a client's game data


def _free_data(v: Any) -> Any:
    """Game data from a client: any msgpack value but an extension (the timestamp included),
    nested at most MAX_DEPTH deep. Walked with an explicit stack: msgpack accepts nesting far
    deeper than Python's recursion limit."""
    stack = [(v, 0)]
    while stack:
        x, depth = stack.pop()
        if isinstance(x, msgpack.Timestamp):
            raise ProtocolViolation("msgpack extension types are not accepted")
        if isinstance(x, (list, dict)):
            if depth >= MAX_DEPTH:
                raise ProtocolViolation(f"game data nested deeper than {MAX_DEPTH} levels")
            items = x if isinstance(x, list) else [y for kv in x.items() for y in kv]
            stack.extend((y, depth + 1) for y in items)
    return v


# ---- builders ----------------------------------------------------------------------------

_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack
pack = _pack  # any msgpack value, as every message is packed


def pack_join(room: str, name: str, game: str | None = None, version: int = PROTOCOL_VERSION,
              token: str | None = None, resume: str | None = None) -> bytes:
    tail: list[Any] = [game or None, token or None, resume or None]
    while tail and tail[-1] is None:  # trailing optional fields are left out
        tail.pop()
    return _pack([Msg.JOIN, version, room, name, *tail])


def pack_input(seq: int, data: Any, ack: int | None = None, ack_bits: int = 0) -> bytes:
    if ack is None:
        return _pack([Msg.INPUT, seq, data])
    return _pack([Msg.INPUT, seq, data, ack, ack_bits] if ack_bits else [Msg.INPUT, seq, data, ack])


def pack_ack(tick: int, bits: int = 0) -> bytes:
    return _pack([Msg.ACK, tick, bits] if bits else [Msg.ACK, tick])


def pack_message(data: Any, ack_id: int | None = None) -> bytes:
    return _pack([Msg.MESSAGE, data] if ack_id is None else [Msg.MESSAGE, data, ack_id])


def pack_message_ack(ack_id: int, *reply: Any) -> bytes:
    """``[7, ack_id]``, or with a reply (one value, any; nil too) ``[7, ack_id, reply]``."""
    return _pack([Msg.MESSAGE_ACK, ack_id, *reply[:1]])


def pack_ping(t: float) -> bytes:
    return _pack([Msg.PING, t])


def pack_leave() -> bytes:
    return _pack([Msg.LEAVE])


def pack_welcome(w: Welcome) -> bytes:
    """The welcome; position 11 (``view``) only in a view room, so other rooms' bytes stay as they were."""
    tail = [w.view] if w.view is not None else []
    return _pack([Msg.WELCOME, w.version, w.client_id, w.room, w.game, w.tick_rate, w.tick, w.schema, w.history,
                  w.resume_token, w.resumed, *tail])


def pack_snapshot(tick: int, base: int, ref: int, input_ack: int, flags: int, payload: bytes,
                  events: list[Any]) -> bytes:
    """One client's frame for one tick: header, the shared payload bytes, that client's events."""
    return _pack([Msg.SNAPSHOT, tick, base, ref, input_ack, flags, payload, events])


NO_EVENTS = b"\x90"  # msgpack of an empty array


def snapshot_parts(tick: int, base: int, ref: int, flags: int, payload: bytes) -> tuple[bytes, bytes]:
    """The bytes of a snapshot message that every client sharing the payload gets: (head, mid),
    so that ``head + packb(input_ack) + mid + packb(events)`` equals ``pack_snapshot(...)``.

    A msgpack array is its header followed by its items, so the shared items are packed once
    per payload and each client's message is a join of five byte strings.
    """
    head = bytearray(_pack([Msg.SNAPSHOT, tick, base, ref]))
    head[0] = 0x98  # fixarray of 8 items instead of 4
    mid = _pack([flags, payload])[1:]  # without its own array header
    return bytes(head), mid


def pack_error(err: GamesyncError) -> bytes:
    return _pack([Msg.ERROR, err.code, err.reason])


def pack_redirect(url: str, room: str, ttl_ms: int) -> bytes:
    return _pack([Msg.REDIRECT, url, room, ttl_ms])


def pack_refusal(err: GamesyncError) -> list[bytes]:
    """The messages that tell a client why it is being closed: the error, and for a redirect
    the redirect message right behind it (clients that predate it stop at the error)."""
    out = [pack_error(err)]
    if isinstance(err, Redirect):
        out.append(pack_redirect(err.url, err.room, err.ttl_ms))
    return out
