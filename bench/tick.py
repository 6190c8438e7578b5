"""Tick-rate benchmark: what one server tick costs, stage by stage, against the naive way.

    python bench/tick.py --entities 1000,10000,100000 --baselines 1,4,16

For each world size E (arena NPCs, ARENA.md rules) and each number of distinct client
baselines K, runs --ticks ticks and times, separately: the game step, quantise + history,
delta computation, encoding (msgpack) and compression; and records the snapshot bytes (a
full snapshot and the delta that clients keeping up get). In the same run, the naive way:
a dict per entity, stepped in Python and packed whole with msgpack every tick. Prints one
JSON line per case with medians in ms and the naive/gamesync ratio, appends them to
bench/results/tick.jsonl and draws bench/results/tick_breakdown.png.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from gamesync.core.delta import compress_payload, diff_states, encode_delta, pack_diff
from gamesync.core.state import History, State
from gamesync.core.world import World
from gamesync.games.arena import CYCLE_S, NPC_SPEED, SIZE, WALK_S, Arena
from gamesync.memtune import keep_freed_memory

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TICK_S = 1 / 30
STAGES = ("step", "quantise", "delta", "encode", "compress")


class _Room:
    """The little of a room that Arena.setup needs."""

    def __init__(self, game: Arena) -> None:
        self.world = World(game.schema)

    def send(self, *_: Any) -> None:
        pass


def run_gamesync(e: int, k: int, ticks: int) -> dict[str, Any]:
    game = Arena(npcs=e)
    game.setup(_Room(game))  # type: ignore[arg-type]
    world = game.world
    hist = History(32)
    prev: State | None = None
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    delta_bytes: list[int] = []
    clock = time.perf_counter
    warm = 40  # past the history's length: later ticks reuse freed memory, as a running server does
    for t in range(ticks + warm):
        t0 = clock()
        game.step(t, {}, TICK_S)
        t1 = clock()
        prev = State.capture(world, t, prev)
        hist.push(prev)
        t2 = clock()
        pairs = [(t - 1 - i, t - 2 - i) for i in range(k)]  # K distinct (baseline, reference), newest first
        diffs = [diff_states(game.schema, prev, hist.get(b), hist.get(r)) for b, r in pairs if b >= 0]
        t3 = clock()
        raws = [pack_diff(game.schema, d) for d in diffs]
        t4 = clock()
        packed = [compress_payload(raw) for raw in raws]
        t5 = clock()
        if t >= warm:
            for name, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                times[name].append((b - a) * 1e3)
            delta_bytes.append(len(packed[0][1]))
    assert prev is not None
    full = compress_payload(encode_delta(game.schema, prev))[1]
    med = {s: statistics.median(v) for s, v in times.items()}
    return {"stage_ms": {s: round(v, 3) for s, v in med.items()}, "total_ms": round(sum(med.values()), 3),
            "full_bytes": len(full), "delta_bytes": int(statistics.median(delta_bytes))}


def run_naive(e: int, ticks: int) -> dict[str, Any]:
    """A dict per entity, stepped in Python, the whole list msgpack-packed every tick."""
    import random

    rng = random.Random(1)
    ents = [{"id": i + 1, "x": rng.uniform(0, SIZE), "y": rng.uniform(0, SIZE),
             "heading": rng.uniform(0, 2 * math.pi), "hp": 100, "phase": rng.uniform(0, CYCLE_S)}
            for i in range(e)]
    step_ms, pack_ms, sizes = [], [], []
    now = 0.0
    for _ in range(ticks):
        t0 = time.perf_counter()
        for ent in ents:
            before = (ent["phase"] + now) % CYCLE_S
            after = (ent["phase"] + now + TICK_S) % CYCLE_S
            if after < before:
                ent["heading"] = rng.uniform(0, 2 * math.pi)
            if after < WALK_S:
                ent["x"] = min(SIZE, max(0.0, ent["x"] + math.cos(ent["heading"]) * NPC_SPEED * TICK_S))
                ent["y"] = min(SIZE, max(0.0, ent["y"] + math.sin(ent["heading"]) * NPC_SPEED * TICK_S))
        now += TICK_S
        t1 = time.perf_counter()
        payload = msgpack.packb([{k: v for k, v in ent.items() if k != "phase"} for ent in ents])
        t2 = time.perf_counter()
        step_ms.append((t1 - t0) * 1e3)
        pack_ms.append((t2 - t1) * 1e3)
        sizes.append(len(payload))
    s, p = statistics.median(step_ms), statistics.median(pack_ms)
    return {"step_ms": round(s, 3), "pack_ms": round(p, 3), "total_ms": round(s + p, 3),
            "bytes": int(statistics.median(sizes))}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["K"] == 1]
    labels = [f"E={r['E']:,}" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(rows))
    for stage in STAGES:
        vals = np.array([r["gamesync"]["stage_ms"][stage] for r in rows])
        ax.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    for i, r in enumerate(rows):
        ax.annotate(f"naive: {r['naive']['total_ms']:.0f} ms", (i, bottom[i]), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=8)
    ax.axhline(10, color="r", lw=0.8, ls=":", label="10 ms goal at E = 100k")
    ax.set_ylabel("ms per tick (median)")
    ax.set_title("gamesync tick stages, one shared baseline (2-core machine)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", default="1000,10000,100000", help="comma-separated E (default 1000,10000,100000)")
    ap.add_argument("--baselines", default="1,4,16", help="comma-separated K distinct baselines (default 1,4,16)")
    ap.add_argument("--ticks", type=int, default=60, help="measured ticks per case (default 60)")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="directory for tick.jsonl and the PNG (default bench/results)")
    args = ap.parse_args()
    es = [int(x) for x in args.entities.split(",") if x]
    ks = [int(x) for x in args.baselines.split(",") if x]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # as `gamesync serve` does
    from tqdm import tqdm

    cases = [(e, k) for e in es for k in ks]
    naive: dict[int, dict[str, Any]] = {}
    rows = []
    for e, k in tqdm(cases, desc="tick bench", file=sys.stderr, disable=args.no_progress):
        if e not in naive:
            naive[e] = run_naive(e, max(5, min(args.ticks, 3_000_000 // max(e, 1))))
        g = run_gamesync(e, k, args.ticks)
        row = {"bench": "tick", "E": e, "K": k, "gamesync": g, "naive": naive[e],
               "naive_over_gamesync_time": round(naive[e]["total_ms"] / g["total_ms"], 2),
               "naive_over_gamesync_bytes": round(naive[e]["bytes"] / g["delta_bytes"], 1)}
        rows.append(row)
        line = json.dumps(row)
        print(line, flush=True)
        with open(out / "tick.jsonl", "a") as f:
            f.write(line + "\n")
    if not args.no_plot:
        plot(rows, out / "tick_breakdown.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
