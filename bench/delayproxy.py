"""A TCP proxy on 127.0.0.1 that adds delay and jitter, for benchmarks at real round-trip times.

    python bench/delayproxy.py --target 127.0.0.1:8765 --rtt-ms 100 --jitter-ms 5 --port-file /tmp/pp

Every byte a side writes reaches the other side ``rtt/2`` (plus up to ``jitter/2``) later, in
order: TCP does not reorder, so a chunk never overtakes the one before it (its release time
is at least the previous chunk's). There is no netem qdisc on these machines, so the delay is
added in user space, by a separate process whose CPU is not the server's. It is one thread
with one ``selectors`` loop and one heap of release times (no task or timer per chunk), so
that at hundreds of connections it stays a small share of a core beside the server and the
bots; what it uses is reported by bench/arena.py as ``proxy_cpu``. It forwards any TCP
protocol, HTTP and WebSockets included, so Colyseus's matchmaking and gamesync's WebSockets
go through the same delay. Stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import heapq
import random
import selectors
import signal
import socket
import time
from collections import deque
from pathlib import Path

#: bytes read per receive; a chunk is released whole
CHUNK = 256 * 1024
#: bytes queued in one direction before its source is no longer read (bounded memory)
MAX_QUEUED = 8 * 1024 * 1024


class Direction:
    """One direction of one connection: chunks with their release times, sent in order."""

    __slots__ = ("src", "dst", "queue", "queued", "out", "last_release", "reading", "src_eof", "eof_due",
                 "eof_sent", "peer")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.queue: deque[tuple[float, bytes]] = deque()  # b"" is the EOF, delayed like data
        self.queued = 0  # bytes in the queue
        self.out = b""  # released, not yet taken by the destination socket
        self.last_release = 0.0
        self.reading = True  # the source is read (off at EOF, or while too much is queued)
        self.src_eof = False
        self.eof_due = False  # the EOF's release time has come: end the destination once out is empty
        self.eof_sent = False
        self.peer: Direction  # the other direction of the same connection


class Proxy:
    """The event loop: read what arrives, release what is due, write what the sockets take."""

    def __init__(self, listener: socket.socket, target: tuple[str, int], delay_s: float, jitter_s: float,
                 seed: int) -> None:
        self.listener, self.target = listener, target
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.rng = random.Random(seed)
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, None)
        self.due: list[tuple[float, int, Direction]] = []  # (release time, order, direction)
        self.order = 0
        self.masks: dict[socket.socket, int] = {}

    def run(self) -> None:
        """Until interrupted (SIGINT, or SIGTERM as main() maps it)."""
        while True:
            timeout = max(0.0, self.due[0][0] - time.monotonic()) if self.due else 0.5
            for key, mask in self.sel.select(min(timeout, 0.5)):
                if key.data is None:
                    self._accept()
                    continue
                reads, writes = key.data
                if mask & selectors.EVENT_READ and reads.reading:
                    self._read(reads)
                if mask & selectors.EVENT_WRITE and writes.src.fileno() != -1:
                    self._write(writes)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, _, d = heapq.heappop(self.due)
                self._release(d, now)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = Direction(client, upstream), Direction(upstream, client)
        up.peer, down.peer = down, up
        self._watch(up)
        self._watch(down)

    def _watch(self, d: Direction) -> None:
        """Select the source of ``d`` for what it needs: reading for ``d``, writing for its peer
        (each socket is the source of one direction and the destination of the other)."""
        s = d.src
        if s.fileno() == -1:
            return
        mask = (selectors.EVENT_READ if d.reading else 0) | (selectors.EVENT_WRITE if d.peer.out else 0)
        old = self.masks.get(s, 0)
        if mask == old:
            return
        if old and mask:
            self.sel.modify(s, mask, (d, d.peer))
        elif mask:
            self.sel.register(s, mask, (d, d.peer))
        else:
            self.sel.unregister(s)
        self.masks[s] = mask

    def _read(self, d: Direction) -> None:
        try:
            data = d.src.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        t = max(d.last_release, time.monotonic() + self.delay_s + self.rng.uniform(0.0, self.jitter_s))
        d.last_release = t
        d.queue.append((t, data))
        d.queued += len(data)
        heapq.heappush(self.due, (t, self.order, d))
        self.order += 1
        if not data:
            d.src_eof, d.reading = True, False
        elif d.queued > MAX_QUEUED:
            d.reading = False  # read again once half of it has gone out
        self._watch(d)

    def _release(self, d: Direction, now: float) -> None:
        parts = []
        while d.queue and d.queue[0][0] <= now:
            data = d.queue.popleft()[1]
            if not data:
                d.eof_due = True
                break
            parts.append(data)
            d.queued -= len(data)
        if parts:
            d.out += b"".join(parts)
        self._write(d)
        if not (d.reading or d.src_eof) and d.queued <= MAX_QUEUED // 2:
            d.reading = True
            self._watch(d)

    def _write(self, d: Direction) -> None:
        if d.dst.fileno() == -1:
            return
        if d.out:
            try:
                n = d.dst.send(d.out)
            except BlockingIOError:
                n = 0
            except OSError:
                self._close(d)
                return
            d.out = d.out[n:]
        self._watch(d.peer)  # the destination is the peer direction's source
        if not d.out and d.eof_due and not d.eof_sent:
            d.eof_sent = True
            try:
                d.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if d.peer.eof_sent:
                self._close(d)

    def _close(self, d: Direction) -> None:
        for s in (d.src, d.dst):
            if s.fileno() != -1:
                if self.masks.pop(s, 0):
                    self.sel.unregister(s)
                s.close()
        for x in (d, d.peer):
            x.queue.clear()
            x.out = b""
            x.reading = False


def serve(port: int, target: tuple[str, int], rtt_ms: float, jitter_ms: float, port_file: str | None,
          seed: int = 1) -> None:
    """Listen on 127.0.0.1:``port`` and relay to ``target`` until interrupted."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    if port_file:
        Path(port_file).write_text(f"{listener.getsockname()[1]}\n")
    # half the round trip each way; the jitter likewise split over the two directions
    Proxy(listener, target, rtt_ms / 2000.0, jitter_ms / 2000.0, seed).run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1 (default: a free one)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--rtt-ms", type=float, default=100.0, help="round-trip time to add (default 100)")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="extra random round-trip delay, 0..J ms")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(args.port, (host, int(port)), args.rtt_ms, args.jitter_ms, args.port_file, args.seed)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
