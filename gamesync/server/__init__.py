"""trio shell of the server: listener, rooms, sessions, tick scheduling."""

from .app import Server, serve
from .config import ServerConfig
from .reliable import ReliableSend
from .room import Room

__all__ = ["ReliableSend", "Room", "Server", "ServerConfig", "serve"]
