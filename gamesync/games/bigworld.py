"""The big world of ../shared/ARENA.md: the arena's rules on a world too big to send whole.

The side is ``sqrt(E * 1000)`` units (E = 100,000 NPCs on 10,000 x 10,000 by default), so the
density is the arena's. Each client receives what is within ``R = 500`` of its player, through
the room's interest management: 250-unit cells, so nothing farther than 500 + 250 * sqrt(2),
about 854 units, ever reaches it (``interest=False`` sends everything, for comparison). A
player's ``ack`` field is private: only its own client receives it.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.interest import Interest
from .arena import SEED, Arena

NPCS = 100_000
DENSITY = 1000.0  # square units per NPC, as in the arena
RADIUS = 500.0
CELL = 250.0


def side_for(npcs: int) -> float:
    """The world's side for ``npcs`` NPCs at the arena's density (10,000 for 100,000)."""
    return float(round(math.sqrt(max(1, npcs) * DENSITY)))


class BigWorld(Arena):
    """The arena on a big square, with interest management around each player."""

    def __init__(self, npcs: int = NPCS, seed: int = SEED, interest: bool = True, **options: Any) -> None:
        super().__init__(npcs=npcs, seed=seed, size=side_for(npcs), **options)
        # a player's ack (its last applied input) is its own business: only its client gets it
        self.interest = Interest(position=("x", "y"), cell=CELL, radius=RADIUS, private=("ack",)) if interest else None

    def on_join(self, client_id: int, name: str) -> None:
        super().on_join(client_id, name)
        views = self.room.views
        if views is not None:
            views.focus(client_id, slot=self.players[client_id])
            views.own([self.players[client_id]], client_id)

    def restore_state(self, data: dict[str, Any]) -> None:
        super().restore_state(data)
        views = self.room.views
        if views is not None:
            for cid, slot in self.players.items():
                views.focus(cid, slot=slot)
                views.own([slot], cid)
