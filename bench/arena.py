"""Arena benchmark: `gamesync serve` and `gamesync bots` as separate processes, ARENA.md fields out.

    python bench/arena.py --players 50,200 --seconds 20

For each player count P: start the server (E NPCs), start P bots in one process, wait
until all have joined, warm up 5 s, then measure for --seconds. Server CPU and peak RSS come
from /proc, wire bytes from the server's own count of bytes written to its sockets, and the
client-side fields (payload bytes, states/s, ack latency) from the bots. Prints one JSON
line per run and appends it to bench/results/arena.jsonl. Both processes run on this
machine and share its cores: say so next to any figure.
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

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_stats(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def run_one(players: int, seconds: float, warmup: float, npcs: int, progress: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gs-arena-"))
    port_file, stats_file = tmp / "port", tmp / "stats.json"
    py = sys.executable
    server = subprocess.Popen(
        [py, "-m", "gamesync", "serve", "--port", "0", "--npcs", str(npcs), "--port-file", str(port_file),
         "--stats-file", str(stats_file), "--stats-interval", "0.5"],
        stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"))
    bots = None
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 15, "the server to listen")
        url = f"ws://127.0.0.1:{port_file.read_text().strip()}"
        ramp = max(1.0, players / 200)
        bots = subprocess.Popen(
            [py, "-m", "gamesync", "bots", url, "--count", str(players), "--duration", str(seconds),
             "--warmup", str(warmup), "--ramp", str(ramp), "--json"] + ([] if progress else ["--no-progress"]),
            stdout=subprocess.PIPE, stderr=None if progress else subprocess.DEVNULL, text=True)

        def clients() -> int:
            rooms = read_stats(stats_file).get("rooms", [])
            return sum(r["clients"] for r in rooms)

        wait_for(lambda: clients() >= players, ramp + 30, f"{players} bots to join")
        time.sleep(warmup)
        s0, c0, t0 = read_stats(stats_file), cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        s1, c1, t1 = read_stats(stats_file), cpu_seconds(server.pid), time.monotonic()
        out, _ = bots.communicate(timeout=ramp + warmup + seconds + 60)
        client = json.loads(out.strip().splitlines()[-1])
        r0, r1 = s0["rooms"][0], s1["rooms"][0]
        ticks = max(1, r1["ticks"] - r0["ticks"])
        result = {
            "system": "gamesync",
            "P": players,
            "E": npcs,
            "seconds": seconds,
            "server_cpu": round((c1 - c0) / (t1 - t0), 3),
            "server_rss_mib": round(peak_rss_mib(server.pid), 1),
            "wire_bytes_per_client_s": round((r1["bytes_out"] - r0["bytes_out"]) / (t1 - t0) / players, 1),
            "payload_bytes_per_client_s": client["payload_bytes_per_client_s"],
            "states_per_client_s": client["states_per_client_s"],
            "ack_latency_ms_p50": client["ack_latency_ms_p50"],
            "ack_latency_ms_p99": client["ack_latency_ms_p99"],
            "tick_overrun_pct": round(100 * (r1["overruns"] - r0["overruns"]) / ticks, 2),
            "tick_ms_mean": round(r1["tick_ms_mean"], 2),
            "all_connected": client["all_connected"],
            "load_generator": "same machine (2 cores shared)",
        }
        return result
    finally:
        for proc in (bots, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default="50,200", help="comma-separated player counts (default 50,200)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds after all joined (default 5)")
    ap.add_argument("--npcs", type=int, default=1000, help="NPCs E (default 1000)")
    ap.add_argument("--no-progress", action="store_true", help="hide the bots' progress bars")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    for p in [int(x) for x in args.players.split(",") if x]:
        res = run_one(p, args.seconds, args.warmup, args.npcs, not args.no_progress)
        line = json.dumps(res)
        print(line, flush=True)
        with open(RESULTS / "arena.jsonl", "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
