"""Many gamesync processes as one: rooms placed, routed, moved and reached through Redis.

``gamesync serve --redis URL`` makes a server a node (``node.ClusterNode``); ``publish``
pushes events in from any other program; ``local`` runs a whole cluster on one machine.
"""

from .publish import Publisher, publish, publish_sync

__all__ = ["Publisher", "publish", "publish_sync"]
