"""A room's outside in a cluster (gamesync.ports.RoomLinks): rooms and players on any node,
seats held for redirected joins, saves to Redis."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from ..core.saved import SavedRoom
from ..ports import HostedRoom
from ..sends import PlayerSend
from .context import NodeContext
from .directory import Directory
from .events import Events
from .saves import Saves
from .sends import ClusterSends


class ClusterLinks:
    def __init__(self, ctx: NodeContext, rooms: MutableMapping[str, Any], directory: Directory, events: Events,
                 saves: Saves, closed: Callable[[HostedRoom], None], save_interval_s: float,
                 sends: ClusterSends) -> None:
        self.ctx = ctx
        self.rooms = rooms
        self.directory = directory
        self.events = events
        self.saves = saves
        self._closed = closed
        self.save_interval_s = save_interval_s
        self.keep_interval_s = save_interval_s
        self.sends = sends

    def publish(self, room: str, data: Any) -> None:
        local = self.rooms.get(room)
        if local is not None and not local.closed:
            local.broadcast(data)
        else:
            self.events.publish_nowait(room, data)

    def publish_all(self, data: Any) -> None:
        for room in list(self.rooms.values()):
            room.broadcast(data)
        self.events.publish_nowait(None, data, others_only=True)

    def publish_to_rooms(self, rooms: list[str], data: Any) -> None:
        for room in rooms:
            self.publish(room, data)

    def send_to_player(self, player: str, data: Any) -> None:
        self.events.publish_nowait(None, data, player=player)

    def send_to_player_reliable(self, player: str, data: Any, timeout: float, expect_reply: bool,
                                on_result: Callable[[bool], None] | None) -> PlayerSend:
        return self.sends.open(player, data, timeout, expect_reply, on_result)

    def reserved(self, room: str) -> int:
        return self.directory.reserved(room)

    def offer_save(self, room: str, saved: SavedRoom) -> None:
        self.saves.offer(room, saved)

    def offer_kept(self, room: str, blob: bytes) -> None:
        self.saves.offer_kept(room, blob)

    def add_busy(self, seconds: float) -> None:
        self.ctx.busy_s += seconds

    def room_closed(self, room: HostedRoom) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            self._closed(room)
