"""Where rooms run: placing a room (claim its lease, or redirect to its host with a seat held
there), reservations, the live nodes, the lobby and presence, all read from Redis."""

from __future__ import annotations

import json
import logging
import secrets
from functools import partial
from typing import Any

import coredis

from ..core.errors import Redirect, RedisDown, RoomFull, Unavailable
from ..core.saved import SavedRoom, unpack_saved
from . import keys as k
from .context import NodeContext
from .placement import least_loaded
from .redis import now_ms

logger = logging.getLogger(__name__)


class Directory:
    """The cluster's directory as this node reads and claims it."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.reserved_seats: dict[str, int] = {}  # live reservations per local room, from the last heartbeat

    async def place(self, room: str, new_player: bool) -> SavedRoom | None:
        """Decide where ``room`` runs. Returns when it is to run here (with its last save, if
        any: a room recreated after its host died or handed it over); raises Redirect when
        another node hosts it (with a seat reserved there for a ``new_player``; RoomFull if
        there is none), Unavailable when that cannot be known now."""
        try:
            return await self._place(room)
        except Redirect as r:
            if new_player:  # a resume has its seat; a new player gets one held for it
                token = await self.reserve(room)
                if token is None:
                    raise RoomFull(f"room {room!r} is full") from None
                r.url += ("&" if "?" in r.url else "?") + f"reservation={token}"
            raise

    async def _place(self, room: str) -> SavedRoom | None:
        ctx, ks, r = self.ctx, self.ctx.keys, self.ctx.redis.r
        call = ctx.redis.call
        for _ in range(3):
            try:
                owner = await call("route", lambda: r.get(ks.lease(room)))
                if owner == ctx.id:
                    return await self.load(room)
                target = owner
                if target is None:  # a new room: to the least loaded live node (never this one while draining)
                    target = ctx.id if ctx.placement == "local" and not ctx.draining else \
                        await self.pick_node(include_me=not ctx.draining)
                    if target is None:
                        raise Unavailable("this node is draining and no other node is up")
                    if target == ctx.id:
                        if await self.claim(room, "claim"):
                            logger.info("node %s: room %s claimed", ctx.id, room)
                            return await self.load(room)
                        continue  # another node got there first: look again
                url = await self.node_url(target, "route")
                if owner is None and url is not None and not await self.claim(room, "place", target):
                    continue  # claimed meanwhile: look again
                if url is None:
                    raise Unavailable(f"room {room!r} is moving (its host {target} is gone); retry")
                raise Redirect(url, room, k.RESERVATION_MS)
            except RedisDown:
                raise Unavailable("the cluster directory (Redis) is unreachable; retry") from None
        raise Unavailable(f"room {room!r} is changing hosts; retry")

    async def claim(self, room: str, what: str, node: str | None = None) -> bool:
        """Take ``room``'s lease if nobody holds it, for this node (listing the room as ours)
        or for ``node``, to which the join is redirected (it lists the room once it hosts it;
        the lease lapses if the client never gets there). The node counts one room more at
        once, so that the next placement sees it before its next heartbeat."""
        ctx, ks, r = self.ctx, self.ctx.keys, self.ctx.redis.r
        host = node or ctx.id
        won = await ctx.redis.call(what, lambda: r.set(ks.lease(room), host, condition=coredis.PureToken.NX,
                                                       px=k.LEASE_MS))
        if won:
            if node is None:
                await ctx.redis.call(what, lambda: r.sadd(ks.node_rooms(ctx.id), [room]))
            else:
                logger.info("node %s: room %s placed on %s, the least loaded node", ctx.id, room, node)
            await ctx.redis.pipeline(what, lambda pl: (pl.hincrby(ks.node(host), "rooms", 1),
                                                       pl.pexpire(ks.node(host), k.NODE_TTL_MS)))
        return bool(won)

    async def release(self, room: str) -> None:
        """Let ``room``'s lease go (its last save stays, for whichever node gets it next)."""
        ctx = self.ctx
        await ctx.redis.call("release", lambda: ctx.redis.script("release", [ctx.keys.lease(room)], [ctx.id]))
        await ctx.redis.call("release", lambda: ctx.redis.r.srem(ctx.keys.node_rooms(ctx.id), [room]))

    async def node_url(self, node: str, what: str) -> str | None:
        return await self.ctx.redis.call(what, lambda: self.ctx.redis.r.hget(self.ctx.keys.node(node), "url"))

    async def reserve(self, room: str) -> str | None:
        """A reservation token for a seat in ``room`` (hosted elsewhere), or None if it is full."""
        token = secrets.token_urlsafe(12)
        now = now_ms()
        ks = self.ctx.keys
        ok = await self.ctx.redis.call("reserve", lambda: self.ctx.redis.script(
            "reserve", [ks.resv(room), ks.room(room)], [token, now, now + k.RESERVATION_MS, 1 << 30]))
        return token if ok else None

    async def take_reservation(self, room: str, token: str) -> bool:
        """Use the reservation ``token`` (True if it was live: the seat was held for this join)."""
        try:
            n = await self.ctx.redis.call("reservation", lambda: self.ctx.redis.r.zrem(self.ctx.keys.resv(room),
                                                                                      [token]))
        except RedisDown:
            return False
        if n and self.reserved_seats.get(room, 0) > 0:
            self.reserved_seats[room] -= 1
        return bool(n)

    def reserved(self, room: str) -> int:
        """Seats of ``room`` held for redirected joins (as of the last heartbeat)."""
        return self.reserved_seats.get(room, 0)

    async def load(self, room: str) -> SavedRoom | None:
        """``room``'s last save, if any (None too when Redis is out of reach)."""
        try:
            data = await self.ctx.redis.call("load", lambda: self.ctx.redis.rb.get(self.ctx.keys.state(room)))
        except RedisDown:
            return None
        return unpack_saved(data) if data else None

    async def pick_node(self, include_me: bool = False) -> str | None:
        """The least loaded live node that is not draining (``placement.least_loaded``), this
        one among them if ``include_me``."""
        return least_loaded(await self.nodes(), self.ctx.id, include_me)

    async def nodes(self) -> list[dict[str, Any]]:
        ks, r, call = self.ctx.keys, self.ctx.redis.r, self.ctx.redis.call
        names = await call("nodes", lambda: r.zrange(ks.nodes, now_ms() - k.NODE_DEAD_MS, "+inf",
                                                     sortby=coredis.PureToken.BYSCORE))
        out = []
        for name in names:
            h = await call("nodes", partial(r.hgetall, ks.node(name)))
            if h:
                out.append({"node": name, "url": h.get("url"), "http": h.get("http") or None,
                            "rooms": int(h.get("rooms", 0)), "clients": int(h.get("clients", 0)),
                            "tick_load": float(h.get("tick_load", 0.0)), "draining": h.get("draining") == "1"})
        return out

    async def lobby(self) -> list[dict[str, Any]]:
        """Every hosted room of the cluster: room, game, clients, max_players, node, url."""
        ks, r = self.ctx.keys, self.ctx.redis.r
        names = list(await self.ctx.redis.call("lobby", lambda: r.zrange(
            ks.rooms, now_ms() - k.ROOM_INFO_MS, "+inf", sortby=coredis.PureToken.BYSCORE)))
        if not names:
            return []

        def read(pl: Any) -> tuple[list[Any], list[Any]]:
            return [pl.hgetall(ks.room(n)) for n in names], [pl.get(ks.lease(n)) for n in names]

        infos, owners = await self.ctx.redis.pipeline("lobby", read)
        out = []
        for name, fi, fo in zip(names, infos, owners, strict=True):
            info, owner = await fi, await fo
            if not info or owner is None:
                continue  # closed, or its host died and nobody has taken it over yet
            out.append({"room": name, "game": info.get("game"), "clients": int(info.get("clients", 0)),
                        "max_players": int(info.get("max_players", 0)), "node": owner, "url": info.get("url")})
        return sorted(out, key=lambda e: e["room"])

    async def presence(self) -> list[dict[str, Any]]:
        """Everyone in a room on a live node: room, client, name, player, node."""
        out: list[dict[str, Any]] = []
        for n in await self.nodes():
            key = self.ctx.keys.presence(n["node"])
            h = await self.ctx.redis.call("presence", partial(self.ctx.redis.r.hgetall, key))
            out.extend(json.loads(v) for v in h.values())
        return sorted(out, key=lambda e: (e["room"], e["client"]))
