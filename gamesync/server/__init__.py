"""trio shell of the server: listener, rooms, sessions, tick scheduling."""

from .app import Server, serve
from .config import ServerConfig
from .room import ReliableSend, Room

__all__ = ["ReliableSend", "Room", "Server", "ServerConfig", "serve"]
