"""Big-world benchmark (ARENA.md "Big world"): gamesync with interest management, gamesync
without it, and Colyseus 0.18 with StateView interest, on the same world in the same run.

    python bench/bigworld.py --players 100,300 --npcs 100000 --seconds 20
    python bench/bigworld.py --systems colyseus-view --players 100,300      # one system
    python bench/bigworld.py --scale --seconds 10     # tick time and CPU against P and against E

Systems:
  ``gamesync``       ``gamesync serve --game bigworld`` (R = 500 around each client's player);
  ``gamesync-all``   the same server with ``--no-interest``: every client gets every entity;
  ``colyseus-view``  bench/colyseus ``server.mjs --game bigworld``: Colyseus 0.18 with a
                     ``.view()`` entity map, one ``StateView`` per client kept by a grid
                     (bench/colyseus/bigworld.mjs); installed by bench/colyseus/setup.sh;
  ``colyseus-view-dormant`` (only when asked for) the same with ``--dormant``: NPCs that no
                     client may see are not written to the Colyseus state until one may.

Each run is measured as bench/arena.py measures (its ``run_one``): server CPU and peak RSS
from /proc, wire bytes from the kernel's TCP counters of the server's sockets, the client
fields from the bots, plus ``visible_entities_mean`` (entities a bot holds after warm-up)
and the server's own tick figures from its stats file. Each run prints one JSON line (also
appended to bench/results/bigworld.jsonl); at the end a table with the ratios gamesync / peer
and a plot in bench/results/bigworld.png. ``--scale`` runs P = 100/300/1000 at E = 100,000 and
E = 10k/100k/1M at P = 300 and plots server tick time and CPU against each
(bigworld_scale.jsonl, bigworld_scale.png). The bots run on the same machine as the server
and share its cores: say so beside any figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from arena import FIELDS, NODE, RESULTS, ratio, run_one

HERE = Path(__file__).resolve().parent
SYSTEMS = ("gamesync", "gamesync-all", "colyseus-view")
#: not run by default: Colyseus with --dormant (NPCs outside every view are not written to its state)
EXTRA_SYSTEMS = ("colyseus-view-dormant",)
BIG_FIELDS = (*FIELDS, "visible_entities_mean")
#: the server's own figures, per system, shown in the table after the ARENA fields
SERVER_FIELDS = ("clients_joined", "ticks_per_s", "server_ms_per_tick", "states_per_s_server",
                 "server_cpu_us_per_client_state")
NODE_HEAP_MIB = 8192  # E = 1,000,000 needs more than Node's default heap limit
#: seconds the bots get to join: a Colyseus join encodes the whole state (E entities) once
#: more, and at P = 300 a patch takes seconds: Colyseus then admits about one client a second
JOIN_TIMEOUT_S = 600


def commands(system: str, port_file: Path, stats_file: Path, npcs: int, check: bool = False) -> tuple[list[str], Any]:
    """(server command, function url, P, seconds, warmup, ramp -> bots command), as arena.commands;
    ``check``: the Colyseus server checks its views against every entity once a second."""
    py = sys.executable
    if system in ("gamesync", "gamesync-all"):
        server = [py, "-m", "gamesync", "serve", "--game", "bigworld", "--npcs", str(npcs), "--port", "0",
                  "--http-port", "-1", "--port-file", str(port_file), "--stats-file", str(stats_file),
                  "--stats-interval", "0.5", *(["--no-interest"] if system == "gamesync-all" else [])]
        bots = [py, "-m", "gamesync", "bots"]
        extra = ["--room", "big", "--game", "bigworld", "--json", "--no-progress"]
    elif system in ("colyseus-view", "colyseus-view-dormant"):
        node = str(NODE)
        server = [node, f"--max-old-space-size={NODE_HEAP_MIB}", str(HERE / "colyseus" / "server.mjs"),
                  "--game", "bigworld", "--npcs", str(npcs), "--port", "0", "--port-file", str(port_file),
                  "--stats-file", str(stats_file), "--stats-interval", "0.5",
                  *(["--dormant"] if system.endswith("-dormant") else []), *(["--check-interest"] if check else [])]
        bots = [node, str(HERE / "colyseus" / "bots.mjs")]
        extra = ["--game", "bigworld", "--connect-timeout", str(JOIN_TIMEOUT_S),
                 "--ready-file", str(port_file.with_name("bots.ready"))]
    else:
        raise SystemExit(f"unknown system {system!r} (one of {', '.join(SYSTEMS)})")

    def bots_cmd(url: str, p: int, seconds: float, warmup: float, ramp: float) -> list[str]:
        return [*bots, url, "--count", str(p), "--duration", str(seconds), "--warmup", str(warmup),
                "--ramp", str(ramp), *extra]

    return server, bots_cmd


def _room(stats: dict[str, Any]) -> dict[str, Any]:
    """gamesync's entry for the big room in its stats file (the only room, normally)."""
    rooms = stats.get("rooms") or [{}]
    return next((r for r in rooms if r.get("room") == "big"), rooms[0])


