"""Room state saves (gamesync.core.saved) and the arena's save/restore hooks: a room rebuilt
from a save goes on exactly as the original does."""

from __future__ import annotations

from typing import Any

import numpy as np

from gamesync.core.protocol import InputFrame
from gamesync.core.saved import SavedRoom, SavedSeat, pack_saved, restore_world, save_world, unpack_saved
from gamesync.core.world import World
from gamesync.games.arena import SCHEMA, Arena

DT = 1 / 30


class _Room:
    def __init__(self) -> None:
        self.world = World(SCHEMA)
        self.sent: list[tuple[int, Any]] = []

    def send(self, client_id: int, data: Any) -> None:
        self.sent.append((client_id, data))

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        pass


def _arena(npcs: int = 300) -> Arena:
    g = Arena(npcs=npcs, seed=11)
    g.setup(_Room())  # type: ignore[arg-type]
    return g


def _columns(w: World) -> dict[str, np.ndarray]:
    return {name: col[: w.n].copy() for name, col in w.columns.items()} | {"alive": w.alive[: w.n].copy(),
                                                                          "ids": w.ids[: w.n].copy()}


def _step(g: Arena, tick: int, moves: dict[int, tuple[int, int]]) -> None:
    g.step(tick, {cid: [InputFrame(tick, list(m))] for cid, m in moves.items()}, DT)


def test_a_world_round_trips_through_bytes_with_its_free_slots_and_next_id() -> None:
    w = World(SCHEMA)
    w.spawn(10, x=np.arange(10, dtype=np.float32), hp=7)
    w.despawn([2, 5])
    blob = pack_saved(SavedRoom("arena", 99, save_world(w), {"k": 1}, [SavedSeat("tok", 3, "ann", None, 42)]))
    saved = unpack_saved(blob)
    assert saved is not None and saved.tick == 99 and saved.game_state == {"k": 1}
    assert saved.seats == [SavedSeat("tok", 3, "ann", None, 42)]
    w2 = World(SCHEMA)
    restore_world(w2, saved.world)
    for name, col in _columns(w).items():
        assert np.array_equal(col, _columns(w2)[name]), name
    assert w2.spawn(1)[0] == w.spawn(1)[0]  # the same free slot is reused first ...
    assert w2.ids[: w2.n].tolist() == w.ids[: w.n].tolist()  # ... and gets the same new id


def test_a_save_of_another_format_is_ignored() -> None:
    import msgpack

    assert unpack_saved(msgpack.packb({"format": 999})) is None


def test_an_arena_restored_from_a_save_goes_on_exactly_like_the_original() -> None:
    a = _arena()
    a.on_join(1, "ann")
    a.on_join(2, "bob")
    for t in range(1, 95):  # into the NPCs' second walk/rest cycle
        _step(a, t, {1: (1, 0), 2: (0, -1)} if t % 3 else {1: (-1, 1)})
    blob = pack_saved(SavedRoom("arena", 94, save_world(a.world), a.save_state(), []))

    b = _arena()  # a fresh room on another node: setup, then the save
    saved = unpack_saved(blob)
    assert saved is not None
    restore_world(b.world, saved.world)
    b.restore_state(saved.game_state)
    assert b.players == a.players and b.chat.names == a.chat.names
    for t in range(95, 200):
        moves = {1: (0, 1), 2: (1, 1)} if t % 5 else {2: (-1, 0)}
        _step(a, t, moves)
        _step(b, t, moves)
        ca, cb = _columns(a.world), _columns(b.world)
        for name in ca:
            assert np.array_equal(ca[name], cb[name]), f"tick {t}: {name} differs"
    a.on_leave(1)
    b.on_leave(1)
    a.on_join(3, "cy")  # the RNG went on identically too
    b.on_join(3, "cy")
    assert np.array_equal(_columns(a.world)["x"], _columns(b.world)["x"])
