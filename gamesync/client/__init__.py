"""trio shell of the client: the Client library and the bot swarm."""

from .connection import Client, ClientClosed, open_client

__all__ = ["Client", "ClientClosed", "open_client"]
