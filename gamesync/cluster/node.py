"""A server's membership of a cluster: its rooms' leases, the lobby, routing, presence,
saves, failover, hand-over and cross-node events, all through one Redis (coredis on trio).

The server calls in from its connection tasks (``place``, ``take_reservation``) and from its
rooms' ticks (``offer_save``, ``publish_nowait``: never awaiting). Everything else runs in
this node's own tasks. Redis being slow or gone never stops a room: every call is bounded
by REDIS_TIMEOUT_S, failures are logged once per outage, and the next heartbeat after Redis
is back re-registers the node and re-takes its leases (``keys.RENEW``).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

import coredis
import coredis.exceptions
import trio

from ..core.errors import GamesyncError, RedisDown, Redirect, Unavailable
from ..core.saved import SavedRoom, pack_saved, unpack_saved
from . import keys as k

if TYPE_CHECKING:
    from ..server.app import Server
    from ..server.room import Room

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: every Redis call gives up after this long (the caller carries on without it)
REDIS_TIMEOUT_S = 1.0
#: leases renewed, node and lobby entries refreshed, presence written
HEARTBEAT_S = 1.0
#: dead nodes looked for (their rooms taken over)
FAILOVER_SCAN_S = 0.5
#: pending room saves written
SAVE_FLUSH_S = 0.25
#: events from this node's rooms waiting to be published
OUTBOX_SIZE = 1024


def now_ms() -> int:
    return int(time.time() * 1000)


class ClusterNode:
    """One node's view of the cluster; ``run`` in the server's nursery."""

    def __init__(self, server: "Server", redis_url: str, node_id: str, public_url: str,
                 prefix: str = k.DEFAULT_PREFIX, http_url: str | None = None) -> None:
        self.server = server
        self.redis_url = redis_url
        self.id = node_id
        self.url = public_url
        self.http_url = http_url
        self.keys = k.Keys(prefix)
        self.draining = False
        self.up = False  # Redis answered the last call
        self.commands = 0  # Redis commands sent by this node (pipelined ones counted one by one)
        self.outages = 0
        self.r: Any = None  # coredis client, text replies
        self.rb: Any = None  # coredis client, bytes replies (saved states)
        self._saves: dict[str, SavedRoom] = {}
        self._out_send, self._out_recv = trio.open_memory_channel[tuple[str, str]](OUTBOX_SIZE)
        self._reserved: dict[str, int] = {}  # live reservations per local room, from the last heartbeat
        self._presence: dict[str, str] | None = None  # what presence holds for us (None: rewrite all)
        self._released: list[str] = []  # rooms closed here whose keys are to go
        self._handed: set[str] = set()  # rooms handed to another node: their lease is not ours to release
        self._kick = trio.Event()
        self._subscribed: set[str] = set()
        self._ps: Any = None
        self._down_since: float | None = None
        self.dropped_events = 0
        #: seconds this node's event loop spent on cluster work it can time (building the
        #: heartbeat, saving and packing room states, handling events): CPU, as it never waits
        #: inside; the Redis socket I/O itself is not in it
        self.busy_s = 0.0

    def stats(self) -> dict[str, Any]:
        return {"node": self.id, "url": self.url, "redis_up": self.up, "redis_commands": self.commands,
                "redis_outages": self.outages, "draining": self.draining, "events_dropped": self.dropped_events,
                "rooms_reserved": sum(self._reserved.values()), "busy_s": round(self.busy_s, 4)}

    # -- plumbing --------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], commands: int = 1) -> T:
        """``await fn()`` within REDIS_TIMEOUT_S; RedisDown if it fails (logged once per outage)."""
        self.commands += commands
        try:
            with trio.fail_after(REDIS_TIMEOUT_S):
                res = await fn()
        except (coredis.exceptions.RedisError, OSError, trio.TooSlowError) as e:
            if self.up or self._down_since is None:
                self.outages += 1
                self._down_since = time.monotonic()
                logger.warning("node %s: Redis unreachable (%s: %s): rooms keep running; retrying", self.id,
                               what, e or type(e).__name__)
            self.up = False
            self._presence = None
            raise RedisDown(what) from None
        if not self.up:
            if self._down_since is not None:
                logger.info("node %s: Redis reachable again after %.1f s: re-registering", self.id,
                            time.monotonic() - self._down_since)
            self.up = True
            self._down_since = None
        return res

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
            t = REDIS_TIMEOUT_S
            self.r = await stack.enter_async_context(coredis.Redis.from_url(
                self.redis_url, decode_responses=True, stream_timeout=t, connect_timeout=t))
            self.rb = await stack.enter_async_context(coredis.Redis.from_url(
                self.redis_url, stream_timeout=t, connect_timeout=t))
            self._renew = self.r.register_script(k.RENEW)
            self._release = self.r.register_script(k.RELEASE)
            self._transfer = self.r.register_script(k.TRANSFER)
            self._reserve = self.r.register_script(k.RESERVE)
            try:
                await self.heartbeat()
            except RedisDown:
                pass
            logger.info("node %s: in the cluster at %s (Redis %s)", self.id, self.url, self.redis_url)
            async with trio.open_nursery() as n:
                n.start_soon(self._heartbeat_loop)
                n.start_soon(self._failover_loop)
                n.start_soon(self._save_loop)
                n.start_soon(self._publish_loop)
                n.start_soon(self._subscribe_loop)
                task_status.started()
                await stop.wait()
                n.cancel_scope.cancel()
            with trio.move_on_after(REDIS_TIMEOUT_S):
                await self._leave()

    # -- routing (from connection tasks) ---------------------------------------------------

    async def place(self, room: str) -> SavedRoom | None:
        """Decide where ``room`` runs. Returns when it is to run here (with its last save, if
        any: a room recreated after its host died or handed it over); raises Redirect (with a
        seat reserved there) when another node hosts it, Unavailable when that cannot be
        known now."""
        ks = self.keys
        for _ in range(3):
            try:
                owner = await self._call("route", lambda: self.r.get(ks.lease(room)))
                if owner == self.id:
                    return await self._load(room)
                if owner is None and not self.draining:
                    won = await self._call("claim", lambda: self.r.set(ks.lease(room), self.id,
                                                                       condition=coredis.PureToken.NX,
                                                                       px=k.LEASE_MS))
                    if won:
                        await self._call("claim", lambda: self.r.sadd(ks.node_rooms(self.id), [room]))
                        logger.info("node %s: room %s claimed", self.id, room)
                        return await self._load(room)
                    continue  # another node got there first: look again
                target = owner
                if target is None:  # draining: a new room goes to a live node
                    target = await self._pick_node()
                    if target is None:
                        raise Unavailable("this node is draining and no other node is up")
                url = await self._call("route", lambda: self.r.hget(ks.node(target), "url"))
                if url is None:
                    raise Unavailable(f"room {room!r} is moving (its host {target} is gone); retry")
                raise Redirect(url, room, k.RESERVATION_MS)
            except RedisDown:
                raise Unavailable("the cluster directory (Redis) is unreachable; retry") from None
        raise Unavailable(f"room {room!r} is changing hosts; retry")

    async def reserve(self, room: str) -> str | None:
        """A reservation token for a seat in ``room`` (hosted elsewhere), or None if it is full."""
        token = secrets.token_urlsafe(12)
        now = now_ms()
        ok = await self._call("reserve", lambda: self._reserve(
            keys=[self.keys.resv(room), self.keys.room(room)],
            args=[token, now, now + k.RESERVATION_MS, 1 << 30]))
        return token if ok else None

    async def take_reservation(self, room: str, token: str) -> bool:
        """Use the reservation ``token`` (True if it was live: the seat was held for this join)."""
        try:
            n = await self._call("reservation", lambda: self.r.zrem(self.keys.resv(room), [token]))
        except RedisDown:
            return False
        if n and self._reserved.get(room, 0) > 0:
            self._reserved[room] -= 1
        return bool(n)

    def reserved(self, room: str) -> int:
        """Seats of ``room`` held for redirected joins (as of the last heartbeat)."""
        return self._reserved.get(room, 0)

    async def _load(self, room: str) -> SavedRoom | None:
        try:
            data = await self._call("load", lambda: self.rb.get(self.keys.state(room)))
        except RedisDown:
            return None
        return unpack_saved(data) if data else None

    async def _pick_node(self) -> str | None:
        """The live node (not this one, not draining) with the fewest rooms."""
        nodes = [n for n in await self.nodes() if n["node"] != self.id and not n["draining"]]
        if not nodes:
            return None
        return min(nodes, key=lambda n: (n["rooms"], random.random()))["node"]

    # -- rooms (from the server and its rooms; never awaiting) -----------------------------

    def room_opened(self, room: "Room") -> None:
        self._handed.discard(room.name)
        # opened again before the heartbeat let the closed one go: its lease stays ours
        self._released = [name for name in self._released if name != room.name]
        self._kick.set()

    def room_closed(self, room: "Room") -> None:
        if room.name in self._handed:
            return
        self._released.append(room.name)
        self._saves.pop(room.name, None)
        self._kick.set()

    def offer_save(self, room: str, saved: SavedRoom) -> None:
        self._saves[room] = saved  # latest only: a newer save replaces one not yet written

    def publish_nowait(self, room: str | None, data: Any, *, player: str | None = None,
                       others_only: bool = False) -> None:
        """Queue an event for ``room`` (None: every room, or the player's room) on any node."""
        channel = self.keys.room_channel(room) if room is not None else self.keys.all_channel
        msg = k.encode_event(data, room=room, player=player, origin=self.id if others_only else None)
        try:
            self._out_send.send_nowait((channel, msg))
        except trio.WouldBlock:
            self.dropped_events += 1
            logger.warning("node %s: event outbox full; event dropped", self.id)

    # -- reading the cluster ---------------------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        ks = self.keys
        names = await self._call("nodes", lambda: self.r.zrange(ks.nodes, now_ms() - k.NODE_DEAD_MS, "+inf",
                                                                 sortby=coredis.PureToken.BYSCORE))
        out = []
        for name in names:
            h = await self._call("nodes", lambda: self.r.hgetall(ks.node(name)))
            if h:
                out.append({"node": name, "url": h.get("url"), "http": h.get("http") or None,
                            "rooms": int(h.get("rooms", 0)), "clients": int(h.get("clients", 0)),
                            "draining": h.get("draining") == "1"})
        return out

    async def lobby(self) -> list[dict[str, Any]]:
        """Every hosted room of the cluster: room, game, clients, max_players, node, url."""
        ks = self.keys
        names = list(await self._call("lobby", lambda: self.r.zrange(
            ks.rooms, now_ms() - k.ROOM_INFO_MS, "+inf", sortby=coredis.PureToken.BYSCORE)))
        if not names:
            return []
        async def read() -> tuple[list[Any], list[Any]]:
            async with self.r.pipeline(transaction=False) as pl:
                infos = [pl.hgetall(ks.room(n)) for n in names]
                owners = [pl.get(ks.lease(n)) for n in names]
            return infos, owners
        infos, owners = await self._call("lobby", read, commands=2 * len(names))
        out = []
        for name, fi, fo in zip(names, infos, owners):
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
            h = await self._call("presence", lambda: self.r.hgetall(self.keys.presence(n["node"])))
            out.extend(json.loads(v) for v in h.values())
        return sorted(out, key=lambda e: (e["room"], e["client"]))

    # -- heartbeat -------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            with trio.move_on_after(HEARTBEAT_S):
                await self._kick.wait()
            self._kick = trio.Event()
            try:
                await self.heartbeat()
            except RedisDown:
                pass
            except Exception:  # a bug of ours must not take the node's rooms down with it
                logger.exception("node %s: heartbeat failed", self.id)

    async def heartbeat(self) -> None:
        """Register the node, renew its leases, refresh its lobby entries and presence,
        release closed rooms' keys, count reservations, follow its rooms' channels."""
        ks, me, now = self.keys, self.id, now_ms()
        rooms = [r for r in self.server.rooms.values() if not r.closed]
        released, self._released = self._released, []

        async def beat() -> tuple[Any, list[Any]]:
            t0 = time.perf_counter()
            async with self.r.pipeline(transaction=False) as pl:
                pl.hset(ks.node(me), {"url": self.url, "http": self.http_url or "", "rooms": len(rooms),
                                      "clients": sum(len(r.sessions) for r in rooms),
                                      "draining": int(self.draining), "seen": now})
                pl.pexpire(ks.node(me), k.NODE_TTL_MS)
                pl.zadd(ks.nodes, {me: now})
                renewed = self._renew(keys=[ks.lease(r.name) for r in rooms], args=[me, k.LEASE_MS], client=pl) \
                    if rooms else None
                for r in rooms:
                    pl.hset(ks.room(r.name), {"game": r.game_name, "clients": len(r.players),
                                              "max_players": r.game.max_players, "node": me, "url": self.url,
                                              "updated": now})
                    pl.pexpire(ks.room(r.name), k.ROOM_INFO_MS)
                    pl.zadd(ks.rooms, {r.name: now})
                    pl.zremrangebyscore(ks.resv(r.name), "-inf", now)
                counts = [pl.zcard(ks.resv(r.name)) for r in rooms]
                if rooms:
                    pl.sadd(ks.node_rooms(me), [r.name for r in rooms])
                for name in released:
                    self._release(keys=[ks.lease(name)], args=[me], client=pl)
                    pl.srem(ks.node_rooms(me), [name])
                    pl.zrem(ks.rooms, [name])
                    pl.delete([ks.room(name), ks.state(name), ks.resv(name)])
                pl.zremrangebyscore(ks.rooms, "-inf", now - k.ROOM_INFO_MS)
                self._write_presence(pl, rooms)
                self.busy_s += time.perf_counter() - t0  # the pipeline is sent as the block exits
            return renewed, counts

        try:
            renewed, counts = await self._call("heartbeat", beat, commands=5 + 6 * len(rooms) + 4 * len(released))
        except RedisDown:
            self._released = released + self._released  # their keys go at the next heartbeat
            raise
        results = await renewed if renewed is not None else []
        self._reserved = {r.name: int(await c) for r, c in zip(rooms, counts)}
        for r, res in zip(rooms, results):
            if res == 2:
                logger.info("node %s: room %s: lease taken again (it had lapsed)", me, r.name)
            elif res == 0 and not r.closed:
                await self._lost(r)
        await self._sync_subscriptions(rooms)

    def _write_presence(self, pl: Any, rooms: list["Room"]) -> None:
        key = self.keys.presence(self.id)
        now = {f"{r.name}/{cid}": json.dumps({"room": r.name, "client": cid, "name": name, "player": player,
                                              "node": self.id}, separators=(",", ":"))
               for r in rooms for cid, name, player in r.players}
        old = self._presence
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
        self.commands += bool(gone) + bool(new)
        self._presence = now

    async def _lost(self, room: "Room") -> None:
        """Another node holds this room's lease (it lapsed while Redis was out of reach and a
        failover took the room): this copy stops and its players go to the new host."""
        owner = await self._call("lost", lambda: self.r.get(self.keys.lease(room.name)))
        url = await self._call("lost", lambda: self.r.hget(self.keys.node(owner), "url")) if owner else None
        logger.warning("node %s: room %s is now hosted by %s: closing this copy", self.id, room.name, owner)
        self._handed.add(room.name)
        room.stop()
        room.shut(Redirect(url, room.name, k.RESERVATION_MS) if url else Unavailable("the room moved; retry"))

    async def _sync_subscriptions(self, rooms: list["Room"]) -> None:
        ps = self._ps
        if ps is None:
            return
        want = {self.keys.room_channel(r.name) for r in rooms}
        add, drop = want - self._subscribed, self._subscribed - want
        try:
            with trio.fail_after(REDIS_TIMEOUT_S):
                if add:
                    await ps.subscribe(*add)
                if drop:
                    await ps.unsubscribe(*drop)
        except Exception as e:  # noqa: BLE001 - retried at the next heartbeat
            logger.debug("node %s: subscriptions not updated: %r", self.id, e)
            return
        self.commands += bool(add) + bool(drop)
        self._subscribed = want

    async def _leave(self) -> None:
        """Leaving the cluster (shutdown): release the leases of the rooms still here (their last
        saves stay, so whichever node gets the next join resumes them) and deregister."""
        ks, me = self.keys, self.id
        names = [r.name for r in self.server.rooms.values() if r.name not in self._handed] + self._released
        try:
            async with self.r.pipeline(transaction=False) as pl:
                for name in names:
                    self._release(keys=[ks.lease(name)], args=[me], client=pl)
                for name in self._released:
                    pl.delete([ks.state(name)])
                pl.delete([ks.node(me), ks.presence(me), ks.node_rooms(me)])
                pl.zrem(ks.nodes, [me])
        except (coredis.exceptions.RedisError, OSError) as e:
            logger.warning("node %s: could not deregister: %s", self.id, e)
            return
        logger.info("node %s: left the cluster (%d leases released)", me, len(names))

    # -- failover --------------------------------------------------------------------------

    async def _failover_loop(self) -> None:
        while True:
            await trio.sleep(FAILOVER_SCAN_S * random.uniform(0.8, 1.2))
            if self.draining or self.server.stopping:
                continue
            try:
                await self._take_over_dead()
            except RedisDown:
                pass
            except Exception:
                logger.exception("node %s: failover scan failed", self.id)

    async def _take_over_dead(self) -> None:
        """Claim the rooms of nodes whose heartbeat stopped, and recreate them here."""
        ks = self.keys
        dead = await self._call("failover", lambda: self.r.zrange(ks.nodes, "-inf", now_ms() - k.NODE_DEAD_MS,
                                                                  sortby=coredis.PureToken.BYSCORE))
        for node in dead:
            if node == self.id:
                continue
            rooms = list(await self._call("failover", lambda: self.r.smembers(ks.node_rooms(node))))
            random.shuffle(rooms)
            for room in rooms:
                if len(self.server.rooms) >= self.server.config.max_rooms:
                    return
                owner = await self._call("failover", lambda: self.r.get(ks.lease(room)))
                if owner is None:
                    won = await self._call("failover", lambda: self.r.set(
                        ks.lease(room), self.id, condition=coredis.PureToken.NX, px=k.LEASE_MS))
                    if not won:
                        continue
                    await self._call("failover", lambda: self.r.sadd(ks.node_rooms(self.id), [room]))
                    logger.info("node %s: room %s taken over from dead node %s", self.id, room, node)
                    await self._adopt(room)
                if owner != node:
                    await self._call("failover", lambda: self.r.srem(ks.node_rooms(node), [room]))
            left = await self._call("failover", lambda: self.r.scard(ks.node_rooms(node)))
            if not left:
                await self._call("failover", lambda: self.r.zrem(ks.nodes, [node]))
                await self._call("failover", lambda: self.r.delete([ks.node_rooms(node), ks.presence(node)]))
                logger.info("node %s: dead node %s forgotten", self.id, node)

    async def _adopt(self, room: str) -> None:
        """Run ``room`` here now that its lease is ours (from its last save, if any); if it
        cannot run here, let the lease go so that another node can take it."""
        try:
            await self.server.host_room(room, await self._load(room), None)
        except GamesyncError as e:
            logger.warning("node %s: cannot run room %s here (%s); releasing it", self.id, room, e.reason)
            try:  # its last save stays for whichever node gets it next
                await self._call("release", lambda: self._release(keys=[self.keys.lease(room)], args=[self.id]))
                await self._call("release", lambda: self.r.srem(self.keys.node_rooms(self.id), [room]))
            except RedisDown:
                pass

    # -- saves, events ---------------------------------------------------------------------

    async def _save_loop(self) -> None:
        while True:
            await trio.sleep(SAVE_FLUSH_S)
            if not self._saves:
                continue
            saves, self._saves = self._saves, {}
            t0 = time.perf_counter()
            blobs = {name: pack_saved(s) for name, s in saves.items() if name in self.server.rooms}
            self.busy_s += time.perf_counter() - t0
            try:
                await self._write_saves(blobs)
            except RedisDown:
                pass
            except Exception:
                logger.exception("node %s: saving room states failed", self.id)

    async def _write_saves(self, blobs: dict[str, bytes]) -> None:
        async def write() -> None:
            async with self.rb.pipeline(transaction=False) as pl:
                for name, blob in blobs.items():
                    pl.set(self.keys.state(name), blob, px=k.STATE_MS)
        await self._call("save", write, commands=len(blobs))

    async def _publish_loop(self) -> None:
        async for channel, msg in self._out_recv:
            try:
                await self._call("publish", lambda: self.r.publish(channel, msg))
            except RedisDown:
                self.dropped_events += 1

    async def _subscribe_loop(self) -> None:
        ks = self.keys
        while True:
            try:
                async with self.r.pubsub(channels=[ks.all_channel, ks.ctl_channel(self.id)]) as ps:
                    self._ps, self._subscribed = ps, set()
                    self._kick.set()  # subscribe to the rooms' channels now
                    async for m in ps:
                        if m["type"] == "message":
                            await self._on_message(m["channel"], m["data"])
            except Exception as e:  # noqa: BLE001 - any failure of the subscription: resubscribe
                logger.debug("node %s: subscriber: %r", self.id, e)
            finally:
                self._ps = None
            await trio.sleep(HEARTBEAT_S)

    async def _on_message(self, channel: str, raw: str) -> None:
        ks = self.keys
        if channel == ks.ctl_channel(self.id):
            try:
                cmd = json.loads(raw)
                room = str(cmd["adopt"])
            except (ValueError, KeyError, TypeError):
                logger.warning("node %s: bad command %r", self.id, raw[:200])
                return
            await self._adopt(room)
            return
        t0 = time.perf_counter()
        try:
            self._deliver(channel, raw)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _deliver(self, channel: str, raw: str) -> None:
        ks = self.keys
        ev = k.decode_event(raw)
        if ev is None:
            logger.warning("node %s: dropped a malformed event on %s", self.id, channel)
            return
        if ev.get("origin") == self.id:
            return  # broadcast_all_rooms already delivered it here
        target = ks.room_of_channel(channel)
        rooms = self.server.rooms
        chosen = [rooms[target]] if target in rooms else [] if target is not None else list(rooms.values())
        for room in chosen:
            if not room.closed:
                room.deliver(ev["data"], ev.get("player"))

    # -- drain -----------------------------------------------------------------------------

    async def drain(self, wait_s: float) -> None:
        """Stop taking rooms; hand every room whose game saves its state to another node (its
        players follow a redirect and resume their seats there); give the others up to
        ``wait_s`` to finish, then hand them over as they are (they start afresh there)."""
        self.draining = True
        try:
            await self.heartbeat()
        except RedisDown:
            return
        logger.info("node %s: draining %d rooms", self.id, len(self.server.rooms))
        for room in list(self.server.rooms.values()):
            saved = room.save() if not room.closed else None
            if saved is not None:
                await self._hand_over(room, saved)
        with trio.move_on_after(wait_s):
            while any(not r.closed for r in self.server.rooms.values()):
                await trio.sleep(0.1)
        for room in list(self.server.rooms.values()):
            if not room.closed:
                await self._hand_over(room, None)

    async def _hand_over(self, room: "Room", saved: SavedRoom | None) -> None:
        ks, me = self.keys, self.id
        try:
            target = await self._pick_node()
            if target is None:
                logger.warning("node %s: no node to hand room %s to; it ends here", me, room.name)
                return
            url = await self._call("hand-over", lambda: self.r.hget(ks.node(target), "url"))
            self._handed.add(room.name)
            room.stop()  # no tick after the save below
            if saved is not None:
                await self._write_saves({room.name: pack_saved(saved)})
            else:
                await self._call("hand-over", lambda: self.r.delete([ks.state(room.name)]))
            ok = await self._call("hand-over", lambda: self._transfer(
                keys=[ks.lease(room.name), ks.node_rooms(me), ks.node_rooms(target)],
                args=[me, target, k.LEASE_MS, room.name]))
            if ok:
                await self._call("hand-over", lambda: self.r.publish(ks.ctl_channel(target),
                                                                     json.dumps({"adopt": room.name})))
            logger.info("node %s: room %s handed over to %s%s", me, room.name, target,
                        " with its state" if saved is not None else "")
            room.shut(Redirect(url, room.name, k.RESERVATION_MS) if url else Unavailable("room moved; retry"))
        except RedisDown:
            logger.warning("node %s: hand-over of room %s failed: Redis unreachable", me, room.name)

