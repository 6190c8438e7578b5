"""Cross-node events over Redis pub/sub: the rooms' outbox, the subscriptions (every room,
this node's rooms, this node's control channel) and delivery to the rooms here."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from ..ports import HostedRoom
from . import keys as k
from .context import NodeContext
from .redis import REDIS_TIMEOUT_S, RedisDown
from .sends import ClusterSends

logger = logging.getLogger(__name__)

#: events from this node's rooms waiting to be published
OUTBOX_SIZE = 1024
#: a broken subscription is retried after this long
RESUBSCRIBE_S = 1.0


class Events:
    """Publishing (never blocking a room) and subscribing; ``adopt`` runs control commands."""

    def __init__(self, ctx: NodeContext, adopt: Callable[[str], Awaitable[None]], kick: Callable[[], None]) -> None:
        self.ctx = ctx
        self._adopt = adopt
        self._kick = kick  # a heartbeat now: it subscribes to the rooms' channels
        self._out_send, self._out_recv = trio.open_memory_channel[tuple[str, str]](OUTBOX_SIZE)
        self.subscribed: set[str] = set()
        self._ps: Any = None
        self.dropped = 0
        #: reliable sends to players (set by the node: they publish through this outbox)
        self.sends: ClusterSends | None = None

    def publish_nowait(self, room: str | None, data: Any, *, player: str | None = None,
                       others_only: bool = False) -> None:
        """Queue an event for ``room`` (None: every room, or the player's room) on any node."""
        ks = self.ctx.keys
        channel = ks.room_channel(room) if room is not None else ks.all_channel
        self.publish_raw(channel, k.encode_event(data, room=room, player=player,
                                                 origin=self.ctx.id if others_only else None))

    def publish_raw(self, channel: str, msg: str) -> None:
        """Queue ``msg`` for ``channel`` (dropped, and counted, when the outbox is full)."""
        try:
            self._out_send.send_nowait((channel, msg))
        except trio.WouldBlock:
            self.dropped += 1
            logger.warning("node %s: event outbox full; event dropped", self.ctx.id)

    async def publish_loop(self) -> None:
        redis = self.ctx.redis
        async for channel, msg in self._out_recv:
            try:
                await redis.call("publish", partial(redis.r.publish, channel, msg))
            except RedisDown:
                self.dropped += 1

    async def subscribe_loop(self) -> None:
        ks = self.ctx.keys
        while True:
            try:
                async with self.ctx.redis.raw.pubsub(channels=[ks.all_channel, ks.ctl_channel(self.ctx.id)]) as ps:
                    self._ps, self.subscribed = ps, set()
                    self._kick()  # subscribe to the rooms' channels now
                    async for m in ps:
                        if m["type"] == "message":
                            await self._on_message(m["channel"], m["data"])
            except Exception as e:  # any failure of the subscription: resubscribe
                logger.debug("node %s: subscriber: %r", self.ctx.id, e)
            finally:
                self._ps = None
            await trio.sleep(RESUBSCRIBE_S)

    async def follow(self, rooms: list[HostedRoom]) -> None:
        """Subscribe to the channels of exactly these rooms (retried at the next heartbeat)."""
        ps = self._ps
        if ps is None:
            return
        want = {self.ctx.keys.room_channel(r.name) for r in rooms}
        add, drop = want - self.subscribed, self.subscribed - want
        try:
            with trio.fail_after(REDIS_TIMEOUT_S):
                if add:
                    self.ctx.redis.commands += 1
                    await ps.subscribe(*add)
                if drop:
                    self.ctx.redis.commands += 1
                    await ps.unsubscribe(*drop)
        except Exception as e:  # retried at the next heartbeat
            logger.debug("node %s: subscriptions not updated: %r", self.ctx.id, e)
            return
        self.subscribed = want

    async def _on_message(self, channel: str, raw: str) -> None:
        if channel == self.ctx.keys.ctl_channel(self.ctx.id):
            if self.sends is not None and self.sends.answered(raw):
                return
            try:
                room = str(json.loads(raw)["adopt"])
            except (ValueError, KeyError, TypeError):
                logger.warning("node %s: bad command %r", self.ctx.id, raw[:200])
                return
            await self._adopt(room)
            return
        t0 = time.perf_counter()
        try:
            self._deliver(channel, raw)
        finally:
            self.ctx.busy_s += time.perf_counter() - t0

    def _deliver(self, channel: str, raw: str) -> None:
        ev = k.decode_event(raw)
        if ev is None:
            logger.warning("node %s: dropped a malformed event on %s", self.ctx.id, channel)
            return
        if ev.get("origin") == self.ctx.id:
            return  # broadcast_all_rooms already delivered it here
        target = self.ctx.keys.room_of_channel(channel)
        rooms = self.ctx.host.rooms
        if "send" in ev:
            if self.sends is not None:
                self.sends.deliver([r for r in rooms.values() if not r.closed], ev)
            return
        if target is None:
            chosen = list(rooms.values())
        else:
            chosen = [rooms[target]] if target in rooms else []
        for room in chosen:
            if not room.closed:
                room.deliver(ev["data"], ev.get("player"))
