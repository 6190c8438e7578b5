"""Who is in a room: the joined sessions, the joins waiting for the next tick, the sessions
closing, and the seats kept for a resume. The roster runs the game's join, leave and message
hooks (each session's messages go through its protocol object first) and tells the others;
the room decides when (``enter_joining``, ``drop_closing``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import native
from ..core import protocol as p
from ..core.errors import GamesyncError, InternalError, RoomFull
from ..core.serverproto import (
    Heartbeat,
    Left,
    MessageReceived,
    ReliableAcked,
    Reply,
    SessionEvent,
)
from ..game import Game
from .config import ServerConfig
from .inbox import Inbox
from .reliable import ReliableBook
from .roomstats import RoomStats, add_departed
from .seats import KeptSeats, Seat, check_owner
from .session import Session

logger = logging.getLogger(__name__)

#: joins that enter the game per tick; the rest wait for the next tick (30 Hz: 600 per second)
ENTRIES_PER_TICK = 20


class Roster:
    def __init__(self, room: str, game: Game, config: ServerConfig, stats: RoomStats, reliable: ReliableBook) -> None:
        self.room = room
        self.game = game
        self.config = config
        self.stats = stats
        self.reliable = reliable
        self.sessions: dict[int, Session] = {}
        self.joining: list[Session] = []
        self.to_drop: list[Session] = []  # sessions that started closing since the last drop
        self.seats = KeptSeats()  # seats of dropped players, for their resumes
        self.inbox = Inbox()
        #: called with a client id once that player has left for good (the room's views forget it)
        self.on_gone: Callable[[int], None] | None = None
        #: what checks an input on receipt: the game's ``input_spec`` where it has one, else its ``validate_input``
        self.validate: Callable[[Any], Any] = (game.input_spec.validate if game.input_spec is not None
                                               else game.validate_input)

    def seated(self) -> list[Seat]:
        """Everyone with a seat: the sessions, then the seats kept for a resume."""
        return [s.to_seat() for s in self.sessions.values()] + list(self.seats)

    def deliver(self, data: Any, player: str | None = None) -> int:
        """An event to everyone, or to the clients of ``player`` (token player id, or name when
        anonymous). Returns how many."""
        n = 0
        for s in self.sessions.values():
            if player is None or (s.player if s.player is not None else s.name) == player:
                s.queue_event([p.Ev.EVENT, data])
                n += 1
        return n

    # -- from connection tasks ---------------------------------------------------------------

    def admit(self, session: Session, held: int) -> None:
        """Queue a joined session (``held``: seats reserved for redirected joins)."""
        if len(self.sessions) + len(self.joining) + len(self.seats) + held >= self.game.max_players:
            raise RoomFull(f"room {self.room!r} is full ({self.game.max_players} players)")
        self.joining.append(session)

    def take_seat(self, resume_token: str, player: str | None) -> Seat | None:
        """The seat ``resume_token`` names, taken out: a kept seat, or the seat of a session still
        open here or still waiting for its first tick (a client that reconnects faster than
        the room notices its old connection died, or a half-open one), which is retired on the
        spot. None when there is no such seat. With join tokens, only the player it belongs to
        gets it (Unauthorized, 4011, for anyone else)."""
        seat = self.seats.take(resume_token, player)
        if seat is not None:
            return seat
        old = next((s for s in (*self.sessions.values(), *self.joining)
                    if s.resume_token == resume_token and not s.closing), None)
        if old is None:
            return None
        check_owner(old.seat, player)
        if old in self.joining:  # welcomed, not yet at a tick: the game has not seen it
            self.joining.remove(old)
        else:
            self._detach(old)
        old.close(None, "replaced by a resumed connection")  # out of the room already: not to drop
        old.proto.closed()
        old.done.set()
        return old.to_seat()

    # -- in the tick ---------------------------------------------------------------------------

    def enter_joining(self) -> None:
        """Let the waiting joins into the game, at most ENTRIES_PER_TICK of them (in order): a
        burst of joins is spread over ticks, so that its first snapshots (full ones) and its
        join hooks never stall the tick for the clients already playing."""
        if self.joining:
            joining, self.joining = self.joining[:ENTRIES_PER_TICK], self.joining[ENTRIES_PER_TICK:]
            for s in joining:
                self._enter(s)

    def _enter(self, s: Session) -> None:
        if s.closing:
            s.proto.closed()
            s.done.set()
            return
        s.proto.enter()
        if self.game.input_spec is not None:
            s.proto.inputs.expect_ints(self.game.input_spec.lo, self.game.input_spec.hi)
        self.sessions[s.id] = s
        s.seat.in_game = True
        s.to_drop = self.to_drop
        self.inbox.add(s)
        if not s.resumed:  # back in the same seat, the game and the others never saw it leave
            self.stats.joins += 1
            try:
                self.game.on_join(s.id, s.name)
            except Exception:
                logger.exception("room %s: game failed in on_join for client %d", self.room, s.id)
                s.close(InternalError("the game failed to admit you"))
                return
        joined = [p.Ev.JOINED, s.id, s.name]
        for other in self.sessions.values():
            if other is not s:
                if not s.resumed:
                    other.queue_event(joined)
                s.events.append([p.Ev.JOINED, other.id, other.name])  # the roster: not a backlog
        logger.info("room %s: client %d (%s) %s; %d players", self.room, s.id, s.name,
                    "resumed its seat" if s.resumed else "joined", len(self.sessions))
        self.handle(s, s.conn.buffered())  # messages that arrived right behind the join

    def _detach(self, s: Session) -> None:
        """Take ``s`` out of the sessions and the inbox, keeping its counters."""
        del self.sessions[s.id]
        self.inbox.remove(s)
        add_departed(self.stats, s)

    def drop_closing(self, keep_seats: bool, now: float) -> None:
        """Drop the sessions that started closing since the last call: each one's seat is kept
        for a resume (a lost connection, while ``keep_seats``), or the player has left."""
        if not self.to_drop:
            return
        closing = self.to_drop[:]
        self.to_drop.clear()
        grace = self.config.seat_grace_s
        for s in closing:
            if self.sessions.get(s.id) is not s:  # already gone, or its seat went on to a resumed session
                continue
            self._detach(s)
            s.proto.closed()
            s.done.set()
            if s.keep_seat and grace > 0 and keep_seats:
                self.seats.keep(s.to_seat(), now + grace)
                logger.info("room %s: client %d (%s) dropped; seat kept for %g s", self.room, s.id, s.name, grace)
            else:
                self._player_left(s.seat)

    def free_seats(self, now: float) -> None:
        """Let go of the seats whose grace time is over: now the player has left."""
        for seat in self.seats.expired(now):
            logger.info("room %s: seat of client %d (%s) freed after %g s", self.room, seat.id, seat.name,
                        self.config.seat_grace_s)
            self._player_left(seat)

    def _player_left(self, seat: Seat) -> None:
        """The player has left for good: the game, the others and pending deliveries learn it."""
        self.stats.leaves += 1
        try:
            self.game.on_leave(seat.id)
        except Exception:
            logger.exception("room %s: game failed in on_leave for client %d", self.room, seat.id)
        self.reliable.drop_client(seat.id)
        if self.on_gone is not None:
            self.on_gone(seat.id)
        left = [p.Ev.LEFT, seat.id]
        for other in self.sessions.values():
            other.queue_event(left)
        logger.info("room %s: client %d (%s) left; %d players", self.room, seat.id, seat.name, len(self.sessions))

    def handle(self, s: Session, msgs: list[bytes]) -> None:
        """Feed a session's messages to its protocol object and apply what comes out."""
        proto, validate, fields = s.proto, self.validate, native.input_fields
        try:
            for m in msgs:
                f = fields(m)
                if f is not None:  # the common input, recognised in its bytes
                    proto.receive_input(f, validate)
                    continue
                ev = proto.receive(m, validate)
                if ev is not None:
                    self._apply(s, ev)
        except Exception as e:
            self.fail(s, e)

    def fail(self, s: Session, e: Exception) -> None:
        """A message from ``s`` raised ``e``: a rule it broke closes it with that error; the
        game failing on its data (``validate_input``, ``on_message``) closes it with 1011."""
        if isinstance(e, GamesyncError):
            s.close(e)
            return
        logger.error("room %s: game failed on a message from client %d", self.room, s.id, exc_info=e)
        s.close(InternalError("the game failed on your message"))

    def read(self, now: float) -> None:
        """Read every joined session's socket once and handle what came (``Inbox.read``)."""
        self.inbox.read(now, self.handle, self.fail, self.validate, self.stats)

    def _apply(self, s: Session, ev: SessionEvent) -> None:
        if type(ev) is MessageReceived:
            self.game.on_message(s.id, ev.data)
            if ev.ack_id is not None:
                s.queue_event([p.Ev.MESSAGE_ACK, ev.ack_id])
        elif type(ev) is Reply:
            s.queue_event(ev.entry)
        elif type(ev) is ReliableAcked:
            self.reliable.acked(ev.ack_id, s.id, ev.replied, ev.reply)
        elif type(ev) is Left:
            s.left()

    def close_all(self, err: GamesyncError) -> None:
        """Close every session and pending join with ``err``."""
        for s in list(self.sessions.values()) + self.joining:
            s.close(err)
            s.done.set()

    def heartbeat(self, now: float) -> None:
        """Ping the silent, close the idle (their seats are kept)."""
        cfg = self.config
        for s in self.sessions.values():
            beat = s.proto.heartbeat(now, cfg.heartbeat_s, cfg.idle_timeout_s, s.outbuf is None)
            if beat is Heartbeat.TIMEOUT:
                s.close(s.proto.idle_error(cfg.idle_timeout_s), keep_seat=True)
            elif beat is Heartbeat.PING:
                s.write(s.conn.ping_frame())

    @property
    def empty(self) -> bool:
        return not (self.sessions or self.joining or self.seats)
