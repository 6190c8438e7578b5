"""Built-in games, registered by the command line (``gamesync serve``): a server built from
Python gets the games its ``ServerConfig(games=...)`` names, these or its own."""

from __future__ import annotations

from collections.abc import Callable

from ..game import Game


def builtin_games() -> dict[str, Callable[..., Game]]:
    """The games ``gamesync serve`` runs: ``arena`` (the default), ``bigworld`` and ``notes``."""
    from .arena import Arena
    from .bigworld import BigWorld
    from .notes import Notes

    return {"arena": Arena, "bigworld": BigWorld, "notes": Notes}


__all__ = ["builtin_games"]
