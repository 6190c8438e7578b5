"""Push an event into a cluster's rooms from any other program (a web backend, a cron job).

    async with Publisher("redis://127.0.0.1:6379") as pub:
        await pub.to_room("lobby", {"notice": "tournament starts in 5 min"})
        await pub.to_player("alice", {"gift": 3})
        await pub.to_rooms(["lobby", "duel"], {"notice": "..."})
        await pub.to_all({"maintenance_in_s": 300})
        answer = await pub.ask_player("alice", {"confirm": "trade 7"}, timeout=10, expect_reply=True)

Clients get it as a game event (``[0, data]`` in a snapshot's events). Delivery is Redis
pub/sub: at most once, to the rooms running when it is published; a room between hosts
(a failover in progress) misses it. ``data`` is any JSON value.

``ask_player`` is a reliable send (gamesync.sends): the client gets ``[1, data, ack_id]``
and acks it (or answers it, ``[7, ack_id, reply]``); the Publisher offers it again every
0.5 s until a client of the player answers or ``timeout`` passes, and returns what came back.
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import Any

import coredis
import trio

from ..sends import RESEND_S
from . import keys as k


class Publisher:
    """A connection to the cluster's Redis for publishing events."""

    def __init__(self, redis_url: str, prefix: str = k.DEFAULT_PREFIX) -> None:
        self.keys = k.Keys(prefix)
        self._client = coredis.Redis.from_url(redis_url, decode_responses=True, connect_timeout=2, stream_timeout=2)
        self._r: Any = None

    async def __aenter__(self) -> Publisher:
        self._r = await self._client.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._client.__aexit__(et, e, tb)

    async def to_room(self, room: str, data: Any) -> int:
        """Every client in ``room``; returns how many nodes received it (1 if the room is hosted)."""
        return int(await self._r.publish(self.keys.room_channel(room), k.encode_event(data, room=room)))

    async def to_player(self, player: str, data: Any) -> int:
        """The clients of ``player`` (token player id, or name when anonymous) in any room."""
        return int(await self._r.publish(self.keys.all_channel, k.encode_event(data, room=None, player=player)))

    async def to_rooms(self, rooms: list[str], data: Any) -> int:
        """Every client of each of ``rooms`` (each once); returns how many rooms are hosted."""
        return sum([await self.to_room(room, data) > 0 for room in dict.fromkeys(rooms)])

    async def ask_player(self, player: str, data: Any, timeout: float = 5.0,
                         expect_reply: bool = False) -> dict[str, Any]:
        """A reliable send to ``player``: ``{"ok", "acked", "replied", "reply"}`` once a client of
        theirs acks it (``expect_reply``: answers it), or after ``timeout`` s with ok false."""
        send_id = f"pub-{secrets.token_urlsafe(9)}"
        to = self.keys.answer_channel(send_id)
        out: dict[str, Any] = {"ok": False, "acked": False, "replied": False, "reply": None}
        deadline = trio.current_time() + timeout
        async with self._client.pubsub(channels=[to]) as ps, trio.open_nursery() as n:
            n.start_soon(self._offer, player, data, send_id, to, deadline, expect_reply)
            with trio.move_on_at(deadline):
                async for m in ps:
                    raw = m["data"]
                    a = k.decode_answer(raw) if m["type"] == "message" and isinstance(raw, (str, bytes)) else None
                    if a is None or a[0] != send_id:
                        continue
                    out["acked"] = out["acked"] or a[1] or a[2]
                    if a[2] or (a[1] and not expect_reply):
                        out.update(ok=True, replied=a[2], reply=a[3] if a[2] else None)
                        break
            n.cancel_scope.cancel()
        return out

    async def _offer(self, player: str, data: Any, send_id: str, to: str, deadline: float,
                     expect_reply: bool) -> None:
        while (left := deadline - trio.current_time()) > 0:
            send = {"id": send_id, "to": to, "ms": int(left * 1000), "reply": expect_reply}
            await self._r.publish(self.keys.all_channel, k.encode_event(data, room=None, player=player, send=send))
            await trio.sleep(RESEND_S)

    async def to_all(self, data: Any) -> int:
        """Every client of every room of every node."""
        return int(await self._r.publish(self.keys.all_channel, k.encode_event(data, room=None)))


async def publish(redis_url: str, data: Any, *, room: str | list[str] | None = None, player: str | None = None,
                  prefix: str = k.DEFAULT_PREFIX) -> int:
    """One event to ``room`` (or each of a list: returns the rooms hosted), to ``player``, or
    (neither) to every room; returns nodes reached."""
    async with Publisher(redis_url, prefix) as pub:
        if isinstance(room, list):
            return await pub.to_rooms(room, data)
        if room is not None:
            return await pub.to_room(room, data)
        if player is not None:
            return await pub.to_player(player, data)
        return await pub.to_all(data)


def publish_sync(redis_url: str, data: Any, **kw: Any) -> int:
    """``publish`` for code that is not async (runs its own trio loop)."""
    return trio.run(lambda: publish(redis_url, data, **kw))


def ask_player_sync(redis_url: str, player: str, data: Any, timeout: float, expect_reply: bool,
                    prefix: str = k.DEFAULT_PREFIX) -> dict[str, Any]:
    """``Publisher.ask_player`` for code that is not async (runs its own trio loop)."""
    async def ask() -> dict[str, Any]:
        async with Publisher(redis_url, prefix) as pub:
            return await pub.ask_player(player, data, timeout, expect_reply)
    return trio.run(ask)
