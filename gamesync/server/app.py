"""The server: listening socket, connection tasks (handshake, join), rooms, shutdown."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from typing import Any

import trio

from .. import native
from ..core import protocol as p
from ..core.errors import GamesyncError, GoingAway, InternalError, PeerClosed, VersionMismatch
from ..core.saved import SavedRoom
from ..core.serverproto import ServerSession
from ..ports import Membership
from .alone import Alone
from .config import ServerConfig
from .deflate import SharedDeflate
from .hosting import RoomHosting
from .joining import read_join
from .listener import REJECT_SLACK, Listener
from .netaddr import bind_failure
from .room import Room
from .seats import Seat
from .session import Session
from .wsconn import WsConn

logger = logging.getLogger(__name__)

#: close-handshake wait per connection once shutdown has begun
SHUTDOWN_CLOSE_S = 0.25

class Server:
    """Owns the listener, every connection task and every room (one nursery); implements
    gamesync.ports.RoomHost for the cluster it may belong to."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.rooms: dict[str, Room] = {}
        self.listener = Listener(self.config)
        self.port: int | None = None
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self._prejoin: set[trio.CancelScope] = set()
        self.http_url: str | None = None
        #: this server's membership of a cluster (``config.redis_url``), or its standing alone
        self.cluster: Membership = Alone(self.rooms, None if self.config.redis_url else self.config.data_dir,
                                         self.config.save_interval_s)
        #: permessage-deflate with the clients that offer it (None: never negotiated)
        self.deflate = SharedDeflate(self.config.deflate_threshold) if self.config.deflate else None
        self.hosting = RoomHosting(self.config, self.rooms, self.cluster, lambda: self._stopping)

    # -- public ------------------------------------------------------------------------------

    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled or ``shutdown()``; ``task_status`` gets the port."""
        cfg = self.config
        lsock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lsock.bind((cfg.host, cfg.port))
        except OSError as e:
            lsock.close()
            raise bind_failure(e, cfg.host, cfg.port, "WebSocket", "port") from None
        lsock.listen(cfg.backlog)
        lsock.setblocking(False)
        self.port = lsock.getsockname()[1]
        logger.info("gamesync listening on %s://%s:%d (tick %g Hz, default game %s)",
                    "wss" if cfg.ssl_context is not None else "ws", cfg.host, self.port, cfg.tick_rate,
                    cfg.default_game)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = self.hosting.nursery = nursery
                nursery.start_soon(self._log_stats)
                if cfg.http_port is not None:
                    from pathlib import Path

                    from .http import DEMO_DIR, serve_http

                    demo = Path(cfg.demo_dir) if cfg.demo_dir else DEMO_DIR
                    self.http_url = await nursery.start(serve_http, self, cfg.host, cfg.http_port, demo)
                if cfg.redis_url:
                    self.cluster = self.hosting.cluster = self._join_cluster(cfg.redis_url)
                await nursery.start(self.cluster.run)
                task_status.started(self.port)
                await self.listener.accept(lsock, nursery, self._connection, lambda: self._stopping)
        finally:
            lsock.close()
            self.cluster.close()  # what the rooms kept as they stopped
            self._write_stats()
            logger.info("gamesync stopped")

    def _join_cluster(self, redis_url: str) -> Membership:
        """This server as a node of the cluster at ``redis_url`` (the one place the server
        names the cluster package; everything else goes through gamesync.ports)."""
        from ..cluster.node import ClusterNode

        cfg = self.config
        public = cfg.public_url or f"{'wss' if cfg.ssl_context is not None else 'ws'}://{cfg.host}:{self.port}/"
        return ClusterNode(self, self.rooms, redis_url, cfg.node_id or f"{socket.gethostname()}-{self.port}", public,
                           cfg.redis_prefix, self.http_url, cfg.save_interval_s, cfg.placement)

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
            room.close_sessions(err)
        with trio.move_on_after(self.config.shutdown_timeout_s):
            await self.listener.all_closed()
        self._nursery.cancel_scope.cancel()

    async def drain(self) -> None:
        """Graceful exit (SIGTERM): in a cluster, hand the rooms to other nodes first (players
        follow a redirect there); then shut down."""
        if not self._stopping:
            await self.cluster.drain(self.config.drain_timeout_s)
        await self.shutdown()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def connections(self) -> int:
        return self.listener.connections

    @property
    def refused_at_accept(self) -> int:
        return self.listener.refused_at_accept

    @property
    def _per_ip(self) -> dict[str, int]:
        return self.listener.per_ip

    @property
    def max_rooms(self) -> int:
        return self.config.max_rooms

    def stats(self) -> dict[str, Any]:
        """Server-wide counters plus one entry per room."""
        rooms = [r.snapshot_stats() for r in self.rooms.values()]
        return {
            "connections": self.connections,
            "clients": sum(r["clients"] for r in rooms),
            "bytes_out": sum(r["bytes_out"] for r in rooms),
            "rooms": rooms,
            **({"deflate": self.deflate.stats()} if self.deflate is not None else {}),
            **self.cluster.stats(),
        }

    async def lobby(self) -> list[dict[str, Any]]:
        """Every room with its game, players, limit (and in a cluster: host node and URL, read
        from Redis; this node's own rooms alone while Redis is unreachable)."""
        return await self.cluster.lobby()

    async def cluster_view(self, what: str) -> Any:
        """``presence`` (who is in which room on which node) or ``nodes`` (the live nodes)."""
        return await self.cluster.view(what)

    # -- connections ---------------------------------------------------------------------------

    async def _connection(self, sock: socket.socket, ip: str = "") -> None:
        cfg = self.config
        now = trio.current_time()
        conn = WsConn(sock, cfg.max_message_bytes, cfg.recv_chunk_bytes,
                      native.token_bucket(cfg.in_bytes_per_s, cfg.in_bytes_burst, now),
                      native.token_bucket(cfg.in_msgs_per_s, cfg.in_msgs_burst, now))
        err: GamesyncError | None = None
        joined: tuple[Room, p.Join, str | None] | None = None
        proto = ServerSession(cfg.history_ticks, cfg.baseline_lag, cfg.max_inputs_per_tick, now,
                              cfg.input_backlog, cfg.input_drain_ticks,
                              native.ack_tracker(cfg.history_ticks, cfg.baseline_lag),
                              native.input_queue(cfg.max_inputs_per_tick, cfg.input_backlog, cfg.input_drain_ticks))
        try:
            with trio.CancelScope() as prejoin:  # shutdown() cancels connections not yet in a room
                self._prejoin.add(prejoin)
                try:
                    joined = await self._join(conn, proto)
                finally:
                    self._prejoin.discard(prejoin)
            if joined is not None:
                await self._play(conn, proto, *joined)
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
                self.listener.closed(ip)

    async def _join(self, conn: WsConn, proto: ServerSession) -> tuple[Room, p.Join, str | None] | None:
        """Handshake, then the join message; the room to enter, or None after a handshake timeout."""
        req = await read_join(conn, proto, self.config, lambda: self.connections, self.deflate)
        if req is None:
            return None
        return await self._room_for(req.join, req.reservation), req.join, req.player

    async def _room_for(self, join: p.Join, reservation: str | None = None) -> Room:
        return await self.hosting.room_for(join, reservation)

    async def host_room(self, name: str, saved: SavedRoom | None, game: str | None) -> Room:
        """Run room ``name`` here (``RoomHosting.host_room``)."""
        return await self.hosting.host_room(name, saved, game)

    def _close_timeout(self) -> float:
        """How long a close handshake may wait for the peer (short while shutting down, so that
        shutdown_timeout_s plus this stays within 2 s)."""
        return min(self.config.close_timeout_s, SHUTDOWN_CLOSE_S) if self._stopping else self.config.close_timeout_s

    async def _play(self, conn: WsConn, proto: ServerSession, room: Room, join: p.Join, player: str | None) -> None:
        cfg = self.config
        if self._stopping:
            raise GoingAway("server shutting down")
        if room.views is not None and proto.version < p.VIEW_VERSION:
            raise VersionMismatch(f"room {room.name!r} runs {room.game_name!r} with interest management, which "
                                  f"needs protocol {p.VIEW_VERSION}; the join asked for {proto.version}")
        resume_token = secrets.token_urlsafe(18)  # a fresh one per connection
        old = room.take_seat(join.resume, player) if join.resume else None
        if old is not None:  # the same seat: client id, name, applied inputs, undelivered events
            seat = old.resumed_as(resume_token)
            proto.resume(old.last_applied)
        else:
            seat = Seat(self.hosting.new_client_id(), join.name, player, resume_token)
        session = Session(seat, conn, cfg, proto, trio.current_time())
        room.admit(session)
        cid = session.id
        welcome = p.Welcome(proto.version, cid, room.name, room.game_name, room.tick_rate, room.tick,
                            room.game.schema.to_wire(), cfg.history_ticks, session.resume_token, old is not None,
                            room.views.welcome() if room.views is not None else None)
        session.write(conn.frame(p.pack_welcome(welcome)))
        try:
            async with trio.open_nursery() as n:
                n.start_soon(session.writer)
                await session.done.wait()
                n.cancel_scope.cancel()
        finally:
            session.close(None)
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


async def serve(config: ServerConfig | None = None, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run a server until cancelled; for ``nursery.start(serve, config)`` (returns the port)."""
    await Server(config).serve(task_status=task_status)


__all__ = ["REJECT_SLACK", "Server", "serve"]
