"""The interface a game implements, and the handle through which it talks to its room.

A game owns the rules; the server owns time, sockets and sync. One ``Game`` instance runs
per room. Every method is called from the room's tick task, never concurrently, and must
not block: it is synchronous on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from .core.errors import ProtocolViolation
from .core.inputspec import InputBatch, IntInputs
from .core.interest import Interest
from .core.schema import Schema
from .core.world import World


class ReliableHandle(Protocol):
    """A reliable message on its way: ``result`` is True (acked; for a request, answered),
    False (timed out or the client left) or None (pending); ``wait()`` from trio code returns
    the outcome. ``acked``: it arrived (a request can time out waiting for its reply after
    that); ``reply``: the client's answer to a request."""

    result: bool | None
    acked: bool
    reply: Any

    async def wait(self) -> bool: ...


class ViewsAPI(Protocol):
    """Who sees what, in a room whose game declares ``interest`` (docs/games.md, "Interest
    management"). Entities are named by slot, as in the world."""

    def focus(self, client_id: int, slot: int | None = None, point: tuple[float, float] | None = None) -> None:
        """Centre a client's view on the entity at ``slot`` (it follows it) or on ``point``."""

    def radius(self, client_id: int, r: float | None = None) -> float:
        """Set (with ``r``) and return a client's view radius."""

    def team(self, client_id: int, team: int | None) -> None:
        """Put a client in a team (None: in none)."""

    def scope(self, slots: Any, scope: str = "spatial", who: int | None = None) -> None:
        """Who sees these entities: "spatial" (clients near them), "everyone", "team" (team
        ``who``) or "owner" (client ``who`` only)."""

    def own(self, slots: Any, client_id: int | None) -> None:
        """A client (None: no one) receives these entities' private fields (``Interest.private``)."""

    def show(self, client_id: int, slots: Any) -> None:
        """A client sees these entities wherever they are."""

    def hide(self, client_id: int, slots: Any) -> None:
        """A client never sees these entities, even near them."""

    def unset(self, client_id: int, slots: Any) -> None:
        """Drop a client's show/hide exceptions for these entities."""


class RoomAPI(Protocol):
    """What a game may do with its room (the server's rooms implement it)."""

    name: str
    world: World
    tick: int
    tick_rate: float

    @property
    def views(self) -> ViewsAPI | None:
        """Who sees what; None unless the game declares ``interest``."""

    @property
    def client_ids(self) -> list[int]: ...

    def send(self, client_id: int, data: Any) -> None:
        """Deliver an event to one client with its next snapshot."""

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        """Deliver an event to every client in the room (optionally all but one)."""

    def broadcast_all_rooms(self, data: Any) -> None:
        """Deliver an event to every client of every room on this server (in a cluster: on
        every node)."""

    def publish(self, room: str, data: Any) -> None:
        """Deliver an event to every client of ``room``, wherever it runs (this node or, in a
        cluster, another one)."""

    def publish_to_rooms(self, rooms: Iterable[str], data: Any) -> None:
        """Deliver an event to every client of each of ``rooms`` (each room once), wherever
        they run."""

    def send_to_player(self, player: str, data: Any) -> None:
        """Deliver an event to a player (token player id, or name when anonymous) wherever they
        are: this room, another room, another node. At most once, unconfirmed."""

    def send_to_player_reliable(self, player: str, data: Any, timeout: float = 5.0, expect_reply: bool = False,
                                on_result: Callable[[bool], None] | None = None) -> ReliableHandle:
        """Deliver a message to a player wherever they are, as ``send_reliable`` does to a
        client here: resolved True when one of their clients acks it (``expect_reply``: answers
        it; the answer is in ``handle.reply``), False after ``timeout`` seconds. Offered again
        until then, so a player moving between rooms or nodes gets it where they arrive."""

    def send_reliable(self, client_id: int, data: Any, timeout: float = 5.0,
                      on_result: Callable[[bool], None] | None = None,
                      expect_reply: bool = False) -> ReliableHandle:
        """Deliver a message the client must acknowledge; ``on_result(True)`` on ack, False on
        timeout or disconnect. With ``expect_reply`` it is a request: True once the client
        answers it (``[7, ack_id, reply]``; the answer in ``handle.reply``), and an ack alone
        only sets ``handle.acked``. The handle can also be awaited from trio code."""


class Game:
    """Base class for games. Override what you need; ``schema`` is required.

    - ``schema``: the entity fields (class attribute or set in ``__init__``).
    - ``setup(room)``: called once, before the first tick; spawn the initial world here.
    - ``on_join(client_id, name)`` / ``on_leave(client_id)``: players arrive and go.
    - ``validate_input(data)``: called on receipt; return the value to keep or raise
      ``ProtocolViolation`` (the client is disconnected with a protocol error).
    - ``input_spec``: instead of ``validate_input``, say that every input is a few integers
      in ranges (``IntInputs(dx=(-1, 1), dy=(-1, 1))``); the server checks them itself and
      ``step`` gets an ``InputBatch`` (the tick's inputs as numpy columns) instead of a dict.
    - ``step(tick, inputs, dt)``: advance the world one tick. ``inputs`` maps client id to
      that client's new inputs since the last tick, in sequence order (with an
      ``input_spec``: an ``InputBatch`` of the same inputs, each client's rows in that order).
    - ``on_message(client_id, data)``: a message (reliable or not) from a client.
    - ``save_state()`` / ``restore_state(data)``: opt in to room state saves in a cluster
      (``gamesync serve --redis``): return what the world's columns do not hold (msgpack
      values), and take it back in a room recreated on another node, after ``setup`` and
      after the world has been restored. Returning None (the default) opts out.
    - ``keep_state()`` / ``restore_kept(data)``: what outlives the room itself (a chat's last
      lines, a document): taken every save interval and when the room closes, kept by the
      server (an SQLite file under ``--data-dir``; in a cluster, Redis), and handed to the
      next room of that name, after ``setup``, when it does not continue from a save (a room
      restored from ``save_state`` gets that instead, so include it there too). Returning
      None (the default) keeps nothing. Data from an older run: check it.
    """

    schema: Schema
    #: players per room; a join beyond it is refused with ``room_full``
    max_players: int = 1024
    #: interest management: set it and each client receives only what is near its focus (and
    #: what ``room.views`` scopes to it); None: every client receives every entity
    interest: Interest | None = None
    #: the shape of every input, for games whose inputs are a few integers: checked by the
    #: server (``validate_input`` is not called) and handed to ``step`` as an ``InputBatch``
    input_spec: IntInputs | None = None

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.room: RoomAPI

    def setup(self, room: RoomAPI) -> None:
        self.room = room

    @property
    def world(self) -> World:
        return self.room.world

    def on_join(self, client_id: int, name: str) -> None:
        pass

    def on_leave(self, client_id: int) -> None:
        pass

    def validate_input(self, data: Any) -> Any:
        return data

    def step(self, tick: int, inputs: Any, dt: float) -> None:
        pass

    def on_message(self, client_id: int, data: Any) -> None:
        pass

    def save_state(self) -> Any:
        return None

    def restore_state(self, data: Any) -> None:
        pass

    def keep_state(self) -> Any:
        return None

    def restore_kept(self, data: Any) -> None:
        pass


def require(cond: bool, reason: str) -> None:
    """Raise ProtocolViolation(reason) unless ``cond``: a helper for ``validate_input``."""
    if not cond:
        raise ProtocolViolation(reason)


__all__ = ["Game", "InputBatch", "IntInputs", "Interest", "ReliableHandle", "RoomAPI", "ViewsAPI", "require", "np"]
