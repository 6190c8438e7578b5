"""trio shell of the client: the Client library and the bot swarm."""

from .connection import Client, ClientClosed, open_client
from .entities import Entity
from .status import MAX_ATTEMPTS, ReconnectFailed, Status, StatusChanged

__all__ = ["Client", "ClientClosed", "open_client", "Entity", "MAX_ATTEMPTS", "ReconnectFailed", "Status",
           "StatusChanged"]
