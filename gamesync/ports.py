"""The narrow interfaces between the server and what is around it, as ``typing.Protocol``s.

- ``RoomLinks``: all a room reaches outside itself (other rooms, players anywhere, seats held
  for redirected joins, saves, busy time). ``server.alone.LocalLinks`` is the single-process
  one, ``cluster.links.ClusterLinks`` the cluster's.
- ``Membership``: what the server asks of the cluster it belongs to (where a room runs, the
  lobby, drain...). ``server.alone.Alone`` is a server on its own, ``cluster.node.ClusterNode``
  a node.
- ``HostedRoom`` and ``RoomHost``: what the cluster sees of a room and of the server.

Imports only the core: the server and the cluster both import this module, never each other's
classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .core.errors import GamesyncError
from .core.saved import SavedRoom
from .sends import PlayerSend


class HostedRoom(Protocol):
    """A room as its host and the cluster see it."""

    name: str
    game_name: str
    closed: bool

    @property
    def players(self) -> list[tuple[int, str, str | None]]: ...

    @property
    def clients(self) -> int: ...

    @property
    def max_players(self) -> int: ...

    @property
    def tick_load(self) -> float:
        """Share of one core its recent ticks took."""

    def stop(self) -> None:
        """Stop ticking now (empty, or moving to another node); its sessions stay until closed."""

    def close_sessions(self, err: GamesyncError) -> None:
        """Close every session with ``err``."""

    def save(self) -> SavedRoom | None:
        """Its state for a save (None: its game does not save)."""

    def deliver(self, data: Any, player: str | None = None) -> int:
        """An event from outside to everyone, or to the clients of ``player``."""

    def send_reliable(self, client_id: int, data: Any, timeout: float = 5.0,
                      on_result: Callable[[bool], None] | None = None, expect_reply: bool = False,
                      on_ack: Callable[[], None] | None = None) -> Any:
        """A message a client must acknowledge (and, ``expect_reply``, answer): gamesync.game.RoomAPI."""


class RoomHost(Protocol):
    """The server as the cluster sees it."""

    @property
    def rooms(self) -> Mapping[str, HostedRoom]: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def max_rooms(self) -> int: ...

    async def host_room(self, name: str, saved: SavedRoom | None, game: str | None) -> HostedRoom | None:
        """Run room ``name`` here (from ``saved`` if given); the running room if it already is."""


class RoomLinks(Protocol):
    """What a room may do outside itself; none of it ever blocks the tick."""

    #: seconds between state saves of rooms whose game opts in (0: no saves)
    save_interval_s: float
    #: seconds between takes of what a game keeps past its room (``Game.keep_state``; 0: none)
    keep_interval_s: float

    def publish(self, room: str, data: Any) -> None:
        """An event to every client of ``room``, wherever it runs."""

    def publish_all(self, data: Any) -> None:
        """An event to every client of every room (this one included)."""

    def publish_to_rooms(self, rooms: list[str], data: Any) -> None:
        """An event to every client of each of ``rooms`` (distinct), wherever they run."""

    def send_to_player(self, player: str, data: Any) -> None:
        """An event to the clients of ``player`` in any room."""

    def send_to_player_reliable(self, player: str, data: Any, timeout: float, expect_reply: bool,
                                on_result: Callable[[bool], None] | None) -> PlayerSend:
        """A message to the clients of ``player`` in any room, acknowledged (and answered) by
        one of them within ``timeout`` (gamesync.sends)."""

    def reserved(self, room: str) -> int:
        """Seats of ``room`` held for joins redirected here."""

    def offer_save(self, room: str, saved: SavedRoom) -> None:
        """The room's newest save (a newer one replaces one not yet written)."""

    def offer_kept(self, room: str, blob: bytes) -> None:
        """What the room's game keeps past the room (``core.saved.pack_kept``), latest only."""

    def add_busy(self, seconds: float) -> None:
        """CPU spent on cluster work in the room's tick (saving)."""

    def room_closed(self, room: HostedRoom) -> None:
        """The room stopped: joins from now on create a new one."""


class Membership(Protocol):
    """The cluster (or the lack of one) as the server sees it."""

    @property
    def links(self) -> RoomLinks:
        """What its rooms reach outside themselves through."""

    async def run(self, task_status: Any = ...) -> None: ...

    async def place(self, room: str, new_player: bool) -> SavedRoom | None:
        """Where ``room`` runs: here (with its last save, if any) or a Redirect (with a seat held
        there for a ``new_player``)."""

    async def take_reservation(self, room: str, token: str) -> bool: ...

    async def load_kept(self, room: str) -> bytes | None:
        """What the last room of that name kept (``RoomLinks.offer_kept``), if anything."""

    def close(self) -> None:
        """Write what rooms kept and has not been written yet (every room has stopped)."""

    def room_opened(self, room: HostedRoom) -> None: ...

    async def lobby(self) -> list[dict[str, Any]]: ...

    async def view(self, what: str) -> Any:
        """``presence`` or ``nodes``."""

    async def drain(self, wait_s: float) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def lobby_entries(rooms: Mapping[str, HostedRoom], node: str | None = None,
                  url: str | None = None) -> list[dict[str, Any]]:
    """The lobby entries of the rooms running here."""
    return [{"room": r.name, "game": r.game_name, "clients": r.clients, "max_players": r.max_players,
             **({"node": node, "url": url} if node else {})}
            for r in rooms.values() if not r.closed]
