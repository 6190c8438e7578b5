"""Seats: who a player is in a room (client id, name, player id, applied inputs, undelivered
events), and the seats kept for a resume after a connection drops or a room moves nodes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import Unauthorized
from ..core.saved import SavedSeat

logger = logging.getLogger(__name__)


@dataclass
class Seat:
    """A player's place in a room; a resume on a new connection takes it back whole."""

    id: int
    name: str
    player: str | None = None  # the player id a join token vouched for
    resume_token: str = ""  # a join carrying it takes this seat again (fresh per connection)
    last_applied: int = 0  # newest input seq the game got
    events: list[Any] = field(default_factory=list)  # entries not yet delivered
    resumed: bool = False  # taken back by a resume of a seat the game knows (no on_join again)
    in_game: bool = False  # the game has seen it join (it entered at a tick, or came from a save)

    @classmethod
    def from_saved(cls, saved: SavedSeat) -> Seat:
        return cls(saved.client_id, saved.name, saved.player, saved.resume_token, saved.last_applied, in_game=True)

    def to_saved(self) -> SavedSeat:
        return SavedSeat(self.resume_token, self.id, self.name, self.player, self.last_applied)

    def resumed_as(self, resume_token: str) -> Seat:
        """The same seat for a resumed connection, with its fresh resume token. A seat the game
        has not seen join yet (welcomed, replaced before its first tick) joins as new."""
        return Seat(self.id, self.name, self.player, resume_token, self.last_applied, self.events,
                    resumed=self.in_game, in_game=self.in_game)


class KeptSeats:
    """Seats of players whose connection dropped, by resume token, each until its deadline."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[Seat, float]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __bool__(self) -> bool:
        return bool(self._held)

    def __iter__(self) -> Iterator[Seat]:
        return (seat for seat, _ in self._held.values())

    def keep(self, seat: Seat, until: float) -> None:
        self._held[seat.resume_token] = (seat, until)

    def get(self, resume_token: str) -> Seat | None:
        held = self._held.get(resume_token)
        return held[0] if held is not None else None

    def take(self, resume_token: str, player: str | None) -> Seat | None:
        """The seat ``resume_token`` names, taken out; None if there is none. With join tokens,
        only the player it belongs to gets it (Unauthorized otherwise, and it stays)."""
        seat = self.get(resume_token)
        if seat is None:
            return None
        check_owner(seat, player)
        del self._held[resume_token]
        return seat

    def expired(self, now: float) -> list[Seat]:
        """Take out and return the seats whose deadline has passed: those players have left."""
        gone = [token for token, (_, until) in self._held.items() if now >= until]
        return [self._held.pop(token)[0] for token in gone]


def check_owner(seat: Seat, player: str | None) -> None:
    """A seat goes back only to the player it belongs to."""
    if seat.player != player:
        raise Unauthorized("that seat belongs to another player")
