"""Scale-out cost: arena rooms of 20 players over 1 node alone, 1 node in a cluster and 2 nodes
in a cluster, on this machine, with a real redis-server and real ``gamesync serve`` processes.

    python bench/scale.py                                # 3 rooms x 20 players, 10 s per setup
    python bench/scale.py --rooms 2 --seconds 2 --warmup 1 --no-progress --out /tmp/s   # what tests/ runs

For each setup it reports, per node: CPU (cores, from /proc over the measured window), rooms,
CPU per room, and Redis commands per second (the node's own count; redis-server's
``total_commands_processed`` for the whole cluster, as a check). "alone" runs without
``--redis``: the difference in CPU per room between "alone" and "cluster-1" is the cost of
being in a cluster (leases, lobby entries, presence, saves, subscriptions). The bots (one
``gamesync bots`` process per room, 20 players each) run on the same machine and share its
cores with the nodes. Writes ``scale.jsonl`` (one line per setup) and ``scale.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gamesync.cluster.local import _die_with_parent, free_port, start_redis, stop, wait_port  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def node_stats(path: str) -> dict[str, Any]:
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.05)
    return {}


def redis_info(port: int) -> dict[str, float]:
    out = subprocess.run(["redis-cli", "-p", str(port), "info"], capture_output=True, text=True, timeout=5).stdout
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))
    return {"commands": float(info.get("total_commands_processed", 0)),
            "cpu": float(info.get("used_cpu_sys", 0)) + float(info.get("used_cpu_user", 0))}


def run_setup(name: str, nodes: int, cluster: bool, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    redis = rport = None
    procs: list[tuple[str, subprocess.Popen[bytes], int, str]] = []
    bots: list[subprocess.Popen[str]] = []
    try:
        if cluster:
            redis, rport = start_redis()
        for i in range(nodes):
            port, nid = free_port(), f"n{i + 1}"
            stats = os.path.join(workdir, f"{name}-{nid}.json")
            cmd = [sys.executable, "-m", "gamesync", "serve", "--port", str(port), "--http-port", "-1",
                   "--npcs", str(args.npcs), "--stats-file", stats, "--stats-interval", "0.5"]
            if cluster:
                cmd += ["--redis", f"redis://127.0.0.1:{rport}", "--node-id", nid]
            procs.append((nid, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                      preexec_fn=_die_with_parent), port, stats))
        for _, _, port, _ in procs:
            wait_port(port, 15)
        # every bot connects from 127.0.0.1: stay under a node's 20 new connections/s per address
        ramp = max(1.0, args.players * -(-args.rooms // nodes) / 15)
        run_s = args.warmup + args.seconds + 1.0
        for j in range(args.rooms):
            _, _, port, _ = procs[j % nodes]
            bots.append(subprocess.Popen(
                [sys.executable, "-m", "gamesync", "bots", f"ws://127.0.0.1:{port}/", "--room", f"scale{j}",
                 "--count", str(args.players), "--duration", str(run_s), "--warmup", "0", "--ramp", str(ramp),
                 "--json", "--no-progress"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent))
        time.sleep(ramp + 0.5 + args.warmup)  # everyone in, rooms warm
        t0 = time.monotonic()
        c0 = {nid: cpu_s(p.pid) for nid, p, _, _ in procs}
        s0 = {nid: node_stats(st) for nid, _, _, st in procs}
        r0 = redis_info(rport) if rport else None
        time.sleep(args.seconds)
        dt = time.monotonic() - t0
        c1 = {nid: cpu_s(p.pid) for nid, p, _, _ in procs}
        time.sleep(0.6)  # one more stats-file write
        s1 = {nid: node_stats(st) for nid, _, _, st in procs}
        r1 = redis_info(rport) if rport else None
        bot_results = []
        for b in bots:
            out, _ = b.communicate(timeout=run_s + 30)
            bot_results.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {"all_connected": False})
        per_node = []
        for nid, _, _, _ in procs:
            rooms = len(s1[nid].get("rooms", []))
            cpu = (c1[nid] - c0[nid]) / dt
            cmds = busy = None
            if cluster:
                span = dt + 0.6  # the stats files were read 0.6 s after the CPU
                cmds = (s1[nid]["cluster"]["redis_commands"] - s0[nid]["cluster"]["redis_commands"]) / span
                busy = (s1[nid]["cluster"]["busy_s"] - s0[nid]["cluster"]["busy_s"]) / span
            per_node.append({"node": nid, "rooms": rooms, "clients": s1[nid].get("clients"),
                             "cpu_cores": round(cpu, 3), "cpu_per_room": round(cpu / rooms, 4) if rooms else None,
                             "redis_cmds_per_s": round(cmds, 1) if cmds is not None else None,
                             "cluster_cpu_cores": round(busy, 5) if busy is not None else None,
                             "cluster_share_pct": round(100 * busy / cpu, 2) if busy is not None and cpu else None,
                             "tick_ms_mean": round(sum(r["tick_ms_mean"] for r in s1[nid]["rooms"]) / rooms, 3)
                             if rooms else None})
        res: dict[str, Any] = {
            "setup": name, "nodes": nodes, "cluster": cluster, "rooms": args.rooms, "players_per_room": args.players,
            "npcs": args.npcs, "seconds": round(dt, 2), "per_node": per_node,
            "cpu_per_room": round(sum(n["cpu_cores"] for n in per_node) / args.rooms, 4),
            "all_connected": all(b.get("all_connected") for b in bot_results),
            "states_per_client_s": min((b.get("states_per_client_s") or 0) for b in bot_results),
            "bot_redirects": sum(b.get("redirects", 0) for b in bot_results),
        }
        if r0 and r1:
            res["redis_server_cmds_per_s"] = round((r1["commands"] - r0["commands"]) / dt, 1)
            res["redis_server_cpu_cores"] = round((r1["cpu"] - r0["cpu"]) / dt, 4)
        return res
    finally:
        for b in bots:
            if b.poll() is None:
                b.kill()
                b.wait()
        for _, p, _, _ in procs:
            stop(p, signal.SIGINT)
        if redis is not None:
            stop(redis, signal.SIGKILL)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [r["setup"] for r in rows]
    ax1.bar(labels, [r["cpu_per_room"] * 100 for r in rows], color="#4a7")
    ax1.set_ylabel("server CPU per room (% of a core)")
    ax1.set_title(f"{rows[0]['players_per_room']} players + {rows[0]['npcs']} NPCs per room")
    cl = [r for r in rows if r["cluster"]]
    ax2.bar([f"{r['setup']}\n{n['node']}" for r in cl for n in r["per_node"]],
            [n["redis_cmds_per_s"] for r in cl for n in r["per_node"]], color="#47a")
    ax2.set_ylabel("Redis commands/s per node")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rooms", type=int, default=3,
                    help="arena rooms (default 3: the bots all come from 127.0.0.1, and a node takes 64 connections "
                         "per address)")
    ap.add_argument("--players", type=int, default=20, help="bots per room (default 20)")
    ap.add_argument("--npcs", type=int, default=1000, help="NPCs per room (default 1000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per setup (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds after the bots joined, before measuring")
    ap.add_argument("--setups", default="alone-1,cluster-1,cluster-2",
                    help="comma-separated among alone-N and cluster-N (default alone-1,cluster-1,cluster-2)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="directory for scale.jsonl and scale.png")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    from tqdm import tqdm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gamesync-scale-") as workdir, open(out / "scale.jsonl", "w") as f:
        for setup in tqdm(args.setups.split(","), desc="scale", file=sys.stderr, disable=args.no_progress):
            kind, n = setup.split("-")
            res = run_setup(setup, int(n), kind == "cluster", args, workdir)
            rows.append(res)
            line = json.dumps(res)
            f.write(line + "\n")
            print(line, flush=True)
    plot(rows, out / "scale.png")
    for r in rows:
        for n in r["per_node"]:
            extra = (f", Redis {n['redis_cmds_per_s']} commands/s, "
                     f"cluster work {n['cluster_share_pct']} % of the node's CPU" if r["cluster"] else "")
            print(f"{r['setup']} {n['node']}: {n['rooms']} rooms, {n['cpu_cores']:.3f} cores, "
                  f"{(n['cpu_per_room'] or 0) * 100:.1f} % of a core per room{extra}", file=sys.stderr)
    return 0 if all(r["all_connected"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
