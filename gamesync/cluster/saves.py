"""Room saves: the newest save of each room, written to Redis every SAVE_FLUSH_S."""

from __future__ import annotations

import logging
import time

import trio

from ..core.saved import SavedRoom, pack_saved
from . import keys as k
from .context import NodeContext
from .redis import Counted, RedisDown

logger = logging.getLogger(__name__)

#: pending room saves written
SAVE_FLUSH_S = 0.25


class Saves:
    """Saves offered by the rooms (latest only), and their writing."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.pending: dict[str, SavedRoom] = {}

    def offer(self, room: str, saved: SavedRoom) -> None:
        self.pending[room] = saved  # latest only: a newer save replaces one not yet written

    def forget(self, room: str) -> None:
        self.pending.pop(room, None)

    async def loop(self) -> None:
        while True:
            await trio.sleep(SAVE_FLUSH_S)
            if not self.pending:
                continue
            saves, self.pending = self.pending, {}
            t0 = time.perf_counter()
            rooms = self.ctx.host.rooms
            blobs = {name: pack_saved(s) for name, s in saves.items() if name in rooms}
            self.ctx.busy_s += time.perf_counter() - t0
            try:
                await self.write(blobs)
            except RedisDown:
                pass
            except Exception:
                logger.exception("node %s: saving room states failed", self.ctx.id)

    async def write(self, blobs: dict[str, bytes]) -> None:
        def write(pl: Counted) -> None:
            for name, blob in blobs.items():
                pl.set(self.ctx.keys.state(name), blob, px=k.STATE_MS)
        await self.ctx.redis.pipeline("save", write, binary=True)
