"""Churn soak: bots join, play, leave, drop abruptly and resume at random across several rooms,
against a real server on 127.0.0.1; at the end nothing may be left behind and every
acknowledged input must have been applied exactly once.

    python bench/soak.py --seconds 300 --bots 60 --rooms 4          # the long run
    python bench/soak.py --seconds 8 --bots 24 --rooms 3 --json     # what tests/ runs

Server and bots share one process (the server's own counters are read directly). Each bot
uses the Python client library, so a drop is followed by the library's own reconnect and
resume. A bot's life is a loop of: join a random room, send inputs at 30 Hz for a random
while, then one of: leave properly, drop the socket and come back (resume), or drop it and
never come back (the seat is freed after the grace time). At the end the script checks:

- every seat's applied inputs are consecutive seqs, each once, in order, across resumes (the
  client numbers its inputs consecutively and resends the unapplied ones after a resume; a
  seat's first seq is 1, or where the client was when its old seat had been freed), and
  they cover every input the client saw acknowledged;
- after the last bot is gone and the grace and linger times have passed: no connection,
  room, session, seat or per-address entry is left, and the number of trio tasks is back to
  what it was before the first bot;
- resident memory after warm-up stays within ``--rss-slack-mib`` of its level at the end of
  warm-up.

It prints one JSON line (``--json``) or a summary, and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gamesync.client.connection import ClientClosed, open_client  # noqa: E402
from gamesync.games.arena import Arena  # noqa: E402
from gamesync.server import Server, ServerConfig  # noqa: E402

HOST = "127.0.0.1"


class LedgerArena(Arena):
    """The arena, plus a ledger per seat of the input seqs step() applied (bounded: one
    counter, the last seq and a list of faults per seat)."""

    ledger: ClassVar[dict[int, dict[str, Any]]] = {}  # one for the whole run, across rooms

    def step(self, tick: int, inputs: dict[int, list[Any]], dt: float) -> None:
        for cid, frames in inputs.items():
            e = LedgerArena.ledger.setdefault(cid, {"last": 0, "count": 0, "faults": []})
            for f in frames:
                # a seat's first input may have any seq (a client that came back to a freed
                # seat keeps numbering where it was); from then on, each seq exactly once, in order
                if e["count"] and f.seq != e["last"] + 1 and len(e["faults"]) < 10:
                    e["faults"].append((e["last"], f.seq))  # a gap, a repeat or out of order
                e["last"] = f.seq
                e["count"] += 1
        super().step(tick, inputs, dt)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def count_tasks() -> int:
    def walk(task: Any) -> int:
        return 1 + sum(walk(t) for n in task.child_nurseries for t in n.child_tasks)
    return walk(trio.lowlevel.current_root_task())


async def bot(url: str, rng: random.Random, rooms: int, until: float, acked: dict[int, int],
              tally: dict[str, int]) -> None:
    """One bot's life until ``until``: sessions ending in leave, drop + resume or abandon."""
    while trio.current_time() < until:
        room = f"room{rng.randrange(rooms)}"
        ending = rng.choice(["leave", "resume", "abandon"])
        try:
            async with open_client(url, room=room, name="soak", backoff_initial=0.05, backoff_max=0.5) as c:
                await c.wait_state()
                plays = rng.uniform(0.3, 1.5)
                drop_at = trio.current_time() + plays / 2
                end = trio.current_time() + plays
                dropped = False
                while trio.current_time() < end:
                    await c.send_input([rng.choice((-1, 0, 1)), rng.choice((-1, 0, 1))])
                    if c.client_id is not None:
                        acked[c.client_id] = max(acked.get(c.client_id, 0), c.input_ack)
                    if ending != "leave" and not dropped and trio.current_time() >= drop_at:
                        dropped = True
                        tally[f"drop_{ending}"] += 1
                        c._ws._stream.socket.close()  # the network goes away, no close frame
                        if ending == "abandon":
                            c.reconnect = False
                            break
                    await trio.sleep(1 / 30)
                if ending == "resume" and dropped:
                    tally["resumed"] += c.resumes
                if c.client_id is not None:
                    acked[c.client_id] = max(acked.get(c.client_id, 0), c.input_ack)
                tally["sessions"] += 1
        except ClientClosed:
            tally["closed_by_server"] += 1
        except trio.BrokenResourceError:
            tally["broken"] += 1


