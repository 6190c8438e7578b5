"""The floor: the least any server can spend per client per tick on this machine.

    python bench/floor/server.py --port 0 --port-file PORT_FILE [--frame-bytes 230]

Thirty times a second it reads every socket that has something (one ``recv`` each, after
one ``epoll_wait``) and writes one frame of ``--frame-bytes`` bytes (a WebSocket binary
frame header and its payload, the same bytes for every client) to every client (one ``send``
each). No handshake, no protocol, no game, no state: a loop over the sockets in plain
Python, with the kernel work every server of the arena must do at the least (two TCP
segments per client per tick, one each way). ``bench/arena.py --systems ...,floor``
measures it the same way as the real servers, with frames as large as gamesync's in the same
round; ``bench/floor/bots.py`` is its load.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import time
from pathlib import Path


def frame(size: int) -> bytes:
    """A server-to-client binary WebSocket frame of ``size`` bytes in all (header included)."""
    if size < 2 + 126:
        return bytes([0x82, size - 2]) + os.urandom(size - 2)
    return bytes([0x82, 126]) + (size - 4).to_bytes(2, "big") + os.urandom(size - 4)


class Floor:
    """The listening socket, the clients and the tick."""

    def __init__(self, host: str, port: int, frame_bytes: int) -> None:
        self.listener = socket.create_server((host, port), backlog=4096)
        self.listener.setblocking(False)
        self.ep = select.epoll()
        self.ep.register(self.listener.fileno(), select.EPOLLIN)
        self.by_fd: dict[int, socket.socket] = {}
        self.clients: list[socket.socket] = []
        self.frame = frame(frame_bytes)
        self.running = True

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.ep.register(conn.fileno(), select.EPOLLIN)
            self.by_fd[conn.fileno()] = conn
            self.clients.append(conn)

    def drop(self, conn: socket.socket) -> None:
        self.ep.unregister(conn.fileno())
        del self.by_fd[conn.fileno()]
        self.clients.remove(conn)
        conn.close()

    def tick(self) -> None:
        """Read whatever each socket has, then one frame to every client."""
        lfd = self.listener.fileno()
        for fd, _ in self.ep.poll(0):
            if fd == lfd:
                self.accept()
                continue
            conn = self.by_fd[fd]
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.drop(conn)
        buf = self.frame
        for conn in self.clients:
            try:
                conn.send(buf)
            except BlockingIOError:
                pass  # full: this tick's frame is skipped, as a server skips a slow client
            except OSError:
                pass  # gone: the next read sees it

    def run(self, rate: float) -> None:
        period, due = 1.0 / rate, time.monotonic()
        while self.running:
            self.tick()
            due += period
            time.sleep(max(0.0, due - time.monotonic()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    ap.add_argument("--frame-bytes", type=int, default=230, help="bytes per client per tick (default 230)")
    ap.add_argument("--rate", type=float, default=30.0, help="ticks per second (default 30, ARENA.md)")
    ap.add_argument("--npcs", type=int, default=0, help="accepted for bench/arena.py; the floor has no world")
    args = ap.parse_args()
    floor = Floor(args.host, args.port, max(2, args.frame_bytes))

    def stop(*_: object) -> None:
        floor.running = False

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.port_file:
        args.port_file.write_text(str(floor.listener.getsockname()[1]))
    floor.run(args.rate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
