"""The bot swarm's native pieces (``gamesync.native._bots``, Cython) when built and the native
path is on (``native.active``); ``gamesync.client.botcore.kit`` falls back to their Python twins
otherwise (the same results: tests/client/test_botcore.py)."""

from __future__ import annotations

from types import ModuleType

from . import _bots_ext as _ext  # None where it is not built: the Python path
from . import active


def available() -> bool:
    """Whether the bots' extension is built and importable."""
    return _ext is not None


def extension() -> ModuleType | None:
    """The extension when the native path is in use, else None."""
    return _ext if _ext is not None and active() else None


__all__ = ["available", "extension"]
