"""The arena scenario (ARENA.md) as a plain Python developer would write it.

asyncio + the ``websockets`` library: one 30 Hz loop moves every entity, packs the whole
world with msgpack once per tick and hands the same bytes to every client with
``websockets.broadcast``. No deltas, no interest management, no per-client state beyond
the input queue.

    python bench/naive/server.py --port 0 --port-file /tmp/nport --npcs 1000

Clients send msgpack ``{"seq": n, "dx": -1|0|1, "dy": -1|0|1}``; on connect they get
msgpack ``{"you": entity_id}``, then 30 times a second the msgpack list of all entity
dicts ``{"id", "x", "y", "heading", "hp"}`` (players also carry ``"ack"``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import time

import msgpack
import websockets
from websockets.asyncio.server import serve

WORLD = 1000.0
TICK_HZ = 30
DT = 1.0 / TICK_HZ
PLAYER_SPEED = 200.0
NPC_SPEED = 100.0
NPC_PHASE = 2.0  # seconds walking, then seconds resting
DIAG = 1.0 / math.sqrt(2.0)


def clamp(v: float) -> float:
    return min(WORLD, max(0.0, v))


class Game:
    def __init__(self, npcs: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.entities: dict[int, dict] = {}  # id -> what every client is sent
        self.npc_brain: dict[int, dict] = {}  # id -> {"walking", "left"}, server-only
        self.inputs: dict[int, list] = {}  # player id -> inputs received since the last tick
        self.clients: set = set()
        self.next_id = 0
        for _ in range(npcs):
            eid = self.new_id()
            self.entities[eid] = {
                "id": eid,
                "x": self.rng.uniform(0, WORLD),
                "y": self.rng.uniform(0, WORLD),
                "heading": self.rng.uniform(-math.pi, math.pi),
                "hp": 100,
            }
            self.npc_brain[eid] = {"walking": self.rng.random() < 0.5, "left": self.rng.uniform(0, NPC_PHASE)}
        # counters for --stats-file
        self.ticks = 0
        self.overruns = 0
        self.tick_seconds = 0.0
        self.bytes_out = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_player(self) -> int:
        eid = self.new_id()
        self.entities[eid] = {
            "id": eid,
            "x": self.rng.uniform(0, WORLD),
            "y": self.rng.uniform(0, WORLD),
            "heading": 0.0,
            "hp": 100,
            "ack": 0,
        }
        self.inputs[eid] = []
        return eid

    def remove_player(self, eid: int) -> None:
        self.entities.pop(eid, None)
        self.inputs.pop(eid, None)

    def step(self) -> None:
        # players: every queued input is one tick of movement
        for eid, queue in self.inputs.items():
            if not queue:
                continue
            p = self.entities[eid]
            for seq, dx, dy in queue:
                if dx not in (-1, 0, 1) or dy not in (-1, 0, 1):
                    dx, dy = 0, 0
                step = PLAYER_SPEED * DT * (DIAG if dx and dy else 1.0)
                p["x"] = clamp(p["x"] + dx * step)
                p["y"] = clamp(p["y"] + dy * step)
                if dx or dy:
                    p["heading"] = math.atan2(dy, dx)
                p["ack"] = seq
            queue.clear()
        # NPCs: 2 s walking on a random heading, 2 s resting
        for eid, brain in self.npc_brain.items():
            npc = self.entities[eid]
            brain["left"] -= DT
            if brain["left"] <= 0:
                brain["left"] += NPC_PHASE
                brain["walking"] = not brain["walking"]
                if brain["walking"]:
                    npc["heading"] = self.rng.uniform(-math.pi, math.pi)
            if brain["walking"]:
                npc["x"] = clamp(npc["x"] + math.cos(npc["heading"]) * NPC_SPEED * DT)
                npc["y"] = clamp(npc["y"] + math.sin(npc["heading"]) * NPC_SPEED * DT)

    def broadcast_state(self) -> None:
        payload = msgpack.packb(list(self.entities.values()))
        websockets.broadcast(self.clients, payload)
        # bytes handed to the sockets: payload + server frame header (2, 4 or 10 bytes, unmasked)
        n = len(payload)
        header = 2 if n < 126 else 4 if n < 65536 else 10
        self.bytes_out += (n + header) * sum(1 for ws in self.clients if ws.state is websockets.State.OPEN)

    async def handler(self, ws) -> None:
        eid = self.add_player()
        try:
            welcome = msgpack.packb({"you": eid})
            await ws.send(welcome)
            self.bytes_out += len(welcome) + 2
            self.clients.add(ws)
            async for message in ws:
                msg = msgpack.unpackb(message)
                self.inputs[eid].append((msg["seq"], msg["dx"], msg["dy"]))
        except (websockets.ConnectionClosed, ValueError, TypeError, KeyError) as e:
            print(f"player {eid}: {e!r}", file=sys.stderr)
        finally:
            self.clients.discard(ws)
            self.remove_player(eid)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += DT
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            t0 = loop.time()
            self.step()
            self.broadcast_state()
            spent = loop.time() - t0
            self.ticks += 1
            self.tick_seconds += spent
            if spent > DT:
                self.overruns += 1
            if loop.time() > deadline + DT:  # fell more than a tick behind: don't burst to catch up
                deadline = loop.time()

    def stats(self) -> dict:
        return {
            "clients": len(self.clients),
            "ticks": self.ticks,
            "overruns": self.overruns,
            "tick_ms_mean": 1e3 * self.tick_seconds / max(1, self.ticks),
            "bytes_out": self.bytes_out,
        }


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def write_stats(game: Game, path: str, interval: float) -> None:
    while True:
        write_atomic(path, json.dumps({"rooms": [game.stats()]}))
        await asyncio.sleep(interval)


async def main(args: argparse.Namespace) -> None:
    game = Game(args.npcs, args.seed)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    compression = "deflate" if args.compression == "deflate" else None
    async with serve(game.handler, args.host, args.port, compression=compression) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"naive arena server on ws://{args.host}:{port} ({args.npcs} NPCs)", file=sys.stderr)
        if args.port_file:
            write_atomic(args.port_file, f"{port}\n")
        tasks = [asyncio.create_task(game.run())]
        if args.stats_file:
            tasks.append(asyncio.create_task(write_stats(game, args.stats_file, args.stats_interval)))
        t_start = time.monotonic()
        await stop
        for t in tasks:
            t.cancel()
        # leaving the block closes every connection with 1001 (going away)
    s = game.stats()
    s["seconds"] = round(time.monotonic() - t_start, 1)
    print(f"stopped: {json.dumps(s)}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Naive asyncio + websockets arena server (baseline).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765, help="0 = any free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--npcs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1, help="seed for NPC spawn and behaviour")
    ap.add_argument("--compression", choices=("none", "deflate"), default="none",
                    help="permessage-deflate (websockets' default) or none (default here, see README)")
    ap.add_argument("--stats-file", help="write counters as JSON here every --stats-interval s")
    ap.add_argument("--stats-interval", type=float, default=0.5)
    return ap.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
