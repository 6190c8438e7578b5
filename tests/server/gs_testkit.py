"""Helpers shared by the server and client integration tests.

Servers listen on 127.0.0.1 port 0 with small limits and timeouts; raw clients speak the
wire protocol by hand (msgpack arrays), either over trio-websocket (``RawClient``) or over
a bare socket driven by wsproto (``WireClient``) where the test needs byte-level control:
several frames in one write, a half-done handshake, a client that never reads or never
answers pings.
"""

from __future__ import annotations

import os
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import msgpack
import trio
from trio_websocket import ConnectionClosed, open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping, Pong, RejectConnection,
                            Request, TextMessage)

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.core.schema import Float, Int, Schema
from gamesync.game import Game
from gamesync.games import builtin_games
from gamesync.server.app import Server
from gamesync.server.config import ServerConfig
from gamesync.server.tick import TickStats

HOST = "127.0.0.1"
#: limits and timeouts small enough to keep every test short
FAST: dict[str, Any] = dict(
    host=HOST,
    port=0,
    handshake_timeout_s=1.0,
    join_timeout_s=1.0,
    heartbeat_s=1.0,
    idle_timeout_s=5.0,
    close_timeout_s=0.5,
    shutdown_timeout_s=1.0,
    room_linger_s=1.0,
    stats_interval_s=3600.0,
    game_options={"npcs": 50},
)
RAW_QUEUE = 256  # trio-websocket message queue of raw test clients


def pk(msg: Any) -> bytes:
    """A hand-built wire message (msgpack array)."""
    return msgpack.packb(msg, use_bin_type=True)


def make_config(**overrides: Any) -> ServerConfig:
    """FAST settings, the built-in games (the server knows none of its own), ``overrides``."""
    kw = dict(FAST, games=builtin_games())
    kw.update(overrides)
    return ServerConfig(**kw)


@asynccontextmanager
async def running_server(**overrides: Any) -> AsyncIterator[tuple[Server, str]]:
    """A Server on 127.0.0.1 port 0; yields (server, url); cancelled on exit."""
    server = Server(make_config(**overrides))
    async with trio.open_nursery() as n:
        port = await n.start(server.serve)
        try:
            yield server, f"ws://{HOST}:{port}/"
        finally:
            n.cancel_scope.cancel()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].strip("/"))


def rss_mib() -> float:
    """Resident memory of this process (server and clients alike), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


async def wait_for(cond: Any, timeout: float = 3.0, what: Any = "condition") -> None:
    """Poll ``cond()`` every 10 ms until true; fail after ``timeout`` seconds (``what`` may be
    a function, called then, to describe the state it failed in)."""
    with trio.move_on_after(timeout):
        while not cond():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


async def next_game_event(c: Any, key: str, timeout: float) -> Any:
    """The value at ``key`` of the next game event on client ``c`` (a ``Client``) whose data is
    a map holding ``key``; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        async for ev in c.events():
            if isinstance(ev, cp.GameEvent) and isinstance(ev.data, dict) and key in ev.data:
                return ev.data[key]
    raise AssertionError(f"no {key} event")


