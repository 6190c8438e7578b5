"""A room: one world, one game instance, one tick task, and the sessions joined to it.

Each tick, in order: read every readable socket once (inputs wait for the tick anyway, so
reading them in bulk costs no latency), admit joins and drop leavers, step the game once
with the tick's batch of inputs, quantise the world into the history, then build one
payload per distinct (baseline, reference) pair, compress it once, and hand every client
one frame holding its snapshot and its events.
"""

from __future__ import annotations

import dataclasses
import logging
import selectors
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import trio

from ..core import protocol as p
from ..core.delta import compress_payload, encode_delta
from ..core.errors import (
    GamesyncError,
    InternalError,
    ProtocolViolation,
    RoomFull,
    Timeout,
    Unauthorized,
)
from ..core.plan import PlanCounts, plan_payloads
from ..core.saved import SavedRoom, SavedSeat, restore_world, save_world
from ..core.state import History, State
from ..core.world import World
from ..game import Game
from .session import Outgoing, Session
from .tick import TickStats, run_ticks
from .wsconn import PeerClosed

if TYPE_CHECKING:
    from .app import Server

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_TICKS = 10


class ReliableSend:
    """A message a client must acknowledge: ``result`` is True (acked), False (timed out or the
    client left) or None (pending)."""

    def __init__(self, ack_id: int, client_id: int, deadline: float,
                 on_result: Callable[[bool], None] | None) -> None:
        self.ack_id = ack_id
        self.client_id = client_id
        self.deadline = deadline
        self.result: bool | None = None
        self._on_result = on_result
        self._done = trio.Event()

    def resolve(self, ok: bool) -> None:
        if self.result is None:
            self.result = ok
            self._done.set()
            if self._on_result is not None:
                self._on_result(ok)

    async def wait(self) -> bool:
        await self._done.wait()
        return bool(self.result)


@dataclass
class RoomStats:
    """Counters of the room; per-client ones (bytes, frames, skips) of clients that left."""

    bytes_out: int = 0
    frames_out: int = 0
    skipped: int = 0
    inputs_in: int = 0
    messages_in: int = 0
    payloads_built: int = 0
    payload_bytes: int = 0
    joins: int = 0
    leaves: int = 0


