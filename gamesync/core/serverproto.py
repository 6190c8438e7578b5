"""Server side of one client's session, sans I/O: client messages in, events for the room out.

The mirror of ``clientproto.ClientProtocol``. It owns the join gate (the first message must
be a join of our protocol version), input ordering and de-duplication, the client's acks
(inputs applied, snapshots held), ping replies, leave, the WebSocket heartbeat's bookkeeping,
and the session's lifecycle: one ``SessionState``, whose every transition is in
``_TRANSITIONS`` below. The room feeds it decoded messages (``receive``) and applies the
events it returns; time is passed in. Once the session is past ``PLAYING`` (the client
left, broke a rule, or its connection was lost), nothing it sends reaches the game.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import protocol as p
from .acks import AckTracker
from .errors import GamesyncError, ProtocolViolation, Timeout, VersionMismatch
from .inputs import DRAIN_TICKS, INPUT_BACKLOG, InputQueue


class SessionState(enum.Enum):
    """Where a session is in its life; the only legal moves are in ``_TRANSITIONS``."""

    AWAITING_JOIN = "awaiting_join"  # connected, the join message not yet read
    JOINING = "joining"  # joined a room, enters its game at the next tick
    PLAYING = "playing"  # in the game: its messages reach it
    CLOSING = "closing"  # left, refused or lost: the room drops it at its next safe point
    CLOSED = "closed"  # out of the room (its seat kept for a resume, or given up)


_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.AWAITING_JOIN: frozenset({SessionState.JOINING, SessionState.CLOSING}),
    SessionState.JOINING: frozenset({SessionState.PLAYING, SessionState.CLOSING}),
    SessionState.PLAYING: frozenset({SessionState.CLOSING}),
    SessionState.CLOSING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class IllegalTransition(Exception):
    """A bug of the caller: a lifecycle move ``_TRANSITIONS`` does not allow."""


# -- events for the room ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message for the game; once the game took it, ``ack_id`` (if any) is acknowledged."""

    data: Any
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class ReliableAcked:
    """The client acknowledged the room's reliable message ``ack_id`` (``replied``: and
    answered it with ``reply``)."""

    ack_id: int
    replied: bool = False
    reply: Any = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An event entry to queue for the client (a pong)."""

    entry: list[Any]


@dataclass(frozen=True, slots=True)
class Left:
    """The client said goodbye: its seat goes now; nothing it sends from here on counts."""


SessionEvent = MessageReceived | ReliableAcked | Reply | Left


class Heartbeat(enum.Enum):
    """What the heartbeat asks of the shell for a session."""

    NOTHING = 0
    PING = 1  # send a WebSocket ping
    TIMEOUT = 2  # close it: no traffic for too long (its seat is kept)


class ServerSession:
    """One client as its room sees it: the join gate, inputs, acks, leave, the lifecycle."""

    __slots__ = ("state", "closing", "version", "error", "keep_seat", "why", "acks", "inputs", "last_recv", "pinged",
                 "inputs_in", "messages_in")

    def __init__(self, history_ticks: int, baseline_lag: int, max_inputs_per_tick: int, now: float,
                 input_backlog: int = INPUT_BACKLOG, input_drain_ticks: int = DRAIN_TICKS,
                 acks: AckTracker | None = None, inputs: InputQueue | None = None) -> None:
        """``acks`` and ``inputs``: the tracker and queue to use (``AckTracker(history_ticks,
        baseline_lag)`` and ``InputQueue(max_inputs_per_tick, input_backlog, input_drain_ticks)``
        or twins with the same answers, such as the server's native ones); by default new ones."""
        self.state = SessionState.AWAITING_JOIN
        #: past playing: closing or closed (kept with ``state`` by ``_move``; read for every
        #: session on every tick, so a plain attribute)
        self.closing = False
        self.version = p.PROTOCOL_VERSION  # the join's, once it came
        self.error: GamesyncError | None = None  # what the connection is closed with (None: 1000)
        self.keep_seat = False  # closed in a way that keeps the player's seat for a resume
        self.why = ""  # why it is closing, for the log
        self.acks = acks if acks is not None else AckTracker(history_ticks, baseline_lag)
        #: waiting inputs, handed to the game evenly (core.inputs); its last_applied is the input ack
        self.inputs = inputs if inputs is not None else InputQueue(max_inputs_per_tick, input_backlog,
                                                                   input_drain_ticks)
        self.last_recv = now
        self.pinged = False
        self.inputs_in = 0
        self.messages_in = 0

    # -- lifecycle (every move goes through _move) -----------------------------------------

    def _move(self, to: SessionState) -> None:
        if to not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"session {self.state.value} -> {to.value}")
        self.state = to
        self.closing = to is SessionState.CLOSING or to is SessionState.CLOSED

    def receive_join(self, data: bytes) -> p.Join:
        """The join gate: the first message must be a join in a protocol version we speak.
        From version 3 on, what the client holds follows from what was written to it (it
        decodes its whole stream); version 2 clients say it with acks."""
        join = p.parse_client(data)
        if not isinstance(join, p.Join):
            raise ProtocolViolation("the first message must be join")
        if join.version not in p.SUPPORTED_VERSIONS:
            raise VersionMismatch(f"server speaks protocol {' or '.join(map(str, p.SUPPORTED_VERSIONS))}, "
                                  f"client {join.version}")
        self.version = join.version
        self.acks.stream = join.version >= p.STREAM_VERSION
        self._move(SessionState.JOINING)
        return join

    @property
    def last_applied(self) -> int:
        """The newest input seq handed to the game (the input ack; 0 before any)."""
        return self.inputs.last_applied

    def resume(self, last_applied: int) -> None:
        """Continue a dropped session's seat: inputs up to ``last_applied`` were applied."""
        self.inputs.last_applied = last_applied

    def enter(self) -> None:
        """The room let it into the game."""
        self._move(SessionState.PLAYING)

    def close(self, err: GamesyncError | None, why: str = "", keep_seat: bool = False) -> bool:
        """Start closing (idempotent; False if it already was). ``keep_seat``: the connection
        was lost rather than refused, so the seat waits for a resume."""
        if self.closing:
            return False
        self._move(SessionState.CLOSING)
        self.error, self.why, self.keep_seat = err, why, keep_seat
        self.inputs.clear()  # nothing more reaches the game
        return True

    def closed(self) -> None:
        """The room let go of it."""
        if self.state is not SessionState.CLOSED:
            self._move(SessionState.CLOSED)

    # -- incoming --------------------------------------------------------------------------

    def receive_input(self, fields: p.InputFields, validate: Callable[[Any], Any]) -> None:
        """Handle one input message already recognised by ``protocol.input_fields`` (the
        common case, as ``receive`` would handle it)."""
        if self.state is SessionState.PLAYING:
            self._input(*fields, validate)

    def _input(self, seq: int, data: Any, ack: int | None, bits: int, validate: Callable[[Any], Any]) -> None:
        self.inputs_in += 1
        if ack is not None:
            self.acks.on_ack(ack, bits)
        self.inputs.add(seq, validate(data))

    def receive(self, data: bytes, validate: Callable[[Any], Any]) -> SessionEvent | None:
        """Handle one client message. ``validate`` is the game's ``validate_input``. Returns
        what the room must apply, if anything; nothing once the session is not playing."""
        if self.state is not SessionState.PLAYING:
            return None
        ev = p.parse_client(data)
        if type(ev) is p.InputFrame:  # the common case, first
            self._input(ev.seq, ev.data, ev.ack, ev.ack_bits, validate)
            return None
        if isinstance(ev, p.SnapshotAck):
            self.acks.on_ack(ev.tick, ev.bits)
            return None
        if isinstance(ev, p.Ping):
            return Reply([p.Ev.PONG, ev.time])
        if isinstance(ev, p.ClientMessage):
            self.messages_in += 1
            return MessageReceived(ev.data, ev.ack_id)
        if isinstance(ev, p.MessageAck):
            return ReliableAcked(ev.ack_id, ev.replied, ev.reply)
        if isinstance(ev, p.Leave):
            self.close(None, "left")
            return Left()
        raise ProtocolViolation("join after join")

    def take_inputs(self) -> list[p.InputFrame]:
        """This tick's inputs for the game, in seq order (``InputQueue.take``)."""
        return self.inputs.take()

    # -- heartbeat -------------------------------------------------------------------------

    def heard(self, now: float) -> None:
        """Bytes arrived from the client."""
        self.last_recv = now
        self.pinged = False

    def heartbeat(self, now: float, ping_after_s: float, idle_timeout_s: float, can_ping: bool) -> Heartbeat:
        """Whether to ping the client (once per silence) or close it as idle."""
        idle = now - self.last_recv
        if idle > idle_timeout_s:
            return Heartbeat.TIMEOUT
        if idle > ping_after_s and not self.pinged and can_ping:
            self.pinged = True
            return Heartbeat.PING
        return Heartbeat.NOTHING

    def idle_error(self, idle_timeout_s: float) -> Timeout:
        return Timeout(f"no traffic for {idle_timeout_s:g} s")


__all__ = [
    "Heartbeat", "IllegalTransition", "Left", "MessageReceived", "ReliableAcked", "Reply", "ServerSession",
    "SessionEvent", "SessionState",
]
