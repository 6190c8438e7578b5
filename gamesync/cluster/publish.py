"""Push an event into a cluster's rooms from any other program (a web backend, a cron job).

    async with Publisher("redis://127.0.0.1:6379") as pub:
        await pub.to_room("lobby", {"notice": "tournament starts in 5 min"})
        await pub.to_player("alice", {"gift": 3})
        await pub.to_all({"maintenance_in_s": 300})

Clients get it as a game event (``[0, data]`` in a snapshot's events). Delivery is Redis
pub/sub: at most once, to the rooms running when it is published; a room between hosts
(a failover in progress) misses it. ``data`` is any JSON value.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import coredis
import trio

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

    async def to_all(self, data: Any) -> int:
        """Every client of every room of every node."""
        return int(await self._r.publish(self.keys.all_channel, k.encode_event(data, room=None)))


async def publish(redis_url: str, data: Any, *, room: str | None = None, player: str | None = None,
                  prefix: str = k.DEFAULT_PREFIX) -> int:
    """One event to ``room``, to ``player``, or (neither) to every room; returns nodes reached."""
    async with Publisher(redis_url, prefix) as pub:
        if room is not None:
            return await pub.to_room(room, data)
        if player is not None:
            return await pub.to_player(player, data)
        return await pub.to_all(data)


def publish_sync(redis_url: str, data: Any, **kw: Any) -> int:
    """``publish`` for code that is not async (runs its own trio loop)."""
    return trio.run(lambda: publish(redis_url, data, **kw))