async def next_reliable(c: Any, timeout: float) -> cp.ReliableMessage:
    """The next reliable message on client ``c``; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        async for ev in c.events():
            if isinstance(ev, cp.ReliableMessage):
                return ev
    raise AssertionError("no reliable message")


# ---- raw clients -------------------------------------------------------------------------


@dataclass
class Closed:
    """How a connection ended, seen from the client."""

    code: int | None  # close code; None: no close frame (EOF or reset)
    reason: str
    error: p.ServerError | None  # the [10, code, reason] message before the close, if any


class RawClient:
    """The wire protocol by hand over trio-websocket: send arrays, get parsed server messages."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.welcome: p.Welcome | None = None
        self.snapshots: list[p.Snapshot] = []
        self.errors: list[p.ServerError] = []

    async def send(self, msg: Any) -> None:
        await self.ws.send_message(msg if isinstance(msg, (bytes, str)) else pk(msg))

    async def recv(self) -> p.ServerEvent:
        ev = p.parse_server(await self.ws.get_message())
        if isinstance(ev, p.Snapshot):
            self.snapshots.append(ev)
        elif isinstance(ev, p.ServerError):
            self.errors.append(ev)
        return ev

    async def join(self, room: str = "r", name: str = "raw", game: str | None = None,
                   version: int = p.PROTOCOL_VERSION) -> p.Welcome:
        await self.send([1, version, room, name] + ([game] if game else []))
        ev = await self.recv()
        assert isinstance(ev, p.Welcome), f"expected welcome, got {ev}"
        self.welcome = ev
        return ev

    async def follow(self, seconds: float, ack: bool = True) -> list[tuple[float, p.Snapshot]]:
        """Snapshots received over ``seconds`` with their arrival times, acking each if ``ack``."""
        out = []
        with trio.move_on_after(seconds):
            while True:
                s = await self.snapshot()
                out.append((trio.current_time(), s))
                if ack:
                    await self.send([5, s.tick])
        return out

    async def snapshot(self) -> p.Snapshot:
        """The next snapshot (other messages are kept in ``errors``)."""
        while True:
            ev = await self.recv()
            if isinstance(ev, p.Snapshot):
                return ev

    async def closed(self, timeout: float = 3.0) -> Closed:
        """Read until the server closes; fail if it has not within ``timeout``."""
        n_errors = len(self.errors)
        with trio.fail_after(timeout):
            while True:
                try:
                    ev = await self.recv()
                    first_error = len(self.errors) == n_errors + 1 and ev is self.errors[-1]
                    assert len(self.errors) == n_errors or first_error, (
                        f"{ev} came after the error message {self.errors[n_errors]}")
                except ConnectionClosed as e:
                    r = e.reason
                    return Closed(r.code if r else None, (r.reason or "") if r else "",
                                  self.errors[-1] if self.errors else None)


@asynccontextmanager
async def raw_client(url: str, **kw: Any) -> AsyncIterator[RawClient]:
    kw.setdefault("message_queue_size", RAW_QUEUE)
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("disconnect_timeout", 2)
    async with open_websocket_url(url, **kw) as ws:
        yield RawClient(ws)


class WireClient:
    """A WebSocket client over a bare socket and wsproto, with byte-level control.

    ``send(*msgs)`` writes all frames in one ``send_all`` (so they arrive together), pings
    are answered only if ``auto_pong``, and nothing is read unless the test asks.
    """

    def __init__(self, stream: trio.SocketStream, auto_pong: bool = True) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.auto_pong = auto_pong
        self.pings = 0
        self.pongs = 0
        self._pending: list[bytes | str] = []
        self._parts: list[Any] = []
        self._out: list[bytes] = []
        self.close_event: CloseConnection | None = None
        self.eof = False

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None, handshake: bool = True,
                   auto_pong: bool = True) -> "WireClient":
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect((HOST, port))
        c = cls(trio.SocketStream(sock), auto_pong)
        if handshake:
            await c.handshake(port)
        return c

    def upgrade_request(self, port: int) -> bytes:
        """The HTTP upgrade request (to send by hand, e.g. together with the first frames)."""
        return self.ws.send(Request(host=f"{HOST}:{port}", target="/"))

    async def handshake(self, port: int) -> None:
        await self.stream.send_all(self.upgrade_request(port))
        await self.handshake_reply()

    async def handshake_reply(self) -> None:
        """Read the server's answer to an upgrade request already sent (ConnectionError unless
        it is 101 Switching Protocols)."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                raise ConnectionError("EOF during handshake")
            self.ws.receive_data(data)
            for ev in self.ws.events():
                if isinstance(ev, AcceptConnection):
                    return
                if isinstance(ev, RejectConnection):
                    raise ConnectionError("handshake rejected")
                self._on_event(ev)

    def frame(self, msg: Any) -> bytes:
        if isinstance(msg, str):
            return self.ws.send(Message(data=msg))
        return self.ws.send(Message(data=msg if isinstance(msg, bytes) else pk(msg)))

    async def send(self, *msgs: Any) -> None:
        await self.stream.send_all(b"".join(self.frame(m) for m in msgs))

    async def ping(self, payload: bytes = b"hi") -> None:
        await self.stream.send_all(self.ws.send(Ping(payload)))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send_all(data)

    def _on_event(self, ev: Any) -> None:
        if isinstance(ev, (BytesMessage, TextMessage)):
            self._parts.append(ev.data)
            if ev.message_finished:
                data = b"".join(self._parts) if isinstance(ev, BytesMessage) else "".join(self._parts)
                self._parts = []
                self._pending.append(data)
        elif isinstance(ev, Ping):
            self.pings += 1
            if self.auto_pong:
                self._out.append(self.ws.send(ev.response()))
        elif isinstance(ev, Pong):
            self.pongs += 1
        elif isinstance(ev, CloseConnection):
            self.close_event = ev

    async def _fill(self) -> None:
        self._out: list[bytes] = []
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, OSError):
            data = b""
        if not data:
            self.eof = True
            return
        self.ws.receive_data(data)
        for ev in self.ws.events():
            self._on_event(ev)
        if self._out:
            try:
                await self.stream.send_all(b"".join(self._out))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def recv_raw(self) -> bytes | str | None:
        """The next message, or None once the server closed (see ``close_event``/``eof``)."""
        while not self._pending:
            if self.close_event is not None or self.eof:
                return None
            await self._fill()
        return self._pending.pop(0)

    async def recv(self) -> p.ServerEvent | None:
        data = await self.recv_raw()
        if data is None:
            return None
        assert isinstance(data, bytes), "server sent a text frame"
        return p.parse_server(data)

    async def join(self, room: str = "r", name: str = "wire") -> p.Welcome:
        await self.send([1, p.PROTOCOL_VERSION, room, name])
        ev = await self.recv()
        assert isinstance(ev, p.Welcome), f"expected welcome, got {ev}"
        return ev

    async def closed(self, timeout: float = 3.0) -> Closed:
        """Read until the connection ends; the close frame's code, or None on bare EOF/reset."""
        errors: list[p.ServerError] = []
        with trio.fail_after(timeout):
            while True:
                data = await self.recv_raw()
                if data is None:
                    break
                if isinstance(data, bytes):
                    ev = p.parse_server(data)
                    assert not errors, f"{ev} came after the error message {errors[0]}"
                    if isinstance(ev, p.ServerError):
                        errors.append(ev)
        ce = self.close_event
        return Closed(ce.code if ce else None, ce.reason if ce else "", errors[-1] if errors else None)

    async def aclose(self) -> None:
        await self.stream.aclose()