class Room:
    """Implements gamesync.game.RoomAPI for its game."""

    def __init__(self, server: "Server", name: str, game_name: str, game: Game,
                 saved: SavedRoom | None = None) -> None:
        self.server = server
        self.config = server.config
        self.name = name
        self.game_name = game_name
        self.game = game
        self.world = World(game.schema)
        self.history = History(self.config.history_ticks)
        self.tick = 0
        self.tick_rate = self.config.tick_rate
        self.sessions: dict[int, Session] = {}
        self._joining: list[Session] = []
        self._doomed: list[Session] = []  # sessions that failed since the last reap
        #: seats of dropped players, by resume token: (their last session, when the seat is freed)
        self._seats: dict[str, tuple[Session, float]] = {}
        self._selector = selectors.DefaultSelector()
        self._reliable: dict[int, ReliableSend] = {}
        self._next_ack_id = 1
        self.tick_stats = TickStats()
        self.stats = RoomStats()
        self.plan_counts = PlanCounts()  # who got which payload past the per-tick cap
        #: seconds spent in each phase of the tick, summed over ticks
        self.phase_s = {"read": 0.0, "step": 0.0, "encode": 0.0, "send": 0.0}
        self.closed = False
        self._empty_since: float | None = None
        self._first_tick = 0
        #: ticks between state saves (cluster mode, games that opt in); 0: none
        self.save_every = 0
        game.setup(self)
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
            self._seats[seat.resume_token] = (_Seat(seat), deadline)  # type: ignore[assignment]
        logger.info("room %s: restored at tick %d with %d seats kept for resumes", self.name, saved.tick,
                    len(saved.seats))

    def save(self) -> SavedRoom | None:
        """The room's state for a save, or None if its game does not opt in."""
        state = self.game.save_state()
        if state is None:
            return None
        seats = [SavedSeat(s.resume_token, s.id, s.name, s.player, s.last_applied)
                 for s in self._seated() if s.resume_token]
        return SavedRoom(self.game_name, self.tick, save_world(self.world), state, seats)

    def _seated(self) -> list[Any]:
        """Everyone with a seat: the sessions, then the seats kept for a resume."""
        return list(self.sessions.values()) + [held for held, _ in self._seats.values()]

    @property
    def players(self) -> list[tuple[int, str, str | None]]:
        """(client id, name, player id) of everyone in the room (kept seats included)."""
        return [(s.id, s.name, s.player) for s in self._seated()]

    def deliver(self, data: Any, player: str | None = None) -> int:
        """An event from outside the room (another node, ``gamesync publish``): to everyone, or
        to the clients of ``player`` (token player id, or name when anonymous). Returns how many."""
        n = 0
        for s in self.sessions.values():
            if player is None or (s.player if s.player is not None else s.name) == player:
                s.queue_event([p.Ev.EVENT, data])
                n += 1
        return n

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

    def broadcast_all_rooms(self, data: Any) -> None:
        for room in list(self.server.rooms.values()):
            room.broadcast(data)
        if self.server.cluster is not None:
            self.server.cluster.publish_nowait(None, data, others_only=True)

    def publish(self, room: str, data: Any) -> None:
        local = self.server.rooms.get(room)
        if local is not None and not local.closed:
            local.broadcast(data)
        elif self.server.cluster is not None:
            self.server.cluster.publish_nowait(room, data)

    def send_to_player(self, player: str, data: Any) -> None:
        if self.server.cluster is not None:
            self.server.cluster.publish_nowait(None, data, player=player)
        else:
            for room in list(self.server.rooms.values()):
                room.deliver(data, player)

    def send_reliable(self, client_id: int, data: Any, timeout: float = 5.0,
                      on_result: Callable[[bool], None] | None = None) -> ReliableSend:
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        h = ReliableSend(ack_id, client_id, trio.current_time() + timeout, on_result)
        s = self.sessions.get(client_id)
        if s is None or s.closing:
            h.resolve(False)
            return h
        self._reliable[ack_id] = h
        s.queue_event([p.Ev.RELIABLE, data, ack_id])
        return h

    # -- membership (called from connection tasks) -----------------------------------------

    def admit(self, session: Session) -> None:
        """Queue a joined session; it enters the game at the next tick."""
        if self.closed:
            raise InternalError(f"room {self.name!r} has closed")
        cluster = self.server.cluster
        held = cluster.reserved(self.name) if cluster is not None else 0  # seats of redirected joins
        if len(self.sessions) + len(self._joining) + len(self._seats) + held >= self.game.max_players:
            raise RoomFull(f"room {self.name!r} is full ({self.game.max_players} players)")
        self._joining.append(session)

    def take_seat(self, resume_token: str, player: str | None) -> Session | None:
        """The session whose seat ``resume_token`` names, taken out of the room: a kept seat, or
        a session still open here (a client that reconnects faster than the room notices its
        old connection died, or a half-open one), which is retired on the spot. None when
        there is no such seat (never was, or already freed). With join tokens, the seat is
        only handed to the player it belongs to."""
        held = self._seats.get(resume_token)
        old = held[0] if held is not None else next(
            (s for s in (*self.sessions.values(), *self._joining)
             if s.resume_token == resume_token and not s.closing), None)
        if old is None:
            return None
        if old.player != player:
            raise Unauthorized("that seat belongs to another player")
        if held is not None:
            del self._seats[resume_token]
        elif old in self._joining:  # welcomed, not yet at a tick: the game has not seen it
            self._joining.remove(old)
            old.fail(None, "replaced by a resumed connection")
            old.done.set()
        else:
            self._detach(old)
            old.doomed = None  # taken out here: not for _reap, which would see the new session's id
            old.fail(None, "replaced by a resumed connection")
            old.done.set()
        return old

    def _enter(self, s: Session, now: float) -> None:
        if s.closing:
            s.done.set()
            return
        self.sessions[s.id] = s
        s.entered = True
        s.doomed = self._doomed
        self._selector.register(s.sock, selectors.EVENT_READ, s)
        if not s.resumed:  # back in the same seat, the game and the others never saw it leave
            self.stats.joins += 1
            try:
                self.game.on_join(s.id, s.name)
            except Exception:
                logger.exception("room %s: game failed in on_join for client %d", self.name, s.id)
                s.fail(InternalError("the game failed to admit you"))
                return
        joined = [p.Ev.JOINED, s.id, s.name]
        for other in self.sessions.values():
            if other is not s:
                if not s.resumed:
                    other.queue_event(joined)
                s.events.append([p.Ev.JOINED, other.id, other.name])  # the roster: not a backlog
        logger.info("room %s: client %d (%s) %s; %d players", self.name, s.id, s.name,
                    "resumed its seat" if s.resumed else "joined", len(self.sessions))
        self._handle(s, s.conn.buffered())  # messages that arrived right behind the join

    def _detach(self, s: Session) -> None:
        """Take ``s`` out of the room's sessions and selector, keeping its counters."""
        del self.sessions[s.id]
        try:
            self._selector.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        self.stats.bytes_out += s.bytes_out
        self.stats.frames_out += s.frames_out
        self.stats.skipped += s.skipped

    def _leave(self, s: Session) -> None:
        if self.sessions.get(s.id) is not s:  # already gone, or its seat went on to a resumed session
            return
        self._detach(s)
        grace = self.config.seat_grace_s
        if s.keep_seat and grace > 0 and not self.closed:
            self._seats[s.resume_token] = (s, trio.current_time() + grace)
            s.done.set()
            logger.info("room %s: client %d (%s) dropped; seat kept for %g s", self.name, s.id, s.name, grace)
            return
        self._gone(s)

    def _free_seats(self, now: float) -> None:
        """Let go of the seats whose grace time is over: now the player has left."""
        for token, (s, deadline) in list(self._seats.items()):
            if now >= deadline:
                del self._seats[token]
                logger.info("room %s: seat of client %d (%s) freed after %g s", self.name, s.id, s.name,
                            self.config.seat_grace_s)
                self._gone(s)

    def _gone(self, s: Session) -> None:
        """The player has left for good: the game, the others and pending deliveries learn it."""
        self.stats.leaves += 1
        try:
            self.game.on_leave(s.id)
        except Exception:
            logger.exception("room %s: game failed in on_leave for client %d", self.name, s.id)
        for h in [h for h in self._reliable.values() if h.client_id == s.id]:
            del self._reliable[h.ack_id]
            h.resolve(False)
        left = [p.Ev.LEFT, s.id]
        for other in self.sessions.values():
            other.queue_event(left)
        s.done.set()
        logger.info("room %s: client %d (%s) left; %d players", self.name, s.id, s.name, len(self.sessions))

    def _reap(self) -> None:
        """Drop the sessions that failed since the last call (each one adds itself when it fails)."""
        if self._doomed:
            doomed = self._doomed[:]
            self._doomed.clear()
            for s in doomed:
                self._leave(s)

    def stop(self) -> None:
        """Stop ticking now (the room is empty, or moves to another node); its sessions, if
        any, stay until ``shut``."""
        self.closed = True
        self.server.forget_room(self)
        scope = getattr(self, "_scope", None)
        if scope is not None:
            scope.cancel()

    def shut(self, err: GamesyncError) -> None:
        """Close every session with ``err`` (server shutdown)."""
        for s in list(self.sessions.values()) + self._joining:
            s.fail(err)
            s.done.set()

    # -- the tick ----------------------------------------------------------------------------

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
            self.server.forget_room(self)
            self.shut(InternalError("the room's game failed"))
        finally:
            self.closed = True
            for s in self._joining:  # admitted while the room was failing: let them go
                s.fail(InternalError(f"room {self.name!r} has closed"))
                s.done.set()
            self._joining.clear()
            self._selector.close()
            logger.info("room %s: closed after %d ticks", self.name, self.tick_stats.ticks)

    def _tick(self, tick: int, now: float) -> None:
        clock = time.perf_counter
        t0 = clock()
        self.tick = tick
        self._read(now)
        t1 = clock()
        if self._joining:
            joining, self._joining = self._joining, []
            for s in joining:
                self._enter(s, now)
        self._reap()
        batch: dict[int, list[p.InputFrame]] = {}
        for cid, s in self.sessions.items():
            frames = s.take_inputs()
            if frames:
                batch[cid] = frames
        self.game.step(tick, batch, 1.0 / self.tick_rate)
        t2 = clock()
        state = State.capture(self.world, tick, self.history.get(tick - 1))
        self.history.push(state)
        if self._reliable:
            self._expire_reliable(now)
        if self._seats:
            self._free_seats(now)
        self._reap()
        plan = self._encode(state)
        t3 = clock()
        self._send(plan, now)
        if tick % HEARTBEAT_EVERY_TICKS == 0:
            self._heartbeat(now)
        if self.save_every and tick % self.save_every == 0 and self.server.cluster is not None:
            self._save()
        self._reap()
        self._linger(now)
        t4 = clock()
        ph = self.phase_s
        ph["read"] += t1 - t0
        ph["step"] += t2 - t1
        ph["encode"] += t3 - t2
        ph["send"] += t4 - t3

    def _read(self, now: float) -> None:
        if not self.sessions:
            return
        for key, _ in self._selector.select(0):
            s: Session = key.data
            if s.closing:
                continue
            try:
                msgs = s.conn.recv_messages(now)
            except GamesyncError as e:
                s.fail(e)
                continue
            except PeerClosed as e:  # a close frame means it left; a vanished peer may come back
                s.fail(None, f"disconnected ({e})", keep_seat=not e.clean)
                continue
            s.last_recv = now
            s.pinged = False
            pong = s.conn.take_pong()
            if pong is not None:
                s.write(pong)  # queued behind a partly written frame, never inside it
            self._handle(s, msgs)

    def _handle(self, s: Session, msgs: list[bytes]) -> None:
        try:
            for m in msgs:
                ev = p.parse_client(m)
                if type(ev) is p.InputFrame:  # the common case, inline
                    self.stats.inputs_in += 1
                    if ev.ack is not None:
                        s.acks.on_ack(ev.ack, ev.ack_bits)
                    s.add_input(p.InputFrame(ev.seq, self.game.validate_input(ev.data)))
                else:
                    self._dispatch(s, ev)
                if s.closing:  # it left (or failed): nothing after that reaches the game
                    break
        except GamesyncError as e:
            s.fail(e)
        except Exception:  # the game's validate_input / on_message failed on this client's data
            logger.exception("room %s: game failed on a message from client %d", self.name, s.id)
            s.fail(InternalError("the game failed on your message"))

    def _dispatch(self, s: Session, ev: p.ClientEvent) -> None:
        """Every client message but an input (which _handle applies itself)."""
        if isinstance(ev, p.SnapshotAck):
            s.acks.on_ack(ev.tick, ev.bits)
        elif isinstance(ev, p.Ping):
            s.queue_event([p.Ev.PONG, ev.time])
        elif isinstance(ev, p.ClientMessage):
            self.stats.messages_in += 1
            self.game.on_message(s.id, ev.data)
            if ev.ack_id is not None:
                s.queue_event([p.Ev.MESSAGE_ACK, ev.ack_id])
        elif isinstance(ev, p.MessageAck):
            h = self._reliable.get(ev.ack_id)
            if h is not None and h.client_id == s.id:  # only its addressee can acknowledge it
                del self._reliable[ev.ack_id]
                h.resolve(True)
        elif isinstance(ev, p.Leave):
            s.fail(None, "left")
        else:
            raise ProtocolViolation("join after join")

    def _encode(self, state: State) -> list[tuple[Session, Outgoing]]:
        """Pick every client's baseline and build each distinct payload once."""
        hist = self.history
        live = [s for s in self.sessions.values() if not s.closing]
        keys = plan_payloads(state.tick, [s.acks for s in live], hist, self.config.max_payloads_per_tick,
                             self.plan_counts)
        payloads: dict[tuple[int, int], Outgoing] = {}
        plan = []
        for s, key in zip(live, keys):
            if key is None:
                continue  # waiting for its turn past the payload cap; its events wait too
            out = payloads.get(key)
            if out is None:
                base, ref = key
                raw = encode_delta(self.game.schema, state, hist.get(base) if base != p.NO_TICK else None,
                                   hist.get(ref) if ref != p.NO_TICK else None)
                flags, data = compress_payload(raw)
                head, mid = p.snapshot_parts(state.tick, base, ref, flags, data)
                out = payloads[key] = Outgoing(state.tick, base, ref, flags, data, head, mid)
                self.stats.payloads_built += 1
                self.stats.payload_bytes += len(data)
            plan.append((s, out))
        return plan

    def _send(self, plan: list[tuple[Session, Outgoing]], now: float) -> None:
        for s, out in plan:
            s.offer(out, now)

    def snapshot_stats(self) -> dict[str, Any]:
        """Counters for monitoring and benchmarks (totals since the room opened)."""
        st, ts = self.stats, self.tick_stats
        live = list(self.sessions.values())
        recent = sorted(ts.recent)
        return {
            "room": self.name,
            "game": self.game_name,
            "tick": self.tick,
            "clients": len(live),
            "entities": self.world.count,
            "ticks": ts.ticks,
            "overruns": ts.overruns,
            "skipped_ticks": ts.skipped,
            "tick_ms_mean": ts.mean_s * 1e3,
            "tick_ms_p99": recent[int(0.99 * (len(recent) - 1))] * 1e3 if recent else 0.0,
            "tick_ms_max": ts.max_s * 1e3,
            "bytes_out": st.bytes_out + sum(s.bytes_out for s in live),
            "frames_out": st.frames_out + sum(s.frames_out for s in live),
            "snapshots_skipped": st.skipped + sum(s.skipped for s in live),
            **{f"{k}_ms_mean": v * 1e3 / max(1, ts.ticks) for k, v in self.phase_s.items()},
            "inputs_in": st.inputs_in,
            "messages_in": st.messages_in,
            "payloads_built": st.payloads_built,
            "payload_bytes": st.payload_bytes,
            **dataclasses.asdict(self.plan_counts),
            "joins": st.joins,
            "leaves": st.leaves,
        }

    def _save(self) -> None:
        t0 = time.perf_counter()
        try:
            saved = self.save()
        except Exception:
            logger.exception("room %s: the game failed to save its state", self.name)
            return
        finally:
            if self.server.cluster is not None:
                self.server.cluster.busy_s += time.perf_counter() - t0
        if saved is None:
            self.save_every = 0  # the game does not opt in
        elif self.server.cluster is not None:
            self.server.cluster.offer_save(self.name, saved)

    def _expire_reliable(self, now: float) -> None:
        for h in [h for h in self._reliable.values() if h.deadline <= now]:
            del self._reliable[h.ack_id]
            h.resolve(False)

    def _heartbeat(self, now: float) -> None:
        cfg = self.config
        for s in self.sessions.values():
            idle = now - s.last_recv
            if idle > cfg.idle_timeout_s:
                s.fail(Timeout(f"no traffic for {cfg.idle_timeout_s:g} s"), keep_seat=True)
            elif idle > cfg.heartbeat_s and not s.pinged and s.outbuf is None:
                s.pinged = True
                s.write(s.conn.ping_frame())

    def _linger(self, now: float) -> None:
        if self.sessions or self._joining or self._seats:
            self._empty_since = None
        elif self._empty_since is None:
            self._empty_since = now
        elif now - self._empty_since > self.config.room_linger_s:
            self.stop()  # from now on joins create a new room


class _Seat:
    """A seat restored from a save: what a resume and a freed seat need of its old session."""

    def __init__(self, seat: SavedSeat) -> None:
        self.id = seat.client_id
        self.name = seat.name
        self.player = seat.player
        self.last_applied = seat.last_applied
        self.resume_token = seat.resume_token
        self.known_to_game = True
        self.events: list[Any] = []
        self.done = trio.Event()
