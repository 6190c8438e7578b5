"""Where a new room goes: the least loaded live node, by what each node's heartbeat reports
(``{p}node:{node}``: rooms, clients, tick_load). No I/O.

A node's load is the sum of three shares, each of what one node is sized for: the share of
one core its rooms' ticks took recently (``tick_load``, the measure that counts what a room
costs: an arena of 5000 NPCs is no lobby of 2 players), its clients over
CLIENTS_PER_NODE and its rooms over ROOMS_PER_NODE (which break ties between idle nodes
and count rooms too new to have ticked much). The node placing the room keeps it on a tie:
no redirect for nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

#: clients one node is sized for (ServerConfig.max_connections's default)
CLIENTS_PER_NODE = 4096
#: rooms one node is sized for (ServerConfig.max_rooms's default)
ROOMS_PER_NODE = 256


def load(node: dict[str, Any]) -> float:
    """A node's load (``Directory.nodes`` entry): 0 idle, about 1 full."""
    return (float(node.get("tick_load", 0.0)) + int(node.get("clients", 0)) / CLIENTS_PER_NODE
            + int(node.get("rooms", 0)) / ROOMS_PER_NODE)


def least_loaded(nodes: Sequence[dict[str, Any]], me: str, include_me: bool = True) -> str | None:
    """The live, not draining node with the least load (``me`` on a tie; else at random among
    equals); None when there is none."""
    live = [n for n in nodes if not n.get("draining") and (include_me or n["node"] != me)]
    if not live:
        return None
    return str(min(live, key=lambda n: (load(n), n["node"] != me, random.random()))["node"])
