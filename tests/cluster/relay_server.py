"""`gamesync serve` with the test game ``relay`` (tests/server/relay_game.py) besides the
built-in ones; run like the CLI: ``python relay_server.py serve ...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from relay_game import Relay  # noqa: E402

from gamesync import cli, games  # noqa: E402

builtin = games.builtin_games


def relay_games() -> dict[str, Any]:
    return {**builtin(), "relay": Relay}


games.builtin_games = relay_games  # what `gamesync serve` registers

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
