"""From an accepted socket to a join: the TLS and WebSocket handshakes (with the Origin
check), the join message through the session's join gate, and the join token's verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import trio
from wsproto.events import Request

from .. import tokens
from ..core import protocol as p
from ..core.errors import ServerFull, Timeout
from ..core.serverproto import ServerSession
from .config import ServerConfig
from .deflate import SharedDeflate
from .netaddr import proxied
from .upgrade import accept_upgrade
from .wsconn import WsConn


@dataclass(frozen=True)
class JoinRequest:
    """A join that passed the gate: with join tokens, its name is the token's."""

    join: p.Join
    player: str | None  # the player id a join token vouched for
    reservation: str | None  # the seat held for a redirected join (``?reservation=``)


async def read_join(conn: WsConn, proto: ServerSession, cfg: ServerConfig,
                    connections: Callable[[], int], deflate: SharedDeflate | None = None) -> JoinRequest | None:
    """Handshake (with permessage-deflate, given ``deflate``), then the join message; None
    after a handshake timeout (the peer's time: the wait for a handshake turn is not counted)."""
    with trio.move_on_after(cfg.handshake_timeout_s) as cs:
        if cfg.ssl_context is not None:
            await conn.start_tls(cfg.ssl_context)
        request = await accept_upgrade(conn, lambda r: check_request(cfg, r), deflate, cs)
    if cs.cancelled_caught:
        return None
    reservation = query_param(request.target, "reservation")
    if connections() > cfg.max_connections:
        raise ServerFull(f"server is at its limit of {cfg.max_connections} connections")
    with trio.move_on_after(cfg.join_timeout_s) as cs:
        first = await conn.receive_message(trio.current_time())
    if cs.cancelled_caught:
        raise Timeout(f"no join within {cfg.join_timeout_s:g} s")
    join = proto.receive_join(first)
    player = None
    if cfg.token_secret is not None:  # the token's player and name stand, not the join's
        grant = tokens.verify(cfg.token_secret, join.token, join.room, time.time())
        join = p.Join(join.version, join.room, grant.name, join.game, None, join.resume)
        player = grant.player
    return JoinRequest(join, player, reservation)


def check_request(cfg: ServerConfig, request: Request) -> str | None:
    """Why a handshake is refused (HTTP 403), or None: an Origin off the allowlist, or a
    proxied request to a server in development mode that was not asked to allow it (a
    reverse proxy in front of a server whose secret is missing would open it to everyone)."""
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


def query_param(target: bytes | str, name: str) -> str | None:
    """One query parameter of a request target (``/?reservation=...``), or None."""
    t = target.decode("latin-1") if isinstance(target, bytes) else target
    vals = parse_qs(urlsplit(t).query).get(name)
    return vals[0][:128] if vals else None
