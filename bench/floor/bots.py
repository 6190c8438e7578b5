"""Load for the floor server (bench/floor/server.py): N TCP connections in one process.

    python bench/floor/bots.py ws://127.0.0.1:PORT --count 200 --duration 20 --warmup 5 --ramp 1

Each connection answers every read that brought bytes with one client frame of
``--input-bytes`` bytes (default 28: a gamesync bot's input and ack, two masked frames).
Measured over ``duration`` s starting ``warmup`` s after all are connected: bytes and reads
per client per second. Prints one JSON line with bench/arena.py's client fields (the floor
has no acks: the latency fields are null).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from urllib.parse import urlsplit


def connect(host: str, port: int, count: int, ramp: float) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.create_connection((host, port), timeout=10)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
        if ramp and i % 50 == 49:
            time.sleep(ramp * 50 / count)
    return socks


def pump(ep: select.epoll, by_fd: dict[int, socket.socket], msg: bytes, until: float) -> tuple[int, int, int]:
    """Answer every read until ``until``: (bytes read, reads, connections that closed)."""
    got = reads = closed = 0
    while (left := until - time.monotonic()) > 0:
        for fd, _ in ep.poll(min(left, 0.1)):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                closed += 1
                continue
            got += len(data)
            reads += 1
            try:
                s.send(msg)
            except OSError:
                pass
    return got, reads, closed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--ramp", type=float, default=1.0)
    ap.add_argument("--input-bytes", type=int, default=28, help="bytes each client sends per frame it reads")
    args = ap.parse_args()
    u = urlsplit(args.url)
    socks = connect(u.hostname or "127.0.0.1", u.port or 80, args.count, args.ramp)
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    msg = bytes([0x82, 0x80 | (args.input_bytes - 6)]) + os.urandom(args.input_bytes - 2)  # masked, < 126 B
    pump(ep, by_fd, msg, time.monotonic() + args.warmup)
    t0 = time.monotonic()
    got, reads, closed = pump(ep, by_fd, msg, t0 + args.duration)
    span, n = time.monotonic() - t0, args.count
    print(json.dumps({"payload_bytes_per_client_s": round(got / span / n, 1),
                      "states_per_client_s": round(reads / span / n, 2),
                      "ack_latency_ms_p50": None, "ack_latency_ms_p99": None,
                      "all_connected": closed == 0, "inputs_per_client_s": round(reads / span / n, 2)}))
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
