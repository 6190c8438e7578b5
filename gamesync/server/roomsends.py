"""What a room sends beyond itself, through its links (gamesync.ports.RoomLinks): other rooms,
every room, players wherever they are (with an acknowledgement and a reply, or without)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..ports import RoomLinks
from ..sends import PlayerSend


class RoomSends:
    """The part of gamesync.game.RoomAPI that leaves the room (a base of server.room.Room)."""

    links: RoomLinks

    def broadcast_all_rooms(self, data: Any) -> None:
        self.links.publish_all(data)

    def publish(self, room: str, data: Any) -> None:
        self.links.publish(room, data)

    def publish_to_rooms(self, rooms: Iterable[str], data: Any) -> None:
        self.links.publish_to_rooms(list(dict.fromkeys(rooms)), data)  # each room once, in order

    def send_to_player(self, player: str, data: Any) -> None:
        self.links.send_to_player(player, data)

    def send_to_player_reliable(self, player: str, data: Any, timeout: float = 5.0, expect_reply: bool = False,
                                on_result: Callable[[bool], None] | None = None) -> PlayerSend:
        return self.links.send_to_player_reliable(player, data, timeout, expect_reply, on_result)