def gamesync_window(s0: dict[str, Any], s1: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Tick figures over the window from gamesync's stats file (its means are since the room
    opened, so each is turned back into a total and differenced)."""
    r0, r1 = _room(s0), _room(s1)
    ticks = r1.get("ticks", 0) - r0.get("ticks", 0)
    if ticks <= 0:
        return {}

    def per_tick(key: str) -> float:
        return round((r1.get(key, 0.0) * r1["ticks"] - r0.get(key, 0.0) * r0["ticks"]) / ticks, 3)

    out = {"ticks_per_s": round(ticks / seconds, 2), "server_ms_per_tick": per_tick("tick_ms_mean")}
    for phase in ("read", "step", "encode", "send"):
        if f"{phase}_ms_mean" in r1:
            out[f"{phase}_ms_per_tick"] = per_tick(f"{phase}_ms_mean")
    return out


def colyseus_window(s0: dict[str, Any], s1: dict[str, Any]) -> dict[str, Any]:
    """Tick and patch figures over the window from server.mjs's stats file."""
    ticks, patches = s1.get("ticks", 0) - s0.get("ticks", 0), s1.get("patches", 0) - s0.get("patches", 0)
    dt = s1.get("time", 0) - s0.get("time", 0)
    if ticks <= 0 or dt <= 0:
        return {}
    sim = s1["sim_ms_total"] - s0["sim_ms_total"]
    patch = s1["patch_ms_total"] - s0["patch_ms_total"]
    return {
        "ticks_per_s": round(ticks / dt, 2),
        "states_per_s_server": round(patches / dt, 2),  # patches the room encoded and sent per second
        "server_ms_per_tick": round((sim + patch) / ticks, 3),  # simulation + patches, per tick
        "sim_ms_per_tick": round(sim / ticks, 3),
        "interest_ms_per_tick": round((s1.get("interest_ms_total", 0) - s0.get("interest_ms_total", 0)) / ticks, 3),
        "patch_ms_per_patch": round(patch / max(1, patches), 3),
        "tick_overrun_pct": round(100 * (s1["tick_overruns"] - s0["tick_overruns"]) / ticks, 2),
        "view_entities_mean_server": s1.get("view_entities_mean"),
        # --check-interest: totals since the server started, joins included
        **({f"interest_{k}": s1[f"interest_{k}"] for k in ("checks", "missing", "leaked")}
           if s1.get("interest_checks") else {}),
    }


