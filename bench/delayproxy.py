"""A TCP proxy on 127.0.0.1 that adds delay and jitter, for benchmarks at real round-trip times.

    python bench/delayproxy.py --target 127.0.0.1:8765 --rtt-ms 100 --jitter-ms 5 --port-file /tmp/pp

Every byte a side writes reaches the other side ``rtt/2`` (plus up to ``jitter``) later, in
order: TCP does not reorder, so a chunk never overtakes the one before it (its release time
is at least the previous chunk's). There is no netem qdisc on these machines, so the delay is
added in user space; the proxy is a separate process (its CPU is not the server's), and it
costs about one syscall per chunk and direction. It forwards any TCP protocol, HTTP and
WebSockets included, so Colyseus's matchmaking and gamesync's WebSockets go through the same
delay. Stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import random
import signal
from collections import deque
from pathlib import Path

import trio

#: bytes read per receive; a chunk is released whole
CHUNK = 256 * 1024
#: chunks in flight per direction before the reader waits (bounded memory)
MAX_IN_FLIGHT = 4096


class Direction:
    """One direction of one connection: chunks with their release times, released in order."""

    def __init__(self, delay_s: float, jitter_s: float, rng: random.Random) -> None:
        self.delay_s, self.jitter_s, self.rng = delay_s, jitter_s, rng
        self.queue: deque[tuple[float, bytes]] = deque()
        self.last_release = 0.0
        self.ready = trio.Event()
        self.room = trio.Semaphore(MAX_IN_FLIGHT)

    def release_time(self, now: float) -> float:
        """When a chunk read at ``now`` goes out: after the delay, never before the previous one."""
        t = max(self.last_release, now + self.delay_s + self.rng.uniform(0.0, self.jitter_s))
        self.last_release = t
        return t

    async def pump_in(self, src: trio.SocketStream) -> None:
        try:
            while True:
                await self.room.acquire()
                data = await src.receive_some(CHUNK)
                if not data:
                    break
                self.queue.append((self.release_time(trio.current_time()), data))
                self.ready.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        self.queue.append((self.release_time(trio.current_time()), b""))  # EOF, delayed like data
        self.ready.set()

    async def pump_out(self, dst: trio.SocketStream) -> None:
        try:
            while True:
                while not self.queue:
                    await self.ready.wait()
                    self.ready = trio.Event()
                at, _ = self.queue[0]
                await trio.sleep_until(at)
                # everything due by now goes in one write
                now = trio.current_time()
                parts = []
                while self.queue and self.queue[0][0] <= now:
                    parts.append(self.queue.popleft()[1])
                    self.room.release()
                data = b"".join(parts)
                if data:
                    await dst.send_all(data)
                if parts and parts[-1] == b"":
                    await dst.send_eof()
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return


async def relay(client: trio.SocketStream, target: tuple[str, int], delay_s: float, jitter_s: float,
                rng: random.Random) -> None:
    try:
        upstream = await trio.open_tcp_stream(*target)
    except OSError:
        await client.aclose()
        return
    async with client, upstream:
        up, down = Direction(delay_s, jitter_s, rng), Direction(delay_s, jitter_s, rng)
        async with trio.open_nursery() as n:
            n.start_soon(up.pump_in, client)
            n.start_soon(up.pump_out, upstream)
            n.start_soon(down.pump_in, upstream)
            n.start_soon(down.pump_out, client)


async def serve(port: int, target: tuple[str, int], rtt_ms: float, jitter_ms: float, port_file: str | None,
                seed: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    rng = random.Random(seed)
    one_way, jitter = rtt_ms / 2000.0, jitter_ms / 2000.0  # jitter split over the two directions
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    bound = listeners[0].socket.getsockname()[1]
    if port_file:
        Path(port_file).write_text(f"{bound}\n")
    task_status.started(bound)

    async def handler(stream: trio.SocketStream) -> None:
        await relay(stream, target, one_way, jitter, rng)

    await trio.serve_listeners(handler, listeners)


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
        trio.run(serve, args.port, (host, int(port)), args.rtt_ms, args.jitter_ms, args.port_file, args.seed)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
