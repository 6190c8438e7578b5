"""This node's share of the directory, kept alive by its heartbeat: its registration, its
rooms' leases and lobby entries, who is in them (presence), and the keys of rooms that closed."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import trio

from ..core.errors import Redirect, Unavailable
from ..ports import HostedRoom
from . import keys as k
from .context import NodeContext
from .directory import Directory
from .redis import Counted, now_ms

logger = logging.getLogger(__name__)


class Leases:
    """Heartbeat, lease renewal, release; ``kick`` asks for a heartbeat now."""

    def __init__(self, ctx: NodeContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory
        self.kick = trio.Event()
        self.presence: dict[str, str] | None = None  # what presence holds for us (None: rewrite all)
        self.released: list[str] = []  # rooms closed here whose keys are to go
        self.handed: set[str] = set()  # rooms handed to another node: their lease is not ours to release
        ctx.redis.on_down.append(self._forget_presence)

    def _forget_presence(self) -> None:
        self.presence = None

    def room_opened(self, room: HostedRoom) -> None:
        self.handed.discard(room.name)
        # opened again before the heartbeat let the closed one go: its lease stays ours
        self.released = [name for name in self.released if name != room.name]
        self.kick.set()

    def room_closed(self, room: HostedRoom) -> bool:
        """Queue the keys of a room closed here for release; False if it was handed over."""
        if room.name in self.handed:
            return False
        self.released.append(room.name)
        self.kick.set()
        return True

    async def heartbeat(self, rooms: list[HostedRoom]) -> None:
        """Register the node, renew its leases, refresh its lobby entries and presence,
        release closed rooms' keys, count reservations."""
        released, self.released = self.released, []
        try:
            renewed, counts = await self.ctx.redis.pipeline("heartbeat", lambda pl: self._beat(pl, rooms, released))
        except Exception:
            self.released = released + self.released  # their keys go at the next heartbeat
            raise
        results = await renewed if renewed is not None else []
        self.directory.reserved_seats = {r.name: int(await c) for r, c in zip(rooms, counts, strict=True)}
        for r, res in zip(rooms, results, strict=False):  # a Redis reply: its length is not trusted
            if res == 2:
                logger.info("node %s: room %s: lease taken again (it had lapsed)", self.ctx.id, r.name)
            elif res == 0 and not r.closed:
                await self._lost(r)

    def _beat(self, pl: Counted, rooms: list[HostedRoom], released: list[str]) -> tuple[Any, list[Any]]:
        ctx, ks, me, now = self.ctx, self.ctx.keys, self.ctx.id, now_ms()
        t0 = time.perf_counter()
        pl.hset(ks.node(me), {"url": ctx.url, "http": ctx.http_url or "", "rooms": len(rooms),
                              "clients": sum(r.clients for r in rooms), "draining": int(ctx.draining), "seen": now,
                              "tick_load": round(sum(r.tick_load for r in rooms), 4)})
        pl.pexpire(ks.node(me), k.NODE_TTL_MS)
        pl.zadd(ks.nodes, {me: now})
        renewed = pl.script(ctx.redis.scripts["renew"], [ks.lease(r.name) for r in rooms], [me, k.LEASE_MS]) \
            if rooms else None
        for r in rooms:
            pl.hset(ks.room(r.name), {"game": r.game_name, "clients": len(r.players), "max_players": r.max_players,
                                      "node": me, "url": ctx.url, "updated": now})
            pl.pexpire(ks.room(r.name), k.ROOM_INFO_MS)
            pl.zadd(ks.rooms, {r.name: now})
            pl.zremrangebyscore(ks.resv(r.name), "-inf", now)
        counts = [pl.zcard(ks.resv(r.name)) for r in rooms]
        if rooms:
            pl.sadd(ks.node_rooms(me), [r.name for r in rooms])
        for name in released:
            pl.script(ctx.redis.scripts["release"], [ks.lease(name)], [me])
            pl.srem(ks.node_rooms(me), [name])
            pl.zrem(ks.rooms, [name])
            pl.delete([ks.room(name), ks.state(name), ks.resv(name)])
        pl.zremrangebyscore(ks.rooms, "-inf", now - k.ROOM_INFO_MS)
        self._write_presence(pl, rooms)
        ctx.busy_s += time.perf_counter() - t0  # the pipeline is sent as the block exits
        return renewed, counts

    def _write_presence(self, pl: Counted, rooms: list[HostedRoom]) -> None:
        key = self.ctx.keys.presence(self.ctx.id)
        now = {f"{r.name}/{cid}": json.dumps({"room": r.name, "client": cid, "name": name, "player": player,
                                              "node": self.ctx.id}, separators=(",", ":"))
               for r in rooms for cid, name, player in r.players}
        old = self.presence
        if old is None:
            pl.delete([key])
            old = {}
        gone = [f for f in old if f not in now]
        new = {f: v for f, v in now.items() if old.get(f) != v}
        if gone:
            pl.hdel(key, gone)
        if new:
            pl.hset(key, new)
        pl.pexpire(key, k.NODE_TTL_MS)
        self.presence = now

    async def _lost(self, room: HostedRoom) -> None:
        """Another node holds this room's lease (it lapsed while Redis was out of reach and a
        failover took the room): this copy stops and its players go to the new host."""
        ctx = self.ctx
        owner = await ctx.redis.call("lost", lambda: ctx.redis.r.get(ctx.keys.lease(room.name)))
        url = await self.directory.node_url(owner, "lost") if owner else None
        logger.warning("node %s: room %s is now hosted by %s: closing this copy", ctx.id, room.name, owner)
        self.hand_off(room, url)

    def hand_off(self, room: HostedRoom, url: str | None) -> None:
        """This copy of ``room`` stops; its players are sent to ``url`` (its new host)."""
        self.handed.add(room.name)
        room.stop()
        room.close_sessions(Redirect(url, room.name, k.RESERVATION_MS) if url else Unavailable("the room moved; retry"))

    async def leave(self) -> None:
        """Leaving the cluster (shutdown): release the leases of the rooms still here (their last
        saves stay, so whichever node gets the next join resumes them) and deregister."""
        ctx, ks, me = self.ctx, self.ctx.keys, self.ctx.id
        names = [name for name in ctx.host.rooms if name not in self.handed] + self.released

        def leave(pl: Counted) -> None:
            for name in names:
                pl.script(ctx.redis.scripts["release"], [ks.lease(name)], [me])
            for name in self.released:
                pl.delete([ks.state(name)])
            pl.delete([ks.node(me), ks.presence(me), ks.node_rooms(me)])
            pl.zrem(ks.nodes, [me])

        await ctx.redis.pipeline("leave", leave)
        logger.info("node %s: left the cluster (%d leases released)", me, len(names))
