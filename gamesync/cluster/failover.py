"""Failover: rooms of nodes whose heartbeat stopped are claimed and recreated here (from their
last save), and the dead nodes forgotten."""

from __future__ import annotations

import logging
import random
from functools import partial

import coredis
import trio

from ..core.errors import GamesyncError
from . import keys as k
from .context import NodeContext
from .directory import Directory
from .redis import RedisDown, now_ms

logger = logging.getLogger(__name__)

#: dead nodes looked for (their rooms taken over)
FAILOVER_SCAN_S = 0.5


class Failover:
    def __init__(self, ctx: NodeContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory

    async def loop(self) -> None:
        while True:
            await trio.sleep(FAILOVER_SCAN_S * random.uniform(0.8, 1.2))
            if self.ctx.draining or self.ctx.host.stopping:
                continue
            try:
                await self.take_over_dead()
            except RedisDown:
                pass
            except Exception:
                logger.exception("node %s: failover scan failed", self.ctx.id)

    async def take_over_dead(self) -> None:
        """Claim the rooms of nodes whose heartbeat stopped, and recreate them here."""
        ks, r, call = self.ctx.keys, self.ctx.redis.r, self.ctx.redis.call
        dead = await call("failover", lambda: r.zrange(ks.nodes, "-inf", now_ms() - k.NODE_DEAD_MS,
                                                       sortby=coredis.PureToken.BYSCORE))
        for node in dead:
            if node == self.ctx.id:
                continue
            if not await self._take_rooms_of(node):
                return  # this node is full
            left = await call("failover", partial(r.scard, ks.node_rooms(node)))
            if not left:
                await call("failover", partial(r.zrem, ks.nodes, [node]))
                await call("failover", partial(r.delete, [ks.node_rooms(node), ks.presence(node)]))
                logger.info("node %s: dead node %s forgotten", self.ctx.id, node)

    async def _take_rooms_of(self, node: str) -> bool:
        """Take over the dead ``node``'s rooms nobody holds; False if this node filled up."""
        ks, r, call, host = self.ctx.keys, self.ctx.redis.r, self.ctx.redis.call, self.ctx.host
        rooms = list(await call("failover", lambda: r.smembers(ks.node_rooms(node))))
        random.shuffle(rooms)
        for room in rooms:
            if len(host.rooms) >= host.max_rooms:
                return False
            owner = await call("failover", partial(r.get, ks.lease(room)))
            if owner is None:
                if not await self.directory.claim(room, "failover"):
                    continue
                logger.info("node %s: room %s taken over from dead node %s", self.ctx.id, room, node)
                await self.adopt(room)
            if owner != node:
                await call("failover", partial(r.srem, ks.node_rooms(node), [room]))
        return True

    async def adopt(self, room: str) -> None:
        """Run ``room`` here now that its lease is ours (from its last save, if any); if it
        cannot run here, let the lease go so that another node can take it."""
        try:
            await self.ctx.host.host_room(room, await self.directory.load(room), None)
        except GamesyncError as e:
            logger.warning("node %s: cannot run room %s here (%s); releasing it", self.ctx.id, room, e.reason)
            try:  # its last save stays for whichever node gets it next
                await self.directory.release(room)
            except RedisDown:
                pass