# ---- a well-behaved client that measures ------------------------------------------------


@dataclass
class Watcher:
    """A client that does everything right (joins, acks every snapshot) and records when
    each snapshot arrived, to show that what other clients do never delays it."""

    url: str
    room: str = "r"
    name: str = "watcher"
    times: list[float] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    client_id: int | None = None
    closed: Any = None

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with open_websocket_url(self.url, message_queue_size=RAW_QUEUE) as ws:
            proto = cp.ClientProtocol(self.room, self.name)
            await ws.send_message(proto.join())
            started = False
            try:
                while True:
                    data = await ws.get_message()
                    now = trio.current_time()
                    for ev in proto.receive(data, now):
                        if isinstance(ev, cp.Welcomed):
                            self.client_id = ev.welcome.client_id
                        elif isinstance(ev, cp.StateUpdated):
                            self.times.append(now)
                            self.ticks.append(ev.state.tick)
                            if not started:
                                started = True
                                task_status.started(self)
                    while proto.outbox:
                        await ws.send_message(proto.outbox.pop(0))
            except ConnectionClosed as e:
                self.closed = e.reason
                raise

    def mark(self) -> float:
        return trio.current_time()

    def max_gap(self, since: float, until: float | None = None) -> float:
        """Longest time without a snapshot between ``since`` and ``until`` (now)."""
        until = trio.current_time() if until is None else until
        pts = [since] + [t for t in self.times if since < t < until] + [until]
        return max(b - a for a, b in zip(pts, pts[1:]))

    def count(self, since: float, until: float | None = None) -> int:
        until = trio.current_time() if until is None else until
        return sum(since <= t <= until for t in self.times)


@asynccontextmanager
async def watched(url: str, room: str = "r") -> AsyncIterator[Watcher]:
    """A Watcher joined to ``room`` for the duration of the block."""
    async with trio.open_nursery() as n:
        w = await n.start(Watcher(url, room).run)
        try:
            yield w
        finally:
            n.cancel_scope.cancel()


# ---- small test games ---------------------------------------------------------------------


class RecordingGame(Game):
    """One entity per player, no rules; records every step() batch and every message."""

    schema = Schema([Float("x", 0.0, 100.0, 0.5), Int("owner", "u4")])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.steps: list[tuple[int, dict[int, list[int]]]] = []
        self.messages: list[tuple[int, Any]] = []
        self.joined: list[int] = []
        self.left: list[int] = []

    def on_join(self, client_id: int, name: str) -> None:
        self.joined.append(client_id)
        self.world.spawn(1, owner=client_id)

    def on_leave(self, client_id: int) -> None:
        self.left.append(client_id)
        slots = [i for i in range(self.world.n) if self.world.alive[i] and self.world["owner"][i] == client_id]
        self.world.despawn(slots)

    def step(self, tick: int, inputs: dict[int, list[Any]], dt: float) -> None:
        if inputs:
            self.steps.append((tick, {cid: [f.seq for f in frames] for cid, frames in inputs.items()}))

    def on_message(self, client_id: int, data: Any) -> None:
        self.messages.append((client_id, data))

    def applied(self, client_id: int) -> list[int]:
        """Every seq given to step() for ``client_id``, in order."""
        return [s for _, b in self.steps for s in b.get(client_id, [])]


