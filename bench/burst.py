"""Handshake burst: a connected client's snapshot gaps while N clients arrive at once (issue 15).

    python bench/burst.py --clients 200 --runs 2

Starts ``gamesync serve`` (arena, E NPCs), joins one watcher, waits, then opens N sockets and
has each send its WebSocket upgrade request and its join in one write, all at once. Prints one
JSON line per run: the watcher's largest gap between snapshots before the burst and from the
burst on (goal: under 100 ms), and how many gaps from the burst on were over 50 ms. The server
and this script run on the same machine: say so beside any figure.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from gamesync.client.botsocket import BotSocket
from gamesync.core import clientproto as cp
from gamesync.core.protocol import pack_join
from gamesync.wsframe import masked_binary_frame


async def watch(port: int, times: list[float], stop: trio.Event) -> None:
    """Join the arena and note when each snapshot arrives."""
    proto = cp.ClientProtocol("arena", "watcher", None, auto_ack=True, materialise=False)
    link = BotSocket("127.0.0.1", port, "/", print, lambda code, reason: print("closed", code, reason))
    await link.open()
    await link.send_all(masked_binary_frame(proto.join()))
    assert link.sock is not None
    while not stop.is_set():
        await trio.lowlevel.wait_readable(link.sock)
        msgs = link.receive()
        if msgs:
            times.append(time.monotonic())
            proto.receive_many(msgs, trio.current_time())


def burst(port: int, n: int) -> tuple[list[socket.socket], float]:
    """N connected sockets, then each one's upgrade request and join in one write."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    first = []
    for i in range(n):
        key = base64.b64encode(os.urandom(16)).decode()
        first.append((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
                     + masked_binary_frame(pack_join("arena", f"burst{i}")))
    t0 = time.monotonic()
    for s, data in zip(socks, first, strict=True):
        s.sendall(data)
    return socks, t0


async def one_run(port: int, n: int, before_s: float, after_s: float) -> dict[str, Any]:
    times: list[float] = []
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, port, times, stop)
        await trio.sleep(before_s)
        socks, t0 = await trio.to_thread.run_sync(burst, port, n)
        await trio.sleep(after_s)
        stop.set()
        nursery.cancel_scope.cancel()
    for s in socks:
        s.close()
    pairs = list(itertools.pairwise(times))
    before = [(b - a) * 1e3 for a, b in pairs if b < t0]
    after = [(b - a) * 1e3 for a, b in pairs if b >= t0]
    return {"clients": n, "max_gap_ms_before": round(max(before, default=0.0), 1),
            "max_gap_ms_from_burst": round(max(after, default=0.0), 1),
            "gaps_over_50ms_from_burst": sum(g > 50 for g in after),
            "load_generator": "same machine (2 cores shared)"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200, help="clients arriving at once (default 200)")
    ap.add_argument("--runs", type=int, default=1, help="runs, each against a fresh server (default 1)")
    ap.add_argument("--npcs", type=int, default=1000, help="NPCs E (default 1000)")
    args = ap.parse_args()
    for _ in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="gs-burst-"))
        port_file = tmp / "port"
        server = subprocess.Popen([sys.executable, "-m", "gamesync", "serve", "--port", "0", "--http-port", "-1",
                                   "--npcs", str(args.npcs), "--port-file", str(port_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            port = int(port_file.read_text())
            print(json.dumps(trio.run(one_run, port, args.clients, 2.0, 3.0)), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
