"""What a room's game keeps past the room (``Game.keep_state``): taken every keep interval
and when the room stops, handed to the room's links when it changed (they write it: an
SQLite file, or Redis in a cluster), and given back to the next room of that name."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..core.saved import pack_kept
from ..game import Game
from ..ports import RoomLinks

logger = logging.getLogger(__name__)


class Keeper:
    def __init__(self, links: RoomLinks, room: str, game_name: str, game: Game, tick_rate: float) -> None:
        self.links = links
        self.room = room
        self.game_name = game_name
        self.game = game
        #: ticks between takes; 0: the game keeps nothing (or the links keep nothing)
        interval = links.keep_interval_s
        self.every = max(1, round(interval * tick_rate)) if interval > 0 else 0
        self._last: bytes | None = None

    def restore(self, kept: Any) -> None:
        """Give the game what the last room of its name kept (after ``setup``; None: nothing)."""
        if kept is None:
            return
        try:
            self.game.restore_kept(kept)
        except Exception:
            logger.exception("room %s: the game failed to take back its kept data; starting without it", self.room)

    def tick(self, tick: int) -> None:
        """Take it if ``tick`` is one of the keep interval's."""
        if self.every and tick % self.every == 0:
            self.take()

    def take(self) -> None:
        """Take what the game keeps, and offer it when it changed since the last take."""
        if not self.every:
            return
        t0 = time.perf_counter()
        try:
            data = self.game.keep_state()
            if data is None:
                self.every = 0  # the game keeps nothing
                return
            blob = pack_kept(self.game_name, data)
        except Exception:
            logger.exception("room %s: the game failed to give its kept data", self.room)
            return
        finally:
            self.links.add_busy(time.perf_counter() - t0)
        if blob != self._last:
            self._last = blob
            self.links.offer_kept(self.room, blob)