async def soak(seconds: float, bots: int, rooms: int, grace: float, seed: int, warmup: float,
               rss_slack_mib: float, progress: bool) -> dict[str, Any]:
    LedgerArena.ledger = {}
    cfg = ServerConfig(host=HOST, port=0, games={"arena": LedgerArena}, game_options={"npcs": 200},
                       seat_grace_s=grace, room_linger_s=0.5, stats_interval_s=3600,
                       max_connections_per_ip=10 * bots, connects_per_ip_per_s=50 * bots,
                       connects_per_ip_burst=50 * bots)
    server = Server(cfg)
    acked: dict[int, int] = {}
    tally: dict[str, int] = defaultdict(int)
    rss: list[tuple[float, float]] = []
    async with trio.open_nursery() as n:
        port = await n.start(server.serve)
        url = f"ws://{HOST}:{port}/"
        t0 = trio.current_time()
        until = t0 + seconds
        rng = random.Random(seed)

        async def sample() -> None:
            while True:
                rss.append((trio.current_time() - t0, rss_mib()))
                await trio.sleep(0.5)

        n.start_soon(sample)
        tasks0 = count_tasks()
        async with trio.open_nursery() as bn:
            for _ in range(bots):
                bn.start_soon(bot, url, random.Random(rng.random()), rooms, until, acked, tally)
                await trio.sleep(0.02)
            if progress:
                while trio.current_time() < until:
                    await trio.sleep(5)
                    print(f"  t={trio.current_time() - t0:5.1f}s conns {server.connections:3d} "
                          f"rooms {len(server.rooms)} rss {rss_mib():.0f} MiB", file=sys.stderr)
        # every bot is done; the dropped seats and the empty rooms run out their time
        with trio.move_on_after(grace + cfg.room_linger_s + 5):
            while server.connections or server.rooms or server._per_ip:
                await trio.sleep(0.05)
        await trio.sleep(0.1)
        tasks1 = count_tasks()
        left = {"connections": server.connections, "rooms": len(server.rooms),
                "sessions": sum(len(r.sessions) for r in server.rooms.values()),
                "seats": sum(len(r._seats) for r in server.rooms.values()), "per_ip": len(server._per_ip),
                "extra_tasks": tasks1 - tasks0}
        n.cancel_scope.cancel()

    ledger = LedgerArena.ledger
    faults = {cid: e["faults"] for cid, e in ledger.items() if e["faults"]}
    short = {cid: (ack, ledger.get(cid, {}).get("last", 0)) for cid, ack in acked.items()
             if ack > ledger.get(cid, {}).get("last", 0)}
    after = [m for t, m in rss if t >= warmup]
    base = after[0] if after else 0.0
    growth = max(after) - base if after else 0.0
    checks = {
        "inputs_exactly_once_in_order": not faults,
        "acknowledged_inputs_applied": not short,
        "nothing_left_behind": not any(left.values()),
        "rss_flat_after_warmup": growth <= rss_slack_mib,
    }
    return {
        "seconds": seconds, "bots": bots, "rooms": rooms, "seat_grace_s": grace,
        "seats": len(ledger), "inputs_applied": sum(e["count"] for e in ledger.values()),
        **dict(tally), "left_behind": left, "faults": {str(k): v for k, v in list(faults.items())[:5]},
        "acked_not_applied": {str(k): v for k, v in list(short.items())[:5]},
        "rss_mib_after_warmup": round(base, 1), "rss_mib_max": round(max(m for _, m in rss), 1) if rss else 0,
        "rss_growth_mib": round(growth, 1), "checks": checks, "ok": all(checks.values()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0, help="how long bots churn (default 120)")
    ap.add_argument("--bots", type=int, default=40, help="concurrent bots (default 40)")
    ap.add_argument("--rooms", type=int, default=4, help="rooms they spread over (default 4)")
    ap.add_argument("--grace", type=float, default=1.0, help="seat grace seconds for the run (default 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds before RSS must stay flat "
                    "(default: a third of --seconds)")
    ap.add_argument("--rss-slack-mib", type=float, default=24.0, help="allowed RSS growth after warm-up")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warmup = args.seconds / 3 if args.warmup is None else args.warmup
    res = trio.run(soak, args.seconds, args.bots, args.rooms, args.grace, args.seed, warmup, args.rss_slack_mib,
                   not args.json)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>28}: {v}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
