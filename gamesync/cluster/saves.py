"""Room saves, and what rooms keep past themselves: the newest of each room, written to
Redis every SAVE_FLUSH_S."""

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
        self.kept: dict[str, bytes] = {}  # kept data not yet written (core.saved.pack_kept)

    def offer(self, room: str, saved: SavedRoom) -> None:
        self.pending[room] = saved  # latest only: a newer save replaces one not yet written

    def offer_kept(self, room: str, blob: bytes) -> None:
        self.kept[room] = blob  # latest only; written even once the room has closed

    async def load_kept(self, room: str) -> bytes | None:
        """What the last room ``room`` kept: not yet written, or from Redis (None when down)."""
        blob = self.kept.get(room)
        if blob is not None:
            return blob
        try:
            data = await self.ctx.redis.call("kept", lambda: self.ctx.redis.rb.get(self.ctx.keys.kept(room)))
        except RedisDown:
            logger.warning("node %s: room %s starts without its kept data: Redis unreachable", self.ctx.id, room)
            return None
        return bytes(data) if data else None

    def forget(self, room: str) -> None:
        self.pending.pop(room, None)

    async def loop(self) -> None:
        while True:
            await trio.sleep(SAVE_FLUSH_S)
            await self.flush_kept()
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

    async def flush_kept(self) -> None:
        """Write the kept data offered since the last flush (kept for the next try if Redis is down)."""
        if not self.kept:
            return
        kept, self.kept = self.kept, {}

        def write(pl: Counted) -> None:
            for name, blob in kept.items():
                pl.set(self.ctx.keys.kept(name), blob, px=k.KEPT_MS)
        try:
            await self.ctx.redis.pipeline("kept", write, binary=True)
        except Exception as e:
            self.kept = {**kept, **self.kept}
            if not isinstance(e, RedisDown):
                logger.exception("node %s: writing kept data failed", self.ctx.id)

    async def write(self, blobs: dict[str, bytes]) -> None:
        def write(pl: Counted) -> None:
            for name, blob in blobs.items():
                pl.set(self.ctx.keys.state(name), blob, px=k.STATE_MS)
        await self.ctx.redis.pipeline("save", write, binary=True)
