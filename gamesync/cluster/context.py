"""What every part of a cluster node shares: who it is, its Redis link, the server it runs in."""

from __future__ import annotations

from dataclasses import dataclass

from ..ports import RoomHost
from .keys import Keys
from .redis import RedisLink


@dataclass
class NodeContext:
    id: str
    url: str  # where clients are redirected for rooms hosted here
    http_url: str | None
    keys: Keys
    redis: RedisLink
    host: RoomHost
    draining: bool = False
    #: where a new room goes: "load" (the least loaded live node) or "local" (the node its
    #: first join reached)
    placement: str = "load"
    #: seconds this node's event loop spent on cluster work it can time (building the
    #: heartbeat, saving and packing room states, handling events): CPU, as it never waits
    #: inside; the Redis socket I/O itself is not in it
    busy_s: float = 0.0
