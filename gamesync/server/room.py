"""A room: one world, one game instance, one tick task, and the sessions joined to it.

Each tick, in order: read every readable socket once (inputs wait for the tick anyway, so
reading them in bulk costs no latency), admit joins and drop leavers, step the game once
with the tick's batch of inputs, quantise the world into the history, then build one
payload per distinct (baseline, reference) pair, compress it once, and hand every client
one frame holding its snapshot and its events.

The room sees the world outside it only through ``links`` (gamesync.ports.RoomLinks), and
each session's rules through its ``proto`` (core.serverproto.ServerSession).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from .. import native
from ..core import protocol as p
from ..core.errors import GamesyncError, InternalError
from ..core.inputs import take_all
from ..core.plan import PlanCounts
from ..core.saved import SavedRoom, restore_world, save_world
from ..core.state import History, State
from ..core.world import World
from ..game import Game
from ..native import packing
from ..ports import RoomLinks
from .config import ServerConfig
from .keeper import Keeper
from .outbound import send_frames
from .payloads import encode_payloads
from .reliable import ReliableBook, ReliableSend
from .roomsends import RoomSends
from .roomstats import RoomStats, room_stats
from .roster import Roster
from .seats import Seat
from .session import Outgoing, Session
from .tick import TickStats, run_ticks
from .views import Views

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_TICKS = 10


class Room(RoomSends):
    """Implements gamesync.game.RoomAPI for its game (what leaves the room: ``RoomSends``),
    and gamesync.ports.HostedRoom."""

    def __init__(self, links: RoomLinks, config: ServerConfig, name: str, game_name: str, game: Game,
                 saved: SavedRoom | None = None, kept: Any = None) -> None:
        self.links = links
        self.config = config
        self.name = name
        self.game_name = game_name
        self.game = game
        self.world = World(game.schema)
        self.history = History(config.history_ticks)
        #: interest management, when the game declares it (None: everyone sees everything)
        self.views = Views.of(self.world, game, config.history_ticks)
        self.tick = 0
        self.tick_rate = config.tick_rate
        self._reliable = ReliableBook()
        self.stats = RoomStats()
        self.roster = Roster(name, game, config, self.stats, self._reliable)
        self.sessions = self.roster.sessions  # the same dict, read on every tick
        self.roster.on_gone = self.views.forget if self.views is not None else None
        self.tick_stats = TickStats()
        self.plan_counts = PlanCounts()  # who got which payload past the per-tick cap
        #: seconds spent in each phase of the tick, summed over ticks
        self.phase_s = {"read": 0.0, "step": 0.0, "encode": 0.0, "send": 0.0}
        self.closed = False
        self._scope: trio.CancelScope | None = None
        self._empty_since: float | None = None
        self._first_tick = 0
        #: ticks between state saves (games that opt in, where links save); 0: none
        self.save_every = max(1, round(links.save_interval_s * self.tick_rate)) if links.save_interval_s > 0 else 0
        self.keeper = Keeper(links, name, game_name, game, self.tick_rate)  # what outlives the room
        game.setup(self)
        self.keeper.restore(kept)  # None (nothing kept, or a room going on from a save): nothing
        if saved is not None:
            self._restore(saved)

    def _restore(self, saved: SavedRoom) -> None:
        """Continue a room saved on another node: its world, its game, its players' seats (kept
        for ``seat_grace_s``, for their resumes), its tick."""
        restore_world(self.world, saved.world)
        self.game.restore_state(saved.game_state)
        self._first_tick = self.tick = saved.tick + 1
        deadline = trio.current_time() + max(self.config.seat_grace_s, 1.0)
        for seat in saved.seats:
            self.roster.seats.keep(Seat.from_saved(seat), deadline)
        logger.info("room %s: restored at tick %d with %d seats kept for resumes", self.name, saved.tick,
                    len(saved.seats))

    def save(self) -> SavedRoom | None:
        """The room's state for a save, or None if its game does not opt in."""
        state = self.game.save_state()
        if state is None:
            return None
        seats = [seat.to_saved() for seat in self.roster.seated() if seat.resume_token]
        return SavedRoom(self.game_name, self.tick, save_world(self.world), state, seats)

    @property
    def players(self) -> list[tuple[int, str, str | None]]:
        """(client id, name, player id) of everyone in the room (kept seats included)."""
        return [(s.id, s.name, s.player) for s in self.roster.seated()]

    @property
    def clients(self) -> int:
        return len(self.sessions)

    @property
    def tick_load(self) -> float:
        """Share of one core its recent ticks took (their mean time times the tick rate)."""
        return sum(r := self.tick_stats.recent) / len(r) * self.tick_rate if self.tick_stats.recent else 0.0

    @property
    def max_players(self) -> int:
        return self.game.max_players

    def deliver(self, data: Any, player: str | None = None) -> int:
        """An event from outside the room (another room or node, ``gamesync publish``): to
        everyone, or to the clients of ``player`` (token player id, or name when anonymous)."""
        return self.roster.deliver(data, player)

    # -- RoomAPI ---------------------------------------------------------------------------

    @property
    def client_ids(self) -> list[int]:
        return list(self.sessions)

    def send(self, client_id: int, data: Any) -> None:
        s = self.sessions.get(client_id)
        if s is not None:
            s.queue_event([p.Ev.EVENT, data])

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        entry = [p.Ev.EVENT, data]
        for cid, s in self.sessions.items():
            if cid != exclude:
                s.queue_event(entry)

    def send_reliable(self, client_id: int, data: Any, timeout: float = 5.0,
                      on_result: Callable[[bool], None] | None = None, expect_reply: bool = False,
                      on_ack: Callable[[], None] | None = None) -> ReliableSend:
        h = self._reliable.open(client_id, trio.current_time() + timeout, on_result, expect_reply, on_ack)
        s = self.sessions.get(client_id)
        if s is None or s.closing:
            h.resolve(False)
            return h
        self._reliable.add(h)
        s.queue_event([p.Ev.RELIABLE, data, h.ack_id])
        return h

    # -- membership (admit and take_seat from connection tasks; the rest in the tick) -------

    def admit(self, session: Session) -> None:
        """Queue a joined session; it enters the game at the next tick."""
        if self.closed:
            raise InternalError(f"room {self.name!r} has closed")
        self.roster.admit(session, self.links.reserved(self.name))  # seats held for redirected joins

    def take_seat(self, resume_token: str, player: str | None) -> Seat | None:
        """The seat ``resume_token`` names, taken out of the room (``Roster.take_seat``)."""
        return self.roster.take_seat(resume_token, player)

    # -- life of the room ------------------------------------------------------------------

    def stop(self) -> None:
        """Stop ticking now (empty, or moving to another node); sessions stay until ``close_sessions``."""
        self.closed = True
        self.keeper.take()  # before the next room of this name can load it
        self.links.room_closed(self)
        if self._scope is not None:
            self._scope.cancel()

    def close_sessions(self, err: GamesyncError) -> None:
        """Close every session with ``err`` (server shutdown, the room moved)."""
        self.roster.close_all(err)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Tick until the room has been empty for ``room_linger_s``."""
        task_status.started()
        try:
            with trio.CancelScope() as self._scope:
                await run_ticks(self.tick_rate, self._tick, self.tick_stats, self._first_tick)
        except Exception:
            # a bug in the game's step (or ours) ends this room only: its clients are closed
            # with 1011 and every other room carries on
            logger.exception("room %s: tick %d failed; closing the room", self.name, self.tick)
            self.links.room_closed(self)
            self.close_sessions(InternalError("the room's game failed"))
        finally:
            self.closed = True
            self.keeper.take()  # a server shutting down: written as it closes
            for s in self.roster.joining:  # admitted while the room was failing: let them go
                s.close(InternalError(f"room {self.name!r} has closed"))
                s.done.set()
            self.roster.joining.clear()
            self.roster.inbox.close()
            logger.info("room %s: closed after %d ticks", self.name, self.tick_stats.ticks)

    # -- the tick ----------------------------------------------------------------------------

    def _tick(self, tick: int, now: float) -> None:
        clock = time.perf_counter
        t0 = clock()
        self.tick = tick
        if self.sessions:
            self.roster.read(now)
        t1 = clock()
        self._step(tick)
        t2 = clock()
        state = State.capture(self.world, tick, self.history.get(tick - 1), self.views.blank_rows if self.views else (),
                              packing.quantise_rows)
        self.history.push(state)
        if self.views is not None:
            self.views.push(state)
        if self._reliable:
            self._reliable.expire(now)
        if self.roster.seats:
            self.roster.free_seats(now)
        self._drop_closing()
        plan = self._encode(state)
        t3 = clock()
        self._send(plan, now)
        if tick % HEARTBEAT_EVERY_TICKS == 0:
            self.roster.heartbeat(now)
        if self.save_every and tick % self.save_every == 0:
            self._save()
        self.keeper.tick(tick)
        self._drop_closing()
        self._linger(now)
        t4 = clock()
        ph = self.phase_s
        ph["read"] += t1 - t0
        ph["step"] += t2 - t1
        ph["encode"] += t3 - t2
        ph["send"] += t4 - t3

    def _step(self, tick: int) -> None:
        """Admit the joins, drop the leavers, step the game with this tick's inputs."""
        self.roster.enter_joining()
        self._drop_closing()
        self.game.step(tick, take_inputs(self.game, self.sessions, self.stats), 1.0 / self.tick_rate)

    def _encode(self, state: State) -> list[tuple[Session, Outgoing]]:
        """Every live session's snapshot of ``state``, each distinct payload built once."""
        if self.views is not None:
            return self.views.encode([s for s in self.sessions.values() if not s.proto.closing], self.stats)
        return encode_payloads(self.game.schema, state, self.history, self.sessions.values(),
                               self.config.max_payloads_per_tick, self.plan_counts, self.stats)

    def _send(self, plan: list[tuple[Session, Outgoing]], now: float) -> None:
        send_frames(plan, now, self.stats)

    def snapshot_stats(self) -> dict[str, Any]:
        """Counters for monitoring and benchmarks (totals since the room opened)."""
        return room_stats(self)

    def _save(self) -> None:
        t0 = time.perf_counter()
        try:
            saved = self.save()
        except Exception:
            logger.exception("room %s: the game failed to save its state", self.name)
            return
        finally:
            self.links.add_busy(time.perf_counter() - t0)
        if saved is None:
            self.save_every = 0  # the game does not opt in
        else:
            self.links.offer_save(self.name, saved)

    def _drop_closing(self) -> None:
        """Drop the sessions that started closing (their seats kept, unless the room closed)."""
        if self.roster.to_drop:
            self.roster.drop_closing(not self.closed, trio.current_time())

    def _linger(self, now: float) -> None:
        if not self.roster.empty:
            self._empty_since = None
        elif self._empty_since is None:
            self._empty_since = now
        elif now - self._empty_since > self.config.room_linger_s:
            self.stop()  # from now on joins create a new room


def take_inputs(game: Game, sessions: dict[int, Session], stats: RoomStats) -> Any:
    """This tick's inputs for ``game.step``, counted into ``stats``' histograms: an
    ``InputBatch`` for a game with an ``input_spec`` (``native.take_batch``), else client id ->
    its ``InputFrame`` list (clients with none left out)."""
    arrived, applied = stats.inputs_arrived, stats.inputs_applied
    if game.input_spec is not None:
        return native.take_batch(sessions, game.input_spec, arrived, applied)
    return dict(take_all(((cid, s.proto.inputs) for cid, s in sessions.items()), arrived, applied))
