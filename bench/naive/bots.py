"""Arena bots for the naive server: N ``websockets`` clients in one asyncio process.

    python bench/naive/bots.py ws://127.0.0.1:PORT --count 50 --duration 10 --warmup 3 --ramp 2

Each bot (ARENA.md): a new random direction every 1 s, its current input sent at 30 Hz
(seq + 1 per input, random phase), every state message decoded and its own ``ack`` looked
up. Measured over ``duration`` s starting ``warmup`` s after every bot has joined: payload
bytes and states received per second, and ack latency (sending input N -> first state with
own ack >= N). Prints one JSON line on stdout; diagnostics go to stderr.

All bots receive the same broadcast bytes, so by default a state message is unpacked once
and the result shared by every bot that receives identical bytes (gamesync's swarm does the
same); ``--decode-each`` makes every bot run its own ``msgpack.unpackb``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import deque

import msgpack
import websockets
from websockets.asyncio.client import connect

INPUT_HZ = 30
MAX_PENDING = 256  # inputs awaiting their ack per bot; older ones are dropped (no sample)


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


class SharedDecode:
    """Unpack identical payload bytes once: the last few payloads and their {id: ack} maps."""

    def __init__(self, keep: int = 16) -> None:
        self.recent: deque[tuple[bytes, dict]] = deque(maxlen=keep)
        self.hits = self.misses = 0

    def acks(self, payload: bytes) -> dict:
        for data, acks in reversed(self.recent):
            if data == payload:
                self.hits += 1
                return acks
        self.misses += 1
        acks = ack_map(msgpack.unpackb(payload))
        self.recent.append((payload, acks))
        return acks


def ack_map(state: list) -> dict:
    return {e["id"]: e["ack"] for e in state if "ack" in e}


class Bot:
    def __init__(self, idx: int, url: str, rng: random.Random, run: Run) -> None:
        self.idx, self.url, self.rng, self.run = idx, url, rng, run
        self.ws = None
        self.me: int | None = None
        self.seq = 0
        self.direction = (0, 0)
        self.pending: deque[tuple[int, float]] = deque()
        self.states = 0
        self.payload_bytes = 0
        self.latencies: list[float] = []
        self.lost: str | None = None

    def reset_stats(self) -> None:
        self.states = 0
        self.payload_bytes = 0
        self.latencies = []

    async def join(self) -> None:
        try:
            compression = "deflate" if self.run.args.compression == "deflate" else None
            self.ws = await connect(self.url, compression=compression, open_timeout=10)
            welcome = msgpack.unpackb(await asyncio.wait_for(self.ws.recv(), 10))
            self.me = welcome["you"]
        except Exception as e:  # whatever stops a join, the bot counts as lost
            self.fail(f"connect failed: {e!r}")

    async def sender(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / INPUT_HZ
        next_send = loop.time() + self.rng.uniform(0, period)
        next_turn = 0.0
        try:
            while self.lost is None:
                await asyncio.sleep(max(0.0, next_send - loop.time()))
                now = loop.time()
                if now >= next_turn:
                    self.direction = (self.rng.choice((-1, 0, 1)), self.rng.choice((-1, 0, 1)))
                    next_turn = now + 1.0
                self.seq += 1
                await self.ws.send(msgpack.packb({"seq": self.seq, "dx": self.direction[0], "dy": self.direction[1]}))
                self.pending.append((self.seq, now))
                if len(self.pending) > MAX_PENDING:
                    self.pending.popleft()
                next_send += period
                if loop.time() > next_send + period:  # behind: skip, don't burst
                    next_send = loop.time()
        except websockets.ConnectionClosed as e:
            self.fail(f"send: {e!r}")

    async def receiver(self) -> None:
        loop = asyncio.get_running_loop()
        run = self.run
        try:
            async for message in self.ws:
                now = loop.time()
                if run.decode is not None:
                    ack = run.decode.acks(message).get(self.me)
                else:
                    ack = ack_map(msgpack.unpackb(message)).get(self.me)
                measuring = run.measuring
                if measuring:
                    self.states += 1
                    self.payload_bytes += len(message)
                if ack is None:
                    continue
                pend = self.pending
                while pend and pend[0][0] <= ack:
                    sent = pend.popleft()[1]
                    if measuring:
                        self.latencies.append(now - sent)
            self.fail("server closed the connection")
        except websockets.ConnectionClosed as e:
            self.fail(f"recv: {e!r}")
        except Exception as e:  # a state the bot cannot read counts as a lost bot
            self.fail(f"recv: {e!r}")

    def fail(self, why: str) -> None:
        if self.lost is None and not self.run.closing:
            self.lost = why
            log(f"bot {self.idx}: {why}")


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.decode = None if args.decode_each else SharedDecode()
        self.measuring = False
        self.closing = False
        rng = random.Random(args.seed)
        self.bots = [Bot(i, args.url, random.Random(rng.random()), self) for i in range(args.count)]
        self.t0: float | None = None
        self.t1: float | None = None

    async def main(self) -> None:
        a = self.args
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task] = []

        async def start(bot: Bot) -> None:
            await bot.join()
            if bot.lost is None:
                tasks.append(asyncio.create_task(bot.receiver()))
                tasks.append(asyncio.create_task(bot.sender()))

        gap = a.ramp / max(1, a.count)
        joins = []
        for bot in self.bots:
            joins.append(asyncio.create_task(start(bot)))
            await asyncio.sleep(gap)
        await asyncio.gather(*joins)
        joined = sum(b.lost is None for b in self.bots)
        log(f"{joined}/{a.count} bots joined; warm-up {a.warmup} s")
        try:
            await asyncio.sleep(a.warmup)
            for b in self.bots:
                b.reset_stats()
            self.measuring = True
            self.t0 = loop.time()
            await asyncio.sleep(a.duration)
            self.measuring = False
            self.t1 = loop.time()
        finally:
            self.closing = True
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            closes = [b.ws.close() for b in self.bots if b.ws is not None]
            try:
                await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), 5)
            except TimeoutError:
                log("some connections did not close within 5 s")

    def results(self) -> dict:
        now = time.monotonic()  # loop.time() is time.monotonic() on the default loop
        t0 = self.t0
        t1 = self.t1 if self.t1 is not None else now
        secs = (t1 - t0) if t0 is not None else 0.0
        lat = sorted(x for b in self.bots for x in b.latencies)

        def pct(q: float):
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 2) if lat else None

        def rnd(v, n):
            return round(v, n) if v is not None else None

        states = [b.states / secs for b in self.bots] if secs > 0 else []
        nbytes = [b.payload_bytes / secs for b in self.bots] if secs > 0 else []
        out = {
            "bots": len(self.bots),
            "seconds": round(secs, 2),
            "payload_bytes_per_client_s": rnd(statistics.median(nbytes), 1) if nbytes else None,
            "states_per_client_s": rnd(statistics.median(states), 2) if states else None,
            "states_per_client_s_min": rnd(min(states), 2) if states else None,
            "ack_latency_ms_p50": pct(0.50),
            "ack_latency_ms_p99": pct(0.99),
            "ack_samples": len(lat),
            "all_connected": self.t1 is not None and all(b.lost is None and b.me is not None for b in self.bots),
            "disconnected": sum(b.lost is not None or b.me is None for b in self.bots),
        }
        if self.decode is not None:
            total = self.decode.hits + self.decode.misses
            log(f"shared decode: {self.decode.misses} unpacks for {total} messages")
        return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Arena bots for the naive websockets server.")
    ap.add_argument("url", help="ws://host:port")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after all joined before measuring")
    ap.add_argument("--ramp", type=float, default=2.0, help="spread the connects over this many seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compression", choices=("none", "deflate"), default="none",
                    help="offer permessage-deflate (websockets' default) or not (default here)")
    ap.add_argument("--decode-each", action="store_true", help="every bot unpacks every message itself")
    return ap.parse_args()


async def amain(run: Run) -> int:
    a = run.args
    limit = a.ramp + a.warmup + a.duration + 30
    try:
        await asyncio.wait_for(run.main(), limit)
    except TimeoutError:
        log(f"hard timeout after {limit} s")
    result = run.results()
    print(json.dumps(result), flush=True)
    return 0 if result["all_connected"] else 1


if __name__ == "__main__":
    args = parse_args()
    r = Run(args)
    sys.exit(asyncio.run(amain(r)))