def run(system: str, players: int, seconds: float, warmup: float, npcs: int, check: bool = False) -> dict[str, Any]:
    """One measured run: bench/arena.py's fields plus the big world's."""
    window: dict[str, Any] = {}
    res = run_one(system, players, seconds, warmup, npcs, make_commands=lambda *a: commands(*a, check=check),
                  window=window, join_timeout=JOIN_TIMEOUT_S)
    for key in ("rtt_ms", "jitter_ms"):
        res.pop(key, None)
    res["scenario"] = "bigworld"
    res["R"] = None if system == "gamesync-all" else 500
    clients = window.get("clients") or [{}]
    res["visible_entities_mean"] = clients[0].get("visible_entities_mean")
    for key in ("visible_distance_max", "inputs_per_client_s", "bot_process_cpu"):
        if key in clients[0]:
            res[key] = clients[0][key]
    s0, s1 = window.get("stats0", {}), window.get("stats1", {})
    joined = s1.get("clients")
    if joined is not None:
        res["clients_joined"] = joined
        if 0 < joined < players:  # run_one divides by P: per client means per client that got in
            res["wire_bytes_per_client_s"] = round(res["wire_bytes_per_client_s"] * players / joined, 1)
    if system.startswith("colyseus"):
        res.update(colyseus_window(s0, s1))
    else:
        res.update(gamesync_window(s0, s1, window.get("seconds", seconds)))
    # a server that cannot keep up sends fewer states for its (at most one core of) CPU: the
    # CPU per state a client received compares such a server with one that keeps 30 Hz
    states = (joined or players) * (res.get("states_per_client_s") or 0)
    if states > 0 and res.get("server_cpu") is not None:
        res["server_cpu_us_per_client_state"] = round(res["server_cpu"] / states * 1e6, 1)
    return res


