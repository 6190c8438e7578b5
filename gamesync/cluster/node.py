"""A server's membership of a cluster (gamesync.ports.Membership), all through one Redis
(coredis on trio): its parts are the directory (``directory``: placing rooms, reservations,
the lobby), the leases its heartbeat keeps (``leases``), failover, saves, events and drain.

The server calls in from its connection tasks (``place``, ``take_reservation``) and its
rooms reach the cluster through ``links`` (never awaiting). Everything else runs in this
node's own tasks. Redis being slow or gone never stops a room: every call is bounded by
REDIS_TIMEOUT_S, failures are logged once per outage, and the next heartbeat after Redis is
back re-registers the node and re-takes its leases (``keys.RENEW``).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from contextlib import AsyncExitStack
from typing import Any

import trio

from ..core.errors import StartupError, Unavailable
from ..core.saved import SavedRoom
from ..ports import HostedRoom, RoomHost, lobby_entries
from . import keys as k
from .context import NodeContext
from .directory import Directory
from .drain import Drain
from .events import Events
from .failover import Failover
from .leases import Leases
from .links import ClusterLinks
from .redis import REDIS_TIMEOUT_S, RedisDown, RedisLink
from .saves import Saves
from .sends import ClusterSends

logger = logging.getLogger(__name__)

#: leases renewed, node and lobby entries refreshed, presence written
HEARTBEAT_S = 1.0
#: seconds a starting node tries to reach its Redis before it gives up
REDIS_STARTUP_S = 5.0


class ClusterNode:
    """One node's view of the cluster; ``run`` in the server's nursery."""

    def __init__(self, host: RoomHost, rooms: MutableMapping[str, Any], redis_url: str, node_id: str,
                 public_url: str, prefix: str = k.DEFAULT_PREFIX, http_url: str | None = None,
                 save_interval_s: float = 2.0, placement: str = "load") -> None:
        self.ctx = ctx = NodeContext(node_id, public_url, http_url, k.Keys(prefix), RedisLink(redis_url, node_id), host,
                                     placement=placement)
        self.id = node_id
        self.url = public_url
        self.directory = Directory(ctx)
        self.leases = Leases(ctx, self.directory)
        self.saves = Saves(ctx)
        self.failover = Failover(ctx, self.directory)
        self.events = Events(ctx, self.failover.adopt, self.leases.kick.set)
        self.events.sends = self.sends = ClusterSends(ctx, self.events.publish_raw)
        self.drainer = Drain(ctx, self.directory, self.leases, self.saves)
        self.links = ClusterLinks(ctx, rooms, self.directory, self.events, self.saves, self._room_closed,
                                  save_interval_s, self.sends)

    def stats(self) -> dict[str, Any]:
        ctx, redis = self.ctx, self.ctx.redis
        return {"cluster": {"node": self.id, "url": self.url, "redis_up": redis.up, "redis_commands": redis.commands,
                            "redis_outages": redis.outages, "draining": ctx.draining,
                            "events_dropped": self.events.dropped,
                            "rooms_reserved": sum(self.directory.reserved_seats.values()),
                            "busy_s": round(ctx.busy_s, 4)}}

    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, register, and keep the node's share of the cluster up to date until
        cancelled; then release its leases and deregister (bounded in time)."""
        stop, done = trio.Event(), trio.Event()
        inner = trio.CancelScope(shield=True)  # the Redis clients outlive our cancellation...

        async def main(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with inner:
                    await self._main(stop, task_status)
            finally:
                done.set()

        async with trio.open_nursery() as n:
            await n.start(main)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                stop.set()  # ... until the loops have stopped and the node has left
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(2 * REDIS_TIMEOUT_S):
                        await done.wait()
                    inner.cancel()

    async def _main(self, stop: trio.Event, task_status: Any) -> None:
        async with AsyncExitStack() as stack:
            await self.ctx.redis.connect(stack)
            await self._register()
            logger.info("node %s: in the cluster at %s (Redis %s)", self.id, self.url, self.ctx.redis.url)
            async with trio.open_nursery() as n:
                n.start_soon(self._heartbeat_loop)
                n.start_soon(self.failover.loop)
                n.start_soon(self.saves.loop)
                n.start_soon(self.events.publish_loop)
                n.start_soon(self.events.subscribe_loop)
                n.start_soon(self.sends.loop)
                task_status.started()
                await stop.wait()
                n.cancel_scope.cancel()
            with trio.move_on_after(REDIS_TIMEOUT_S):
                try:
                    await self.saves.flush_kept()
                    await self.leases.leave()
                except RedisDown:
                    logger.warning("node %s: could not deregister: Redis unreachable", self.id)

    async def _register(self) -> None:
        """The first heartbeat, retried for up to REDIS_STARTUP_S: a node that cannot reach its
        Redis when it starts does not start (StartupError); once running, it rides outages out."""
        deadline = trio.current_time() + REDIS_STARTUP_S
        while True:
            try:
                return await self.heartbeat()
            except RedisDown:
                if trio.current_time() >= deadline:
                    raise StartupError(f"cannot reach Redis at {self.ctx.redis.url} ({self.ctx.redis.last_error}; "
                                       f"tried for {REDIS_STARTUP_S:g} s)", "redis_url") from None
                await trio.sleep(REDIS_TIMEOUT_S / 2)

    async def _heartbeat_loop(self) -> None:
        while True:
            with trio.move_on_after(HEARTBEAT_S):
                await self.leases.kick.wait()
            self.leases.kick = trio.Event()
            try:
                await self.heartbeat()
            except RedisDown:
                pass
            except Exception:  # a bug of ours must not take the node's rooms down with it
                logger.exception("node %s: heartbeat failed", self.id)

    async def heartbeat(self) -> None:
        """Leases renewed, entries refreshed (``Leases.heartbeat``); its rooms' channels followed."""
        rooms: list[HostedRoom] = [r for r in self.ctx.host.rooms.values() if not r.closed]
        await self.leases.heartbeat(rooms)
        await self.events.follow(rooms)

    # -- Membership: from the server's connection tasks -------------------------------------

    async def place(self, room: str, new_player: bool) -> SavedRoom | None:
        return await self.directory.place(room, new_player)

    async def take_reservation(self, room: str, token: str) -> bool:
        return await self.directory.take_reservation(room, token)

    async def load_kept(self, room: str) -> bytes | None:
        return await self.saves.load_kept(room)

    def close(self) -> None:
        pass  # kept data is written by ``Saves`` as the node runs, and as it drains or leaves

    def room_opened(self, room: HostedRoom) -> None:
        self.leases.room_opened(room)

    def _room_closed(self, room: HostedRoom) -> None:
        if self.leases.room_closed(room):
            self.saves.forget(room.name)

    async def lobby(self) -> list[dict[str, Any]]:
        """Every room of the cluster (this node's own alone while Redis is out of reach)."""
        try:
            return await self.directory.lobby()
        except RedisDown:
            return lobby_entries(self.ctx.host.rooms, self.id, self.url)

    async def view(self, what: str) -> Any:
        try:
            return await (self.directory.presence() if what == "presence" else self.directory.nodes())
        except RedisDown:
            return {"error": "Redis unreachable"}

    async def drain(self, wait_s: float) -> None:
        """Stop taking rooms, and hand them to other nodes (``Drain.run``)."""
        self.ctx.draining = True
        try:
            await self.heartbeat()
        except RedisDown:
            return
        await self.drainer.run(wait_s)


__all__ = ["ClusterNode", "RedisDown", "Unavailable"]
