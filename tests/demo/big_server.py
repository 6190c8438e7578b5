"""`gamesync serve` whose `bigworld` places the browser test's players where the test wants
them (tests/demo/test_big_browser.py): a player named in PLACES starts there instead of at a
random spot; the rest is the real game. Run like the CLI: ``python big_server.py serve ...``."""

from __future__ import annotations

import sys
from typing import Any

from gamesync import cli, games
from gamesync.games.bigworld import BigWorld

#: where a player of this name starts (world units); far enough apart that neither can see
#: the other, nor anything near the other, at the start
PLACES = {"ann": (700.0, 1580.0), "bob": (2460.0, 1580.0)}


class PlacedBigWorld(BigWorld):
    """The big world with the test's players where the test put them."""

    def on_join(self, client_id: int, name: str) -> None:
        super().on_join(client_id, name)
        spot = PLACES.get(name)
        if spot is not None:
            slot = self.players[client_id]
            self.world["x"][slot], self.world["y"][slot] = spot


def placed_games() -> dict[str, Any]:
    return {**builtin(), "bigworld": PlacedBigWorld}


builtin = games.builtin_games
games.builtin_games = placed_games  # what `gamesync serve` registers

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