def table(rows: list[dict[str, Any]]) -> str:
    """One table per (P, E): every field by system, then gamesync / peer for each peer."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    peers = [s for s in systems if s != "gamesync"]
    by = {(r["system"], r["P"], r["E"]): r for r in rows}
    out = []
    for p, e in sorted({(r["P"], r["E"]) for r in rows}):
        out.append(f"\nP = {p}, E = {e}, R = 500 (bots on the same 2-core machine)")
        head = "| field | " + " | ".join(systems) + " | " + " | ".join(f"gamesync/{s}" for s in peers) + " |"
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        for f in (*BIG_FIELDS, *SERVER_FIELDS):
            vals = [by.get((s, p, e), {}).get(f) for s in systems]
            g = by.get(("gamesync", p, e), {}).get(f)
            rat = [ratio(g, by.get((s, p, e), {}).get(f)) for s in peers]
            out.append(f"| {f} | " + " | ".join("-" if v is None else str(v) for v in vals)
                       + " | " + " | ".join(rat) + " |")
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Server CPU, wire bytes per client, states/s, ack p99 and entities held, against P, per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = [("server_cpu", "server CPU (s/s)"), ("wire_bytes_per_client_s", "wire bytes per client per s"),
              ("states_per_client_s", "states per client per s"), ("ack_latency_ms_p99", "ack latency p99 (ms)"),
              ("visible_entities_mean", "entities a bot holds")]
    fig, axes = plt.subplots(1, 5, figsize=(21, 4))
    for ax, (f, label) in zip(axes, fields, strict=True):
        for s in dict.fromkeys(r["system"] for r in rows):
            for e in sorted({r["E"] for r in rows}):
                pts = sorted((r["P"], r[f]) for r in rows if r["system"] == s and r["E"] == e and r.get(f) is not None)
                if pts:
                    ax.plot([p for p, _ in pts], [v for _, v in pts], "o-", label=f"{s}, E = {e:,}")
        ax.set_xlabel("players P")
        ax.set_title(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("ARENA.md big world (R = 500), server and bots on one 2-core machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_scale(rows: list[dict[str, Any]], path: Path, p_fixed: int, e_fixed: int) -> None:
    """Server time per tick (gamesync: also by phase) and CPU against P (at E = e_fixed) and against E
    (at P = p_fixed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    sweeps = [("P", "E", e_fixed, "players P"), ("E", "P", p_fixed, "NPCs E (same density)")]
    for col, (x, fixed, value, xlabel) in enumerate(sweeps):
        for row, (f, label) in enumerate((("server_ms_per_tick", "server time per tick (ms)"),
                                          ("server_cpu", "server CPU (s/s)"))):
            ax = axes[row][col]
            for s in dict.fromkeys(r["system"] for r in rows):
                pts = sorted((r[x], r[f]) for r in rows
                             if r["system"] == s and r[fixed] == value and r.get(f) is not None)
                if pts:
                    ax.plot([a for a, _ in pts], [b for _, b in pts], "o-", label=s)
            if row == 0:  # gamesync's tick by phase (its stats file times each one)
                for phase in ("read", "step", "encode", "send"):
                    pts = sorted((r[x], r[f"{phase}_ms_per_tick"]) for r in rows if r["system"] == "gamesync"
                                 and r[fixed] == value and r.get(f"{phase}_ms_per_tick") is not None)
                    if pts:
                        ax.plot([a for a, _ in pts], [b for _, b in pts], ":", lw=1, label=f"gamesync {phase}")
                ax.axhline(1000 / 30, color="grey", ls="--", lw=0.8, label="tick period (33.3 ms)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_title(f"{label}, {fixed} = {value:,}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Big world scaling (R = 500), server and bots on one 2-core machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _ints(spec: str) -> list[int]:
    return [int(x) for x in spec.split(",") if x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default="100,300", help="comma-separated player counts (default 100,300)")
    ap.add_argument("--npcs", default="100000", help="comma-separated NPC counts E (default 100000)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)} "
                    "(default: all three)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds after all joined (default 5)")
    ap.add_argument("--scale", action="store_true", help="scaling runs instead: --scale-players at E = "
                    "--scale-e, and --scale-npcs at P = --scale-p")
    ap.add_argument("--scale-players", default="100,300,1000", help="P sweep of --scale (default 100,300,1000)")
    ap.add_argument("--scale-npcs", default="10000,100000,1000000",
                    help="E sweep of --scale (default 10000,100000,1000000)")
    ap.add_argument("--scale-p", type=int, default=300, help="P of the E sweep (default 300)")
    ap.add_argument("--scale-e", type=int, default=100000, help="E of the P sweep (default 100000)")
    ap.add_argument("--check-interest", action="store_true", help="the Colyseus server checks every view against "
                    "every entity once a second (within R: must be in it; beyond 2R: must not); the run reports "
                    "interest_checks, interest_missing and interest_leaked (slow at large P x E)")
    ap.add_argument("--no-plot", action="store_true", help="skip the plot")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSONL and PNG (default bench/results)")
    args = ap.parse_args()
    from tqdm import tqdm

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    systems = [s for s in args.systems.split(",") if s]
    if unknown := set(systems) - {*SYSTEMS, *EXTRA_SYSTEMS}:
        ap.error(f"unknown system(s) {', '.join(sorted(unknown))}")
    if args.scale:
        cases = [(p, args.scale_e) for p in _ints(args.scale_players)]
        cases += [(args.scale_p, e) for e in _ints(args.scale_npcs) if (args.scale_p, e) not in cases]
        name = "bigworld_scale"
    else:
        cases = [(p, e) for e in _ints(args.npcs) for p in _ints(args.players)]
        name = "bigworld"
    runs = [(s, p, e) for p, e in cases for s in systems]
    if any(s.startswith("colyseus") for s in systems):  # npm ci of the pinned Colyseus, once; idempotent
        subprocess.run(["bash", str(HERE / "colyseus" / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for system, p, e in tqdm(runs, desc=name, file=sys.stderr, disable=args.no_progress):
        try:
            res = run(system, p, args.seconds, args.warmup, e, args.check_interest)
        except (TimeoutError, subprocess.TimeoutExpired, json.JSONDecodeError, RuntimeError) as err:
            res = {"system": system, "scenario": "bigworld", "P": p, "E": e, "error": f"{type(err).__name__}: {err}"}
        rows.append(res)
        line = json.dumps(res)
        print(line, flush=True)
        with open(out / f"{name}.jsonl", "a") as f:
            f.write(line + "\n")
    ok = [r for r in rows if "error" not in r]
    print(table(ok))
    if not args.no_plot and ok:
        if args.scale:
            plot_scale(ok, out / f"{name}.png", args.scale_p, args.scale_e)
        else:
            plot(ok, out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