def period(server: Server) -> float:
    return 1.0 / server.config.tick_rate



# A stall the bystander must catch is the tick loop waiting on a misbehaving client: that
# lasts as long as some timeout of that client's (0.5 s at the least in these tests) or
# until it goes away. Scheduling noise on a shared 2-core CI machine has reached 150 ms
# between two snapshots with nothing wrong, so the bound on the gap a client sees sits
# between the two.
STALL_S = 0.4
#: the longest any one tick's own work (read, step, encode, send: a few ms here, 6 ms with
#: 5000 NPCs) may take. The scheduler times the tick body alone, so machine noise only
#: shows in it when the process is descheduled inside that body, not anywhere in the
#: period: much less exposed than the gap a client sees, and a tick that blocks 300 ms on a
#: client (whose gap, 333 ms, passes STALL_S) fails it.
TICK_WORK_S = 0.2
#: over an episode of T seconds, the room may lose STALL_S + LOST_SHARE * T to skipped tick
#: deadlines (one stall as long as STALL_S, and noise). A room held to half its rate fails
#: that once T passes 1.6 s, though its snapshots still come in order, 67 ms apart.
LOST_SHARE = 0.25


@dataclass
class TickWatch:
    """What a room's own tick stats (``Room.tick_stats``) counted over an episode; sampled
    every 10 ms, so that no tick's duration drops out of the window of recent ones first."""

    ticks: int = 0  # ticks run
    skipped: int = 0  # deadlines skipped after a late or overrunning tick
    overruns: int = 0
    max_s: float = 0.0  # the longest tick's own work

    async def run(self, stats: TickStats, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled; the totals are final once this returns."""
        ticks0, skipped0, overruns0 = stats.ticks, stats.skipped, stats.overruns
        seen = stats.ticks
        task_status.started(self)
        try:
            while True:
                await trio.sleep(0.01)
                seen = self._sample(stats, seen)
        finally:
            self._sample(stats, seen)
            self.ticks = stats.ticks - ticks0
            self.skipped = stats.skipped - skipped0
            self.overruns = stats.overruns - overruns0

    def _sample(self, stats: TickStats, seen: int) -> int:
        new = stats.ticks - seen
        if new > 0:
            self.max_s = max([self.max_s] + stats.recent[-new:])
        return stats.ticks


@asynccontextmanager
async def bystander(server: Server, url: str, room: str = "r", max_gap_s: float = STALL_S,
                    rss_growth_mib: float = 32.0, max_tick_s: float = TICK_WORK_S) -> AsyncIterator[Watcher]:
    """A Watcher in ``room`` while the block runs (and 5 ticks after). On a normal exit it
    asserts, from the room's tick stats, that no tick took over ``max_tick_s`` of its own
    work and that skipped deadlines cost the room at most ``max_gap_s`` plus LOST_SHARE of
    the episode; from the watcher, that it got every tick, in order, never ``max_gap_s``
    without one; then that the server is back to just the watcher (connections, sessions,
    selector registrations, joiners) and that memory did not grow."""
    async with watched(url, room) as w:
        r = server.rooms[room]
        rss0 = rss_mib()
        async with trio.open_nursery() as n:
            tw: TickWatch = await n.start(TickWatch().run, r.tick_stats)
            t0 = trio.current_time()
            yield w
            await trio.sleep(5 * period(server))  # and a few ticks after the misbehaviour
            t1 = trio.current_time()
            n.cancel_scope.cancel()
        per = period(server)
        assert tw.max_s <= max_tick_s, (
            f"a tick took {tw.max_s * 1e3:.0f} ms of its own work (bound {max_tick_s * 1e3:.0f} ms, "
            f"tick period {per * 1e3:.0f} ms)")
        lost = tw.skipped * per
        assert lost <= max_gap_s + LOST_SHARE * (t1 - t0), (
            f"the room skipped {tw.skipped} deadlines ({lost:.2f} s) in {t1 - t0:.2f} s, running {tw.ticks} ticks "
            f"({tw.overruns} over the period)")
        gap = w.max_gap(t0, t1)
        assert gap <= max_gap_s, (
            f"the well-behaved client went {gap * 1e3:.0f} ms without a snapshot (tick period {per * 1e3:.0f} ms)")
        ticks = [k for t, k in zip(w.times, w.ticks) if t0 <= t <= t1]
        assert len(ticks) >= 3
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), "the well-behaved client missed ticks"
        await wait_for(lambda: server.connections == 1, 3.0, "the server to be back to one connection")
        assert server.rooms.get(room) is r, "the watcher's room was replaced"
        await wait_for(lambda: list(r.sessions) == [w.client_id] and not r.roster.joining, 3.0,
                       "the room to be back to the watcher alone")
        assert len(r.roster.inbox) == 1, "a departed client is still registered with the room's selector"
        assert not r._reliable
        assert w.closed is None
        grown = rss_mib() - rss0
        assert grown < rss_growth_mib, f"resident memory grew by {grown:.1f} MiB"


class Player:
    """A raw client that also decodes snapshots (the sans-I/O ClientProtocol) and acks them:
    ``state`` is the newest world, ``events`` every event seen; inputs are numbered by hand."""

    def __init__(self, ws: Any, room: str = "r", name: str = "player") -> None:
        self.ws = ws
        self.proto = cp.ClientProtocol(room, name)
        self.welcome: p.Welcome | None = None
        self.state: Any = None
        self.input_ack = 0
        self.events: list[Any] = []
        self.updates: list[cp.StateUpdated] = []

    @property
    def client_id(self) -> int:
        assert self.welcome is not None
        return self.welcome.client_id

    async def join(self) -> p.Welcome:
        await self.ws.send_message(self.proto.join())
        for ev in self.proto.receive(await self.ws.get_message(), trio.current_time()):
            assert isinstance(ev, cp.Welcomed), f"expected welcome, got {ev}"
            self.welcome = ev.welcome
        assert self.welcome is not None
        return self.welcome

    async def send(self, msg: Any) -> None:
        await self.ws.send_message(msg if isinstance(msg, bytes) else pk(msg))

    async def send_input(self, seq: int, data: Any) -> None:
        await self.send([3, seq, data])

    async def pump(self) -> list[Any]:
        """Handle one server message; returns its events (not state updates)."""
        out = []
        for ev in self.proto.receive(await self.ws.get_message(), trio.current_time()):
            if isinstance(ev, cp.StateUpdated):
                self.state = ev.state
                self.input_ack = ev.input_ack
                self.updates.append(ev)
            else:
                self.events.append(ev)
                out.append(ev)
        while self.proto.outbox:
            await self.ws.send_message(self.proto.outbox.pop(0))
        return out

    async def until(self, cond: Any, timeout: float = 3.0, what: str = "condition") -> None:
        """Pump messages until ``cond()`` holds."""
        with trio.fail_after(timeout):
            while not cond():
                await self.pump()

    async def next_state(self) -> Any:
        n = len(self.updates)
        await self.until(lambda: len(self.updates) > n)
        return self.state

    def me(self) -> int:
        """This player's entity id, from the arena's {"you": id} event."""
        for ev in self.events:
            if isinstance(ev, cp.GameEvent) and isinstance(ev.data, dict) and "you" in ev.data:
                return int(ev.data["you"])
        raise AssertionError("no {'you': id} event yet")

    def entity(self, entity_id: int, state: Any = None) -> dict[str, float]:
        """Field values of one entity in ``state`` (default: the newest)."""
        st = self.state if state is None else state
        schema = self.proto.schema
        assert schema is not None and st is not None
        slots = [i for i in range(st.n) if st.alive[i] and st.ids[i] == entity_id]
        assert slots, f"entity {entity_id} not in the state of tick {st.tick}"
        return {f.name: float(st.column(schema, f.name)[slots[0]]) for f in schema}

    def kinds(self) -> list[int]:
        st = self.state
        return [int(k) for k, a in zip(st.column(self.proto.schema, "kind"), st.alive) if a]


@asynccontextmanager
async def player(url: str, room: str = "r", name: str = "player") -> AsyncIterator[Player]:
    """A joined Player that has its first state and its arena {"you": id} event (if any)."""
    async with open_websocket_url(url, message_queue_size=RAW_QUEUE) as ws:
        pl = Player(ws, room, name)
        await pl.join()
        await pl.until(lambda: pl.state is not None)
        yield pl
