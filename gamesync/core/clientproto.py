"""Client side of the protocol, sans I/O: bytes in, events out; bytes to send queued in ``outbox``.

Shared by the trio client library and the bot swarm, which differ only in how they move
bytes. Time is passed in (seconds, any monotonic origin).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import protocol as p
from .errors import DesyncError, ProtocolViolation, Redirect
from .mirror import DecodeCache, Mirror
from .schema import Schema
from .state import State
from .viewmirror import ChunkCache, ViewStates

#: snapshots read together that are all decoded; past this many, only the newest is
BACKLOG = 3
#: a mirror's class, or anything that makes one from (schema, history, decode cache)
MirrorFactory = Callable[[Schema, int, DecodeCache | None], Mirror]
UNACKED_INPUTS = 120  # unapplied inputs kept for a resend (4 s at 30 Hz; under the 4 x 32 the server lets wait)


@dataclass(frozen=True)
class Welcomed:
    welcome: p.Welcome


@dataclass(frozen=True)
class StateUpdated:
    """A newer world state; ``input_ack`` is the last input seq the server applied for us."""

    state: State
    input_ack: int
    base: int
    size: int  # bytes of the WebSocket message that carried it


@dataclass(frozen=True)
class StateSkipped:
    """A snapshot that came in one batch with a newer one and was not decoded (see
    ``ClientProtocol.receive_many``); its ``input_ack`` still counts."""

    tick: int
    input_ack: int
    size: int


@dataclass(frozen=True)
class GameEvent:
    data: Any


@dataclass(frozen=True)
class ReliableMessage:
    data: Any
    ack_id: int


@dataclass(frozen=True)
class PlayerJoined:
    client_id: int
    name: str


@dataclass(frozen=True)
class PlayerLeft:
    client_id: int


@dataclass(frozen=True)
class MessageAcked:
    ack_id: int


@dataclass(frozen=True)
class Pong:
    rtt: float  # seconds, including up to one tick of server hold (replies go out with ticks)


@dataclass(frozen=True)
class ErrorReceived:
    code: str
    reason: str


ClientSideEvent = (Welcomed | StateUpdated | StateSkipped | GameEvent | ReliableMessage | PlayerJoined | PlayerLeft
                   | MessageAcked | Pong | ErrorReceived | Redirect)


class ClientProtocol:
    """Join, mirror snapshots, number inputs, acknowledge what needs acknowledging."""

    def __init__(self, room: str, name: str, game: str | None = None, *, auto_ack: bool = True,
                 cache: DecodeCache | None = None, token: str | None = None, resume: str | None = None,
                 version: int = p.PROTOCOL_VERSION, view_cache: ChunkCache | None = None,
                 materialise: bool = True, new_mirror: MirrorFactory = Mirror) -> None:
        if version not in p.SUPPORTED_VERSIONS:
            raise ValueError(f"protocol version {version} is not one of {p.SUPPORTED_VERSIONS}")
        self.version = version
        #: protocol 3: every snapshot is decoded, in order, and none is acknowledged (the server
        #: builds on what it wrote to this stream); protocol 2: acks say what is held
        self.stream = version >= p.STREAM_VERSION
        self.room = room
        self.name = name
        self.game = game
        self.token = token
        self.resume = resume  # the resume token of a dropped connection's seat, to take it back
        #: inputs sent but not yet applied by the server, oldest first (resent after a resume)
        self.unacked: deque[tuple[int, Any]] = deque(maxlen=UNACKED_INPUTS)
        self.auto_ack = auto_ack
        self.cache = cache
        self.view_cache = view_cache  # decoded cells shared by a swarm's clients of one view room
        self.materialise = materialise  # False: a view room's snapshots give no whole State (a swarm)
        #: makes the mirror of a room without views (a swarm passes gamesync.native's twin of Mirror)
        self.new_mirror = new_mirror
        self.outbox: list[bytes] = []
        self.welcome: p.Welcome | None = None
        self.schema: Schema | None = None
        self.mirror: Mirror | ViewStates | None = None
        self.input_seq = 0
        self.input_ack = 0
        self._next_ack_id = 1

    # -- outgoing --------------------------------------------------------------------------

    def join(self) -> bytes:
        return p.pack_join(self.room, self.name, self.game, self.version, token=self.token, resume=self.resume)

    def successor(self, resume: str | None) -> ClientProtocol:
        """The protocol for this client's next connection (a redirect, a reconnect): the same
        room, name, game, token, settings and version, continuing the input numbering, with
        ``resume`` as the seat to take back."""
        nxt = ClientProtocol(self.room, self.name, self.game, auto_ack=self.auto_ack, cache=self.cache,
                             token=self.token, resume=resume, version=self.version, view_cache=self.view_cache,
                             materialise=self.materialise, new_mirror=self.new_mirror)
        nxt.carry_over(self)
        return nxt

    def carry_over(self, prev: ClientProtocol) -> None:
        """Continue an earlier connection's input numbering (seqs only ever increase, so a
        resumed seat never takes a new input for an old one) and its unapplied inputs."""
        self.input_seq = prev.input_seq
        self.input_ack = prev.input_ack
        self.unacked = deque(prev.unacked, maxlen=UNACKED_INPUTS)

    def resend_unacked(self) -> list[bytes]:
        """The inputs the server had not applied when the connection dropped, to send again
        after a resume; the server applies each seq at most once."""
        return [p.pack_input(seq, data) for seq, data in self.unacked]

    @property
    def visible(self) -> int:
        """Entities held (in a view room, those this client may see; else the whole world's)."""
        m = self.mirror
        if isinstance(m, ViewStates):
            return m.view.count
        return int(m.latest.alive.sum()) if m is not None and m.latest is not None else 0

    @property
    def tick(self) -> int:
        """Newest snapshot tick held, the one to acknowledge."""
        return self.mirror.tick if self.mirror is not None else p.NO_TICK

    def send_input(self, data: Any) -> bytes:
        """Next input message (its seq is ``self.input_seq`` afterwards); under protocol 2 it
        carries our ack."""
        self.input_seq += 1
        self.unacked.append((self.input_seq, data))
        if self.stream:
            return p.pack_input(self.input_seq, data)
        t = self.tick
        if t < 0:
            return p.pack_input(self.input_seq, data)
        assert self.mirror is not None
        return p.pack_input(self.input_seq, data, t, self.mirror.ack_bits())

    def send_message(self, data: Any, reliable: bool = False) -> tuple[bytes, int | None]:
        ack_id = None
        if reliable:
            ack_id = self._next_ack_id
            self._next_ack_id += 1
        return p.pack_message(data, ack_id), ack_id

    def reply(self, ack_id: int, data: Any) -> bytes:
        """The answer to the reliable message ``ack_id`` (a request: the server's game waits
        for it). The message was acked on receipt already; this is the reply."""
        return p.pack_message_ack(ack_id, data)

    def ping(self, now: float) -> bytes:
        return p.pack_ping(now)

    # -- incoming --------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[ClientSideEvent]:
        """Handle one server message; may queue acknowledgements in ``outbox``."""
        return self._handle(p.parse_server(data), len(data), now, True)

    def receive_many(self, datas: list[bytes], now: float, backlog: int = BACKLOG) -> list[ClientSideEvent]:
        """Handle messages that arrived together, in order.

        Protocol 3 decodes every snapshot: each may be built on the one before it. A client
        that falls behind is held back by its own socket: the server writes only what the
        socket takes and replaces what waits, so the backlog never grows past what the
        socket buffers hold.

        Protocol 2: up to ``backlog`` snapshots among them are all decoded; past that only the
        newest is, and the others give ``StateSkipped`` (their events still come out, in
        order). Skipping is safe there: the server builds every snapshot on a tick this client
        acknowledged, and a skipped snapshot is never acknowledged.
        """
        msgs = [p.parse_server(d) for d in datas]
        snaps = [i for i, m in enumerate(msgs) if isinstance(m, p.Snapshot)]
        only = (max(snaps, key=lambda i: msgs[i].tick)  # type: ignore[union-attr]
                if len(snaps) > backlog and not self.stream else None)
        out: list[ClientSideEvent] = []
        for i, (m, d) in enumerate(zip(msgs, datas, strict=True)):
            out += self._handle(m, len(d), now, only is None or i == only)
        return out

    def _handle(self, msg: p.ServerEvent, size: int, now: float, decode: bool) -> list[ClientSideEvent]:
        if isinstance(msg, p.Snapshot):
            return self._snapshot(msg, size, now, decode)
        if isinstance(msg, p.Welcome):
            if self.welcome is not None:
                raise ProtocolViolation("second welcome")
            if msg.version != self.version:
                raise ProtocolViolation(f"welcome speaks protocol {msg.version}, the join asked for {self.version}")
            self.schema = _schema(msg.schema)
            self.welcome = msg
            if msg.view is not None:  # a view room (docs/protocol.md 18)
                private = msg.view.get("private") or []
                self.mirror = ViewStates(self.schema, self.view_cache, self.materialise, list(private),
                                         packed=msg.version >= p.PACKED_VERSION)
            else:
                self.mirror = self.new_mirror(self.schema, msg.history, self.cache)
            return [Welcomed(msg)]
        if isinstance(msg, Redirect):  # the room lives on another node; close 4012 follows
            return [msg]
        return [ErrorReceived(msg.code, msg.reason)]

    def take_snapshot(self, f: p.SnapshotFields) -> State | None:
        """A snapshot without events, as its fields (``protocol.snapshot_fields``): what
        ``receive`` does with it, without the event: the new state, or None when it is not
        newer than the one held (a swarm's bots read most snapshots this way)."""
        mirror = self.mirror
        if mirror is None:
            raise ProtocolViolation("snapshot before welcome")
        tick, base, ref, input_ack, flags, payload = f
        st = mirror.apply(tick, base, ref, flags, payload)
        if st is None:  # not newer than what the mirror holds
            return None
        self._input_acked(input_ack)
        if self.auto_ack and not self.stream:
            self.outbox.append(p.pack_ack(tick, mirror.ack_bits()))
        return st

    def _input_acked(self, input_ack: int) -> None:
        """The server applied our inputs up to ``input_ack``: none of them is resent."""
        if input_ack > self.input_ack:
            self.input_ack = input_ack
        ack, unacked = self.input_ack, self.unacked
        while unacked and unacked[0][0] <= ack:
            unacked.popleft()

    def _snapshot(self, s: p.Snapshot, size: int, now: float, decode: bool = True) -> list[ClientSideEvent]:
        if self.mirror is None:
            raise ProtocolViolation("snapshot before welcome")
        out: list[ClientSideEvent] = []
        if s.tick > self.mirror.tick:
            if decode:
                st = self.take_snapshot((s.tick, s.base, s.ref, s.input_ack, s.flags, s.payload))
                assert st is not None
                out.append(StateUpdated(st, s.input_ack, s.base, size))
            else:
                self._input_acked(s.input_ack)
                out.append(StateSkipped(s.tick, s.input_ack, size))
        for ev in s.events:
            out.append(self._event(ev, now))
        return out

    def _event(self, ev: Any, now: float) -> ClientSideEvent:
        if not isinstance(ev, list) or not ev:
            raise ProtocolViolation("bad event entry")
        kind, n = ev[0], len(ev)
        if kind == p.Ev.EVENT and n == 2:
            return GameEvent(ev[1])
        if kind == p.Ev.RELIABLE and n == 3 and _uint(ev[2]):
            self.outbox.append(p.pack_message_ack(ev[2]))
            return ReliableMessage(ev[1], ev[2])
        if kind == p.Ev.JOINED and n == 3 and _uint(ev[1]) and isinstance(ev[2], str):
            return PlayerJoined(ev[1], ev[2])
        if kind == p.Ev.LEFT and n == 2 and _uint(ev[1]):
            return PlayerLeft(ev[1])
        if kind == p.Ev.MESSAGE_ACK and n == 2 and _uint(ev[1]):
            return MessageAcked(ev[1])
        if kind == p.Ev.PONG and n == 2 and type(ev[1]) in (int, float):
            return Pong(max(0.0, now - float(ev[1])))
        raise ProtocolViolation(f"bad event entry of kind {kind!r}")


def _uint(v: Any) -> bool:
    return type(v) is int and 0 <= v <= p.MAX_INT


def _schema(wire: list[Any]) -> Schema:
    """The schema of a welcome, or ProtocolViolation. ``Schema.from_wire`` trusts its input: a
    missing key raised KeyError, a name that is not a string AttributeError, a bound that is
    not a number TypeError, out of this method's error types (tests/security/test_fuzz.py)."""
    try:
        schema = Schema.from_wire(wire)
        for f in schema:
            _ = f.wire_dtype  # every field's wire type exists (finite, numeric bounds that fit 32 bits)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ProtocolViolation(f"bad schema in welcome: {type(e).__name__}: {e}") from None
    return schema


__all__ = [
    "ClientProtocol", "ClientSideEvent", "DesyncError", "ErrorReceived", "GameEvent", "MessageAcked",
    "PlayerJoined", "PlayerLeft", "Pong", "Redirect", "ReliableMessage", "StateSkipped", "StateUpdated", "Welcomed",
]
