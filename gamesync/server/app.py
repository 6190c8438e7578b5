"""The server: listening socket, connection tasks (handshake, join), rooms, shutdown."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import trio

from ..core import protocol as p
from .. import tokens
from ..core.errors import (
    GamesyncError,
    InternalError,
    ProtocolViolation,
    Redirect,
    RoomFull,
    ServerFull,
    Timeout,
    UnknownGame,
    VersionMismatch,
)
from ..core.ratelimit import TokenBucket
from .config import ServerConfig
from .room import Room
from .session import Session
from .netaddr import is_loopback, proxied
from .wsconn import GoingAway, PeerClosed, Request, WsConn

if TYPE_CHECKING:
    from ..cluster.node import ClusterNode
    from ..core.saved import SavedRoom

logger = logging.getLogger(__name__)

#: connections beyond max_connections that still get a proper "server full" close;
#: past this, new sockets are closed at once
REJECT_SLACK = 64
#: close-handshake wait per connection once shutdown has begun
SHUTDOWN_CLOSE_S = 0.25
#: remote addresses whose connect-rate buckets are kept before idle ones are dropped
MAX_TRACKED_IPS = 10_000


def _http_refusal(status: str, reason: str) -> bytes:
    body = reason.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class Server:
    """Owns the listener, every connection task and every room (one nursery)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.rooms: dict[str, Room] = {}
        self.connections = 0
        self.port: int | None = None
        self._next_client_id = 1
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self._all_closed = trio.Event()
        self._prejoin: set[trio.CancelScope] = set()
        self._per_ip: dict[str, int] = {}  # open connections by remote address
        self._ip_rate: dict[str, TokenBucket] = {}  # connect attempts by remote address
        self.refused_at_accept = 0
        self.http_url: str | None = None
        #: this server's membership of a cluster (``config.redis_url``); None: it runs alone
        self.cluster: "ClusterNode | None" = None
        self._placing: dict[str, trio.Lock] = {}  # rooms being placed or created, one at a time

    # -- public ------------------------------------------------------------------------------

    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled or ``shutdown()``; ``task_status`` gets the port."""
        cfg = self.config
        lsock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((cfg.host, cfg.port))
        lsock.listen(cfg.backlog)
        lsock.setblocking(False)
        self.port = lsock.getsockname()[1]
        logger.info("gamesync listening on %s://%s:%d (tick %g Hz, default game %s)",
                    "wss" if cfg.ssl_context is not None else "ws", cfg.host, self.port, cfg.tick_rate,
                    cfg.default_game)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._log_stats)
                if cfg.http_port is not None:
                    from pathlib import Path

                    from .http import DEMO_DIR, serve_http

                    demo = Path(cfg.demo_dir) if cfg.demo_dir else DEMO_DIR
                    self.http_url = await nursery.start(serve_http, self, cfg.host, cfg.http_port, demo)
                if cfg.redis_url:
                    from ..cluster.node import ClusterNode

                    public = cfg.public_url or f"{'wss' if cfg.ssl_context is not None else 'ws'}://{cfg.host}:{self.port}/"
                    self.cluster = ClusterNode(self, cfg.redis_url, cfg.node_id or f"{socket.gethostname()}-{self.port}",
                                               public, cfg.redis_prefix, self.http_url)
                    await nursery.start(self.cluster.run)
                task_status.started(self.port)
                await self._accept(lsock, nursery)
        finally:
            lsock.close()
            self._write_stats()
            logger.info("gamesync stopped")

    async def shutdown(self) -> None:
        """Close every client with 1001 "going away", wait briefly for the closes, then stop."""
        if self._stopping or self._nursery is None:
            return
        self._stopping = True
        logger.info("shutting down: closing %d connections", self.connections)
        err = GoingAway("server shutting down")
        for scope in list(self._prejoin):
            scope.cancel()
        for room in list(self.rooms.values()):
            room.shut(err)
        if self.connections:
            with trio.move_on_after(self.config.shutdown_timeout_s):
                await self._all_closed.wait()
        self._nursery.cancel_scope.cancel()

    async def drain(self) -> None:
        """Graceful exit (SIGTERM): in a cluster, hand the rooms to other nodes first (players
        follow a redirect there); then shut down."""
        if self.cluster is not None and not self._stopping:
            await self.cluster.drain(self.config.drain_timeout_s)
        await self.shutdown()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stats(self) -> dict[str, Any]:
        """Server-wide counters plus one entry per room."""
        rooms = [r.snapshot_stats() for r in self.rooms.values()]
        return {
            "connections": self.connections,
            "clients": sum(r["clients"] for r in rooms),
            "bytes_out": sum(r["bytes_out"] for r in rooms),
            "rooms": rooms,
            **({"cluster": self.cluster.stats()} if self.cluster is not None else {}),
        }

    def local_rooms(self) -> list[dict[str, Any]]:
        """The lobby entries of the rooms running here."""
        node = self.cluster.id if self.cluster is not None else None
        url = self.cluster.url if self.cluster is not None else None
        return [{"room": r.name, "game": r.game_name, "clients": len(r.sessions), "max_players": r.game.max_players,
                 **({"node": node, "url": url} if node else {})}
                for r in self.rooms.values() if not r.closed]

    async def lobby(self) -> list[dict[str, Any]]:
        """Every room with its game, players, limit (and in a cluster: host node and URL, read
        from Redis; this node's own rooms alone while Redis is unreachable)."""
        if self.cluster is not None:
            from ..cluster.node import RedisDown

            try:
                return await self.cluster.lobby()
            except RedisDown:
                pass
        return self.local_rooms()

    async def cluster_view(self, what: str) -> Any:
        """``presence`` (who is in which room on which node) or ``nodes`` (the live nodes)."""
        if self.cluster is None:
            if what == "presence":
                return [{"room": r.name, "client": cid, "name": name, "player": player, "node": None}
                        for r in self.rooms.values() for cid, name, player in r.players]
            return []
        from ..cluster.node import RedisDown

        try:
            return await (self.cluster.presence() if what == "presence" else self.cluster.nodes())
        except RedisDown:
            return {"error": "Redis unreachable"}

    # -- connections ---------------------------------------------------------------------------

    async def _accept(self, lsock: socket.socket, nursery: trio.Nursery) -> None:
        while True:
            await trio.lowlevel.wait_readable(lsock)
            while True:
                try:
                    sock, addr = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:  # EMFILE and friends: back off rather than spin
                    logger.warning("accept failed: %s", e)
                    await trio.sleep(0.1)
                    break
                if self._stopping or self.connections >= self.config.max_connections + REJECT_SLACK:
                    sock.close()
                    continue
                ip = addr[0]
                refusal = None if self.config.ip_limits_skip_loopback and is_loopback(ip) else self._over_ip_limits(ip)
                if refusal is not None:
                    self._refuse_at_accept(sock, ip, refusal)
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connections += 1
                self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
                self._all_closed = trio.Event() if self._all_closed.is_set() else self._all_closed
                nursery.start_soon(self._connection, sock, ip)

    def _over_ip_limits(self, ip: str) -> str | None:
        """Why a new connection from ``ip`` is refused (None: it is not)."""
        cfg = self.config
        now = trio.current_time()
        bucket = self._ip_rate.get(ip)
        if bucket is None:
            if len(self._ip_rate) >= MAX_TRACKED_IPS:  # forget addresses whose bucket refilled
                self._ip_rate = {k: b for k, b in self._ip_rate.items() if b.refill(now) < b.burst}
            bucket = self._ip_rate[ip] = TokenBucket(cfg.connects_per_ip_per_s, cfg.connects_per_ip_burst, now)
        if not bucket.take(1, now):
            return f"too many connection attempts from {ip}"
        if self._per_ip.get(ip, 0) >= cfg.max_connections_per_ip:
            return f"too many connections open from {ip} (limit {cfg.max_connections_per_ip})"
        return None

    def _refuse_at_accept(self, sock: socket.socket, ip: str, reason: str) -> None:
        """HTTP 429 with the reason, best effort without waiting, and the socket closed: a
        flood of connections costs one send and one close each."""
        self.refused_at_accept += 1
        if self.refused_at_accept & (self.refused_at_accept - 1) == 0:  # log 1st, 2nd, 4th, 8th...
            logger.warning("refusing connections: %s (%d refused so far)", reason, self.refused_at_accept)
        try:
            sock.setblocking(False)
            sock.send(_http_refusal("429 Too Many Requests", reason))
        except OSError:
            pass
        sock.close()

    async def _connection(self, sock: socket.socket, ip: str = "") -> None:
        cfg = self.config
        now = trio.current_time()
        conn = WsConn(sock, cfg.max_message_bytes, cfg.recv_chunk_bytes,
                      TokenBucket(cfg.in_bytes_per_s, cfg.in_bytes_burst, now),
                      TokenBucket(cfg.in_msgs_per_s, cfg.in_msgs_burst, now))
        err: GamesyncError | None = None
        joined: tuple[Room, p.Join, str | None] | None = None
        try:
            with trio.CancelScope() as prejoin:  # shutdown() cancels connections not yet in a room
                self._prejoin.add(prejoin)
                try:
                    joined = await self._join(conn)
                finally:
                    self._prejoin.discard(prejoin)
            if joined is not None:
                await self._play(conn, *joined)
        except GamesyncError as e:
            err = e
            logger.info("connection refused: %s: %s", e.code, e.reason)
        except PeerClosed:
            pass
        except Exception:  # a bug of ours or of a game's: this connection only, never the server
            logger.exception("connection failed")
            err = InternalError("internal error")
        finally:
            if err is None and self._stopping:
                err = GoingAway("server shutting down")
            try:
                if conn.sock.fileno() != -1:
                    with trio.CancelScope(shield=True):
                        await conn.close(err, self._close_timeout())
            finally:
                self.connections -= 1
                left = self._per_ip.get(ip, 1) - 1
                if left > 0:
                    self._per_ip[ip] = left
                else:
                    self._per_ip.pop(ip, None)
                if self.connections == 0:
                    self._all_closed.set()

    async def _join(self, conn: WsConn) -> tuple[Room, p.Join, str | None] | None:
        """Handshake, then the join message; the room to enter, or None after a handshake timeout."""
        cfg = self.config
        with trio.move_on_after(cfg.handshake_timeout_s) as cs:
            if cfg.ssl_context is not None:
                await conn.start_tls(cfg.ssl_context)
            request = await conn.handshake(self._check_request)
        if cs.cancelled_caught:
            return None
        reservation = _query_param(request.target, "reservation")
        if self.connections > cfg.max_connections:
            raise ServerFull(f"server is at its limit of {cfg.max_connections} connections")
        with trio.move_on_after(cfg.join_timeout_s) as cs:
            first = await conn.receive_message(trio.current_time())
        if cs.cancelled_caught:
            raise Timeout(f"no join within {cfg.join_timeout_s:g} s")
        join = p.parse_client(first)
        if not isinstance(join, p.Join):
            raise ProtocolViolation("the first message must be join")
        if join.version != p.PROTOCOL_VERSION:
            raise VersionMismatch(f"server speaks protocol {p.PROTOCOL_VERSION}, client {join.version}")
        player = None
        if cfg.token_secret is not None:  # the token's player and name stand, not the join's
            grant = tokens.verify(cfg.token_secret, join.token, join.room, time.time())
            join = p.Join(join.version, join.room, grant.name, join.game, None, join.resume)
            player = grant.player
        return await self._room_for(join, reservation), join, player

    def _check_request(self, request: Request) -> str | None:
        """Why a handshake is refused (HTTP 403), or None: an Origin off the allowlist, or a
        proxied request to a server in development mode that was not asked to allow it (a
        reverse proxy in front of a server whose secret is missing would open it to everyone)."""
        cfg = self.config
        if cfg.dev_mode and not cfg.insecure_dev and proxied(k for k, _ in request.extra_headers):
            return ("this server runs without a secret (development mode) and refuses proxied "
                    "connections: set GAMESYNC_SECRET (or --insecure-dev)")
        allowed = cfg.allowed_origins
        if allowed is None:
            return None
        origin = next((v.decode("latin-1") for k, v in request.extra_headers if k.lower() == b"origin"), None)
        if origin is None or origin in allowed:
            return None
        return f"origin {origin!r} is not allowed"

    async def _room_for(self, join: p.Join, reservation: str | None = None) -> Room:
        room = self.rooms.get(join.room)
        if room is None or room.closed:
            if self.cluster is None:
                room = await self._create_room(join.room, join.game or self.config.default_game)
            else:
                room = await self._place(join, reservation)
        elif reservation and self.cluster is not None:
            await self.cluster.take_reservation(join.room, reservation)
        if join.game is not None and join.game != room.game_name:
            raise UnknownGame(f"room {join.room!r} runs {room.game_name!r}, not {join.game!r}")
        return room

    async def _place(self, join: p.Join, reservation: str | None) -> Room:
        """The room for ``join`` in a cluster: hosted here (claimed, or recreated from its last
        save), or a Redirect to its host with a seat reserved there."""
        assert self.cluster is not None
        try:
            saved = await self.cluster.place(join.room)
        except Redirect as r:
            if join.resume is None:  # a resume has its seat; a new player gets one held for it
                token = await self.cluster.reserve(join.room)
                if token is None:
                    raise RoomFull(f"room {join.room!r} is full") from None
                r.url += ("&" if "?" in r.url else "?") + f"reservation={token}"
            raise
        if reservation:
            await self.cluster.take_reservation(join.room, reservation)
        room = await self.host_room(join.room, saved, join.game)
        assert room is not None
        return room

    async def host_room(self, name: str, saved: "SavedRoom | None", game: str | None) -> Room | None:
        """Run room ``name`` here (a cluster placed it, took it over or was handed it), from its
        last save if there is one; the running room if it already is."""
        lock = self._placing.setdefault(name, trio.Lock())
        try:
            async with lock:
                room = self.rooms.get(name)
                if room is not None and not room.closed:
                    return room
                if self._stopping:
                    raise GoingAway("server shutting down")
                if saved is not None and game is not None and saved.game != game:
                    saved = None  # the join wants another game: the old room's state does not fit
                return await self._create_room(name, saved.game if saved is not None else game or
                                               self.config.default_game, saved)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._placing.pop(name, None)

    async def _create_room(self, name: str, game_name: str, saved: "SavedRoom | None" = None) -> Room:
        factory = self.config.games.get(game_name)
        if factory is None:
            raise UnknownGame(f"no game {game_name!r} here (have: {', '.join(sorted(self.config.games))})")
        if len(self.rooms) >= self.config.max_rooms:
            raise ServerFull(f"server is at its limit of {self.config.max_rooms} rooms")
        try:
            try:
                room = Room(self, name, game_name, factory(**self.config.game_options), saved)
            except Exception:
                if saved is None:
                    raise
                logger.exception("room %s: its saved state did not load; starting afresh", name)
                room = Room(self, name, game_name, factory(**self.config.game_options))
        except Exception:
            logger.exception("room %s: game %s failed to start", name, game_name)
            raise InternalError(f"game {game_name!r} failed to start") from None
        if saved is not None:
            self._next_client_id = max([self._next_client_id] + [s.client_id + 1 for s in saved.seats])
        self.rooms[name] = room
        if self.cluster is not None:
            room.save_every = max(1, round(self.config.save_interval_s * room.tick_rate))
            self.cluster.room_opened(room)
        assert self._nursery is not None
        await self._nursery.start(room.run)
        logger.info("room %s: created (game %s)%s", name, game_name, " from its last save" if saved else "")
        return room

    def _close_timeout(self) -> float:
        """How long a close handshake may wait for the peer (short while shutting down, so that
        shutdown_timeout_s plus this stays within 2 s)."""
        return min(self.config.close_timeout_s, SHUTDOWN_CLOSE_S) if self._stopping else self.config.close_timeout_s

    def forget_room(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            if self.cluster is not None:
                self.cluster.room_closed(room)

    async def _play(self, conn: WsConn, room: Room, join: p.Join, player: str | None) -> None:
        cfg = self.config
        if self._stopping:
            raise GoingAway("server shutting down")
        old = room.take_seat(join.resume, player) if join.resume else None
        if old is not None:  # the same seat: client id, name, applied inputs, undelivered events
            session = Session(old.id, old.name, conn, cfg, trio.current_time())
            session.player, session.resumed = old.player, old.known_to_game
            session.last_applied, session.events = old.last_applied, old.events
        else:
            session = Session(self._next_client_id, join.name, conn, cfg, trio.current_time())
            self._next_client_id += 1
            session.player = player
        session.resume_token = secrets.token_urlsafe(18)  # a fresh one per connection
        room.admit(session)
        cid = session.id
        welcome = p.Welcome(p.PROTOCOL_VERSION, cid, room.name, room.game_name, room.tick_rate, room.tick,
                            room.game.schema.to_wire(), cfg.history_ticks, session.resume_token, old is not None)
        session.write(conn.frame(p.pack_welcome(welcome)))
        try:
            async with trio.open_nursery() as n:
                n.start_soon(session.writer)
                await session.done.wait()
                n.cancel_scope.cancel()
        finally:
            session.fail(None)
            with trio.CancelScope(shield=True):
                await session.flush_and_close(self._close_timeout())

    async def _log_stats(self) -> None:
        while True:
            await trio.sleep(self.config.stats_interval_s)
            for r in self.rooms.values():
                st = r.snapshot_stats()
                logger.info("stats %s", json.dumps(st, separators=(",", ":")))
            self._write_stats()

    def _write_stats(self) -> None:
        path = self.config.stats_file
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.stats(), f)
            os.replace(tmp, path)


def _query_param(target: bytes | str, name: str) -> str | None:
    """One query parameter of a request target (``/?reservation=...``), or None."""
    t = target.decode("latin-1") if isinstance(target, bytes) else target
    vals = parse_qs(urlsplit(t).query).get(name)
    return vals[0][:128] if vals else None


async def serve(config: ServerConfig | None = None, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run a server until cancelled; for ``nursery.start(serve, config)`` (returns the port)."""
    await Server(config).serve(task_status=task_status)
