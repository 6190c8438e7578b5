"""A server on its own: the single-process ``Membership`` and ``RoomLinks`` (gamesync.ports)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from functools import partial
from typing import Any

import trio

from ..core.saved import SavedRoom
from ..ports import HostedRoom, lobby_entries
from ..sends import RESEND_S, Deliveries, PlayerSend, PlayerSends
from .storage import MemoryKept, SqliteKept


class LocalLinks:
    """A room's outside when the server runs alone: the other rooms of this process."""

    save_interval_s = 0.0  # nowhere to save to

    def __init__(self, rooms: MutableMapping[str, Any], kept: MemoryKept | SqliteKept,
                 keep_interval_s: float) -> None:
        self.rooms = rooms
        self.kept = kept
        self.keep_interval_s = keep_interval_s
        self.sends = PlayerSends("local")
        self.deliveries = Deliveries()

    def publish(self, room: str, data: Any) -> None:
        local = self.rooms.get(room)
        if local is not None and not local.closed:
            local.broadcast(data)

    def publish_all(self, data: Any) -> None:
        for room in list(self.rooms.values()):
            room.broadcast(data)

    def publish_to_rooms(self, rooms: list[str], data: Any) -> None:
        for room in rooms:
            self.publish(room, data)

    def send_to_player(self, player: str, data: Any) -> None:
        for room in list(self.rooms.values()):
            room.deliver(data, player)

    def send_to_player_reliable(self, player: str, data: Any, timeout: float, expect_reply: bool,
                                on_result: Callable[[bool], None] | None) -> PlayerSend:
        h = self.sends.open(player, data, timeout, expect_reply, on_result, trio.current_time())
        self.offer_sends()
        return h

    def offer_sends(self) -> None:
        """Time out pending player sends, and offer those due to the rooms here."""
        now = trio.current_time()
        for h in self.sends.due(now):
            self.deliveries.deliver(self.rooms.values(), h.id, h.player, h.data, h.deadline - now, h.expect_reply,
                                    partial(self.sends.answered, h.id), now)

    async def resend_loop(self) -> None:
        while True:
            await trio.sleep(RESEND_S / 2)
            if self.sends.pending:
                self.offer_sends()

    def reserved(self, room: str) -> int:
        return 0

    def offer_save(self, room: str, saved: SavedRoom) -> None:
        pass

    def offer_kept(self, room: str, blob: bytes) -> None:
        self.kept.offer(room, blob)

    def add_busy(self, seconds: float) -> None:
        pass

    def room_closed(self, room: HostedRoom) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]


class Alone:
    """No cluster: every room runs here, the lobby is this server's rooms, kept data is in
    an SQLite file under ``data_dir`` (None: in memory)."""

    def __init__(self, rooms: MutableMapping[str, Any], data_dir: str | None = None,
                 keep_interval_s: float = 2.0) -> None:
        self.rooms = rooms
        self.kept = SqliteKept(data_dir) if data_dir else MemoryKept()
        self.links = LocalLinks(rooms, self.kept, keep_interval_s)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as n:
            await n.start(self.kept.run)
            n.start_soon(self.links.resend_loop)
            task_status.started()

    async def load_kept(self, room: str) -> bytes | None:
        return await self.kept.load(room)

    def close(self) -> None:
        self.kept.close()

    async def place(self, room: str, new_player: bool) -> SavedRoom | None:
        return None

    async def take_reservation(self, room: str, token: str) -> bool:
        return False

    def room_opened(self, room: HostedRoom) -> None:
        pass

    async def lobby(self) -> list[dict[str, Any]]:
        return lobby_entries(self.rooms)

    async def view(self, what: str) -> Any:
        if what == "presence":
            return [{"room": r.name, "client": cid, "name": name, "player": player, "node": None}
                    for r in self.rooms.values() for cid, name, player in r.players]
        return []

    async def drain(self, wait_s: float) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}
