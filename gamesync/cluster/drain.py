"""Drain (SIGTERM): rooms handed to other nodes, with their state when their game saves it."""

from __future__ import annotations

import json
import logging

import trio

from ..core.errors import Redirect, Unavailable
from ..core.saved import SavedRoom, pack_saved
from ..ports import HostedRoom
from . import keys as k
from .context import NodeContext
from .directory import Directory
from .leases import Leases
from .redis import RedisDown
from .saves import Saves

logger = logging.getLogger(__name__)


class Drain:
    def __init__(self, ctx: NodeContext, directory: Directory, leases: Leases, saves: Saves) -> None:
        self.ctx = ctx
        self.directory = directory
        self.leases = leases
        self.saves = saves

    async def run(self, wait_s: float) -> None:
        """Hand every room whose game saves its state to another node (its players follow a
        redirect and resume their seats there); give the others up to ``wait_s`` to finish,
        then hand them over as they are (they start afresh there). The caller has set
        ``draining`` and sent a heartbeat."""
        rooms = self.ctx.host.rooms
        logger.info("node %s: draining %d rooms", self.ctx.id, len(rooms))
        for room in list(rooms.values()):
            saved = room.save() if not room.closed else None
            if saved is not None:
                await self.hand_over(room, saved)
        with trio.move_on_after(wait_s):
            while any(not r.closed for r in rooms.values()):
                await trio.sleep(0.1)
        for room in list(rooms.values()):
            if not room.closed:
                await self.hand_over(room, None)
        try:
            await self.saves.flush_kept()  # what the rooms kept as they stopped
        except RedisDown:
            pass

    async def hand_over(self, room: HostedRoom, saved: SavedRoom | None) -> None:
        ctx, ks, me = self.ctx, self.ctx.keys, self.ctx.id
        try:
            target = await self.directory.pick_node()
            if target is None:
                logger.warning("node %s: no node to hand room %s to; it ends here", me, room.name)
                return
            url = await self.directory.node_url(target, "hand-over")
            self.leases.handed.add(room.name)
            room.stop()  # no tick after the save below
            if saved is not None:
                await self.saves.write({room.name: pack_saved(saved)})
            else:
                await ctx.redis.call("hand-over", lambda: ctx.redis.r.delete([ks.state(room.name)]))
            ok = await ctx.redis.call("hand-over", lambda: ctx.redis.script(
                "transfer", [ks.lease(room.name), ks.node_rooms(me), ks.node_rooms(target)],
                [me, target, k.LEASE_MS, room.name]))
            if ok:
                await ctx.redis.call("hand-over", lambda: ctx.redis.r.publish(ks.ctl_channel(target),
                                                                             json.dumps({"adopt": room.name})))
            logger.info("node %s: room %s handed over to %s%s", me, room.name, target,
                        " with its state" if saved is not None else "")
            room.close_sessions(Redirect(url, room.name, k.RESERVATION_MS) if url else Unavailable("room moved; retry"))
        except RedisDown:
            logger.warning("node %s: hand-over of room %s failed: Redis unreachable", me, room.name)
