"""CPU of a view room's snapshot work, in one process and without sockets.

Runs the ``bigworld`` game (ARENA.md's big world) with P players walking as the bots walk (a
new random direction every second, one input per tick), and each tick times what the room's
tick does for interest management: the state capture, ``Views.push`` (cells, cell map) and
``Views.encode`` (every client's payload), then commits each frame as a written one. It is
the view part of the server's tick with the sockets taken away, so it measures the code
rather than the machine's load; process CPU time, median and mean over the measured ticks.

    python bench/viewcost.py --players 300 --npcs 100000 --ticks 150
    python bench/viewcost.py --players 300 --profile        # cProfile's top functions too
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import time
from typing import Any

from gamesync.core import protocol as p
from gamesync.core.protocol import PACKED_VERSION, PROTOCOL_VERSION, VIEW_VERSION
from gamesync.core.state import History, State
from gamesync.core.viewplan import ClientView
from gamesync.core.world import World
from gamesync.games.bigworld import BigWorld
from gamesync.memtune import keep_freed_memory
from gamesync.server.roomstats import RoomStats
from gamesync.server.views import Views

HISTORY = 64


class _Room:
    """What the game uses of its room."""

    name, tick, tick_rate = "big", 0, 30.0

    def __init__(self, world: World, game: Any) -> None:
        self.world = world
        self.client_ids: list[int] = []
        self.views = Views.of(world, game, HISTORY)

    def send(self, client_id: int, data: Any) -> None:
        pass

    def broadcast(self, data: Any, exclude: int | None = None) -> None:
        pass


class _Client:
    def __init__(self, cid: int, rng: random.Random, version: int) -> None:
        self.id = cid
        self.view = ClientView(packed=version >= PACKED_VERSION)
        self.rng = rng
        self.direction = (0, 0)
        self.seq = 0


def run(players: int, npcs: int, ticks: int, warmup: int, seed: int, profile: bool,
        version: int = PROTOCOL_VERSION) -> dict[str, Any]:
    game = BigWorld(npcs=npcs, seed=seed)
    room = _Room(World(game.schema), game)
    game.setup(room)  # type: ignore[arg-type]
    views = room.views
    assert views is not None
    rng = random.Random(seed)
    clients = []
    for cid in range(1, players + 1):
        game.on_join(cid, f"bot{cid}")
        room.client_ids.append(cid)
        clients.append(_Client(cid, random.Random(rng.random()), version))
    history = History(HISTORY)
    stats = RoomStats()
    phases: dict[str, list[float]] = {"step": [], "push": [], "encode": [], "commit": []}
    nbytes = 0
    prof = cProfile.Profile() if profile else None
    cpu = time.process_time
    for tick in range(warmup + ticks):
        room.tick = tick
        batch = {}
        for c in clients:
            if tick % 30 == c.id % 30:
                c.direction = (c.rng.choice((-1, 0, 1)), c.rng.choice((-1, 0, 1)))
            c.seq += 1
            batch[c.id] = [p.InputFrame(c.seq, list(c.direction))]
        measuring = tick >= warmup
        if measuring and prof is not None:
            prof.enable()
        t0 = cpu()
        game.step(tick, batch, 1 / 30)
        t1 = cpu()
        state = State.capture(room.world, tick, history.get(tick - 1), views.blank_rows)
        history.push(state)
        views.push(state)
        t2 = cpu()
        out = views.encode(clients, stats)  # type: ignore[arg-type]
        t3 = cpu()
        for c, o in out:
            c.view.commit(o.view)
            if measuring:
                nbytes += len(o.payload)
        t4 = cpu()
        if prof is not None:
            prof.disable()
        if measuring:
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                v_ms = v * 1e3
                phases[k].append(v_ms)
    if prof is not None:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    held = statistics.mean(c.view.entities for c in clients)
    res: dict[str, Any] = {"players": players, "npcs": npcs, "ticks": ticks}
    for k, v in phases.items():
        res[f"{k}_ms_median"] = round(statistics.median(v), 3)
        res[f"{k}_ms_mean"] = round(statistics.mean(v), 3)
    view_ms = [a + b + c for a, b, c in zip(phases["push"], phases["encode"], phases["commit"], strict=True)]
    res["view_ms_median"] = round(statistics.median(view_ms), 3)
    res["encode_us_per_client"] = round(1e3 * statistics.median(phases["encode"]) / players, 2)
    res["payload_bytes_per_client_s"] = round(nbytes / players / ticks * 30, 1)
    res["entities_held_mean"] = round(held, 1)
    res["listings_per_tick"] = round(views.planner.listings_built / (warmup + ticks), 2)
    return res


def main() -> None:
    keep_freed_memory()  # as gamesync serve does
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default="300", help="comma-separated player counts (default 300)")
    ap.add_argument("--npcs", type=int, default=100_000)
    ap.add_argument("--ticks", type=int, default=150, help="measured ticks (default 150)")
    ap.add_argument("--warmup", type=int, default=40, help="ticks before measuring (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    ap.add_argument("--version", type=int, default=PROTOCOL_VERSION, choices=[VIEW_VERSION, PACKED_VERSION],
                    help=f"the clients' protocol version (default {PROTOCOL_VERSION}; {VIEW_VERSION}: records "
                         "unpacked)")
    a = ap.parse_args()
    for n in (int(x) for x in a.players.split(",")):
        print(json.dumps({"version": a.version, **run(n, a.npcs, a.ticks, a.warmup, a.seed, a.profile, a.version)}))


if __name__ == "__main__":
    main()
