"""The bot swarm's native pieces (``gamesync.native._bots``, Cython) when built and the native
path is on (``native.active``); ``gamesync.client.botcore.kit`` falls back to their Python twins
otherwise (the same results: tests/client/test_botcore.py)."""

from __future__ import annotations

import importlib
from types import ModuleType

from . import active

_ext: ModuleType | None
try:
    _ext = importlib.import_module(f"{__package__}._bots")
except ImportError:  # not built: the Python path
    _ext = None


def available() -> bool:
    """Whether the bots' extension is built and importable."""
    return _ext is not None


def extension() -> ModuleType | None:
    """The extension when the native path is in use, else None."""
    return _ext if _ext is not None and active() else None


__all__ = ["available", "extension"]
