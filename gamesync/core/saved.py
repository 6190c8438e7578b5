"""A room's saved state as bytes: its world, its game's own state and its players' seats;
and what a game keeps past its room (``pack_kept``).

Written by a cluster node every few seconds for games that opt in (``Game.save_state``) and
read back by the node that recreates the room after a failover or a hand-over. Pure: no
clocks, no I/O; the caller passes the tick and the seats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .world import World

FORMAT = 1  # bumped when the layout below changes; other formats are ignored (the room starts afresh)


@dataclass
class SavedSeat:
    """A player's seat as a resume finds it: the same client id, name and applied inputs."""

    resume_token: str
    client_id: int
    name: str
    player: str | None
    last_applied: int


@dataclass
class SavedRoom:
    game: str
    tick: int
    world: dict[str, Any]
    game_state: Any
    seats: list[SavedSeat] = field(default_factory=list)


def save_world(world: World) -> dict[str, Any]:
    """The world's live layout and columns (slots 0..n-1) as msgpack-ready values."""
    n = world.n
    return {
        "n": n,
        "alive": world.alive[:n].tobytes(),
        "ids": world.ids[:n].tobytes(),
        "free": list(world._free),
        "next_id": world._next_id,
        "columns": {name: [col.dtype.str, col[:n].tobytes()] for name, col in world.columns.items()},
    }


def restore_world(world: World, saved: dict[str, Any]) -> None:
    """Load ``saved`` (from ``save_world``) into ``world``, whose schema must be the same."""
    n = int(saved["n"])
    cols = saved["columns"]
    if set(cols) != set(world.columns):
        raise ValueError(f"saved fields {sorted(cols)} differ from the schema's {sorted(world.columns)}")
    world._grow(n)
    for name, col in world.columns.items():
        dtype, data = cols[name]
        col[:] = 0
        col[:n] = np.frombuffer(data, dtype=np.dtype(dtype))
    world.alive[:] = False
    world.alive[:n] = np.frombuffer(saved["alive"], dtype=bool)
    world.ids[:] = 0
    world.ids[:n] = np.frombuffer(saved["ids"], dtype="<u4")
    world.n = n
    world._free = [int(i) for i in saved["free"]]
    world._next_id = int(saved["next_id"])
    world.layout += 1


def pack_saved(room: SavedRoom) -> bytes:
    packed: bytes = msgpack.packb({
        "format": FORMAT, "game": room.game, "tick": room.tick, "world": room.world, "state": room.game_state,
        "seats": [[s.resume_token, s.client_id, s.name, s.player, s.last_applied] for s in room.seats],
    }, use_bin_type=True)
    return packed


def unpack_saved(data: bytes) -> SavedRoom | None:
    """The saved room in ``data``; None when it is of another format."""
    d = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        return None
    return SavedRoom(d["game"], int(d["tick"]), d["world"], d["state"],
                     [SavedSeat(str(t), int(c), str(n), p, int(a)) for t, c, n, p, a in d["seats"]])


def pack_kept(game: str, data: Any) -> bytes:
    """What ``game`` keeps past its room (``Game.keep_state``), as stored by name of room."""
    packed: bytes = msgpack.packb({"format": FORMAT, "game": game, "kept": data}, use_bin_type=True)
    return packed


def unpack_kept(blob: bytes, game: str) -> Any:
    """The kept data in ``blob`` if a room of ``game`` wrote it in this format; else None."""
    try:
        d = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData):
        return None
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("game") != game:
        return None
    return d.get("kept")
