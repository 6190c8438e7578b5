"""Which rooms run here: placing a join's room (here, or a Redirect from the cluster),
creating rooms (from a save when a node takes one over), one at a time per name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ..core import protocol as p
from ..core.errors import GoingAway, InternalError, ServerFull, UnknownGame
from ..core.saved import SavedRoom, unpack_kept
from ..ports import Membership
from .config import ServerConfig
from .room import Room

logger = logging.getLogger(__name__)


class RoomHosting:
    """The server's rooms by name, and client ids (unique across its rooms)."""

    def __init__(self, config: ServerConfig, rooms: dict[str, Room], cluster: Membership,
                 stopping: Callable[[], bool]) -> None:
        self.config = config
        self.rooms = rooms
        self.cluster = cluster
        self.nursery: trio.Nursery | None = None  # where rooms run (the server's)
        self._stopping = stopping
        self._placing: dict[str, trio.Lock] = {}  # rooms being placed or created, one at a time
        self._next_client_id = 1

    def new_client_id(self) -> int:
        cid = self._next_client_id
        self._next_client_id += 1
        return cid

    async def room_for(self, join: p.Join, reservation: str | None = None) -> Room:
        """The room for ``join``: running here, or placed here (created, or recreated from its
        last save); a Redirect when it runs on another node."""
        room = self.rooms.get(join.room)
        if room is None or room.closed:
            saved = await self.cluster.place(join.room, new_player=join.resume is None)
            if reservation:
                await self.cluster.take_reservation(join.room, reservation)
            room = await self.host_room(join.room, saved, join.game)
        elif reservation:
            await self.cluster.take_reservation(join.room, reservation)
        if join.game is not None and join.game != room.game_name:
            raise UnknownGame(f"room {join.room!r} runs {room.game_name!r}, not {join.game!r}")
        return room

    async def host_room(self, name: str, saved: SavedRoom | None, game: str | None) -> Room:
        """Run room ``name`` here (a cluster placed it, took it over or was handed it), from its
        last save if there is one; the running room if it already is."""
        lock = self._placing.setdefault(name, trio.Lock())
        try:
            async with lock:
                room = self.rooms.get(name)
                if room is not None and not room.closed:
                    return room
                if self._stopping():
                    raise GoingAway("server shutting down")
                if saved is not None and game is not None and saved.game != game:
                    saved = None  # the join wants another game: the old room's state does not fit
                game_name = saved.game if saved is not None else game or self.config.default_game
                kept = None if saved is not None else await self._kept(name, game_name)
                return await self._create_room(name, game_name, saved, kept)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._placing.pop(name, None)

    async def _kept(self, name: str, game_name: str) -> Any:
        """What the last room ``name`` of ``game_name`` kept, or None."""
        try:
            blob = await self.cluster.load_kept(name)
        except Exception:  # a room that starts without its kept data beats no room at all
            logger.exception("room %s: its kept data could not be read; starting without it", name)
            return None
        return unpack_kept(blob, game_name) if blob is not None else None

    async def _create_room(self, name: str, game_name: str, saved: SavedRoom | None = None, kept: Any = None) -> Room:
        factory = self.config.games.get(game_name)
        if factory is None:
            raise UnknownGame(f"no game {game_name!r} here (have: {', '.join(sorted(self.config.games))})")
        if len(self.rooms) >= self.config.max_rooms:
            raise ServerFull(f"server is at its limit of {self.config.max_rooms} rooms")
        try:
            try:
                room = Room(self.cluster.links, self.config, name, game_name, factory(**self.config.game_options),
                            saved, kept)
            except Exception:
                if saved is None:
                    raise
                logger.exception("room %s: its saved state did not load; starting afresh", name)
                room = Room(self.cluster.links, self.config, name, game_name, factory(**self.config.game_options))
        except Exception:
            logger.exception("room %s: game %s failed to start", name, game_name)
            raise InternalError(f"game {game_name!r} failed to start") from None
        if saved is not None:
            self._next_client_id = max([self._next_client_id] + [s.client_id + 1 for s in saved.seats])
        self.rooms[name] = room
        self.cluster.room_opened(room)
        assert self.nursery is not None
        await self.nursery.start(room.run)
        logger.info("room %s: created (game %s)%s", name, game_name, " from its last save" if saved else "")
        return room
