"""gamesync: an authoritative fixed-tick game-state sync server for Python."""

from __future__ import annotations

from .core.protocol import PROTOCOL_VERSION

__version__ = "0.1.0"

__all__ = ["PROTOCOL_VERSION", "__version__"]
