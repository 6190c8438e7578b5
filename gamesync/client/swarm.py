"""A swarm of arena bots in one process, for load and for the ARENA.md client-side figures.

Each bot behaves as ARENA.md says: a new random direction every second, its current input
sent 30 times a second (the input also acknowledges the newest snapshot), and every
snapshot applied to its own mirror of the world. What makes hundreds of bots fit in one
process is how bytes move, not what a bot does: every bot's socket is non-blocking and one
task drains all readable sockets at once (one wakeup for many messages), one task sends
all bots' inputs on a shared schedule, and bots that receive identical payload bytes
against the identical baseline share the decode (see ``DecodeCache``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import socket
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import trio

from .. import native, tokens
from ..core import clientproto as cp
from ..core.errors import GamesyncError, Redirect
from ..core.mirror import DecodeCache
from ..core.protocol import PROTOCOL_VERSION
from ..core.viewmirror import ChunkCache
from ..native import packing
from ..sockio import ReadySet
from ..wsframe import frame_size, masked_binary_frame
from .botsocket import RECV_CHUNK, BotSocket

logger = logging.getLogger(__name__)

SEND_SLOTS = 8  # input sends per tick period are spread over this many slots
CONNECT_TIMEOUT_S = 10.0
MAX_PENDING_INPUTS = 256  # inputs awaiting their ack, per bot (older ones count as lost)
VISIBLE_EVERY = 8  # a bot counts the entities it holds on every 8th state it receives


def slots_due(k: int, elapsed: float, slot: float) -> range:
    """The send slots to send now, ``k`` being the next one not sent, ``elapsed`` the time since
    slot 0 and ``slot`` the time between slots. A slot whose time came while the process was
    busy is sent late rather than skipped (a skipped slot is an input its bots never send); of a
    stall longer than a whole period only the last period's slots are sent, so no bot sends two
    inputs at once."""
    due = math.floor(elapsed / slot + 1e-6) + 1  # slots whose time has come (k * slot / slot may read k - 1)
    return range(max(k, due - SEND_SLOTS), due)


@dataclass
class BotStats:
    states: int = 0  # snapshots received
    decoded: int = 0  # of those, decoded (the rest came in one read with a newer one)
    payload_bytes: int = 0
    latencies: list[float] = field(default_factory=list)
    visible_sum: int = 0  # entities held, summed over the states sampled (every VISIBLE_EVERY-th)
    visible_samples: int = 0
    inputs: int = 0  # inputs sent


MAX_REDIRECTS = 5  # redirects a bot follows in a row while joining


REVIVE_MAX_S = 2.0  # backoff cap of a bot's reconnects


class Bot:
    """One arena player: its game behaviour (a random walk of inputs), its stats, its seat; the
    bytes move through a ``BotSocket`` and the shared client protocol."""

    def __init__(self, idx: int, host: str, port: int, path: str, room: str, cache: DecodeCache | None,
                 rng: random.Random, token: str | None = None, version: int = PROTOCOL_VERSION,
                 game: str | None = None, view_cache: ChunkCache | None = None) -> None:
        self.idx = idx
        self.host, self.port, self.path = host, port, path
        self.home = (host, port, path)  # where a reconnect starts (a redirect goes elsewhere)
        self.reconnects = 0
        self.resumes = 0
        self.proto = cp.ClientProtocol(room, f"bot{idx}", game, auto_ack=False, cache=cache, token=token,
                                       version=version, view_cache=view_cache, materialise=False)
        self.link: BotSocket | None = None  # the current connection (None before the first)
        self.rng = rng
        self.direction = (0, 0)
        self.next_turn = 0.0
        self.pending: deque[tuple[int, float]] = deque()
        self.stats = BotStats()
        self.measuring = False
        self.connected = False
        self.lost: str | None = None
        self.redirects = 0

    @property
    def sock(self) -> socket.socket | None:
        return self.link.sock if self.link is not None else None

    async def connect(self) -> None:
        """Connect and join, following a cluster's redirects to the node hosting the room."""
        for _ in range(MAX_REDIRECTS):
            try:
                await self._connect_once()
                return
            except Redirect as r:
                u = urlparse(r.url)
                if u.scheme != "ws" or not u.hostname:
                    raise OSError(f"cannot follow a redirect to {r.url}") from None
                self.redirects += 1
                self.lost = None  # the close that came with the redirect is not a loss
                if self.link is not None:
                    self.link.drop()
                self.host, self.port = u.hostname, u.port or 80
                self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                self.proto = self.proto.successor(self.proto.resume)
        raise OSError(f"more than {MAX_REDIRECTS} redirects")

    def reset_for_resume(self) -> None:
        """Forget the lost connection, keep the seat's resume token and the input numbering:
        the next ``connect`` (from the home URL) takes the seat back if the room still has it."""
        if self.link is not None:
            self.link.drop()
        old = self.proto
        token = old.welcome.resume_token if old.welcome is not None else old.resume  # (a failed attempt's)
        self.proto = old.successor(token)
        self.host, self.port, self.path = self.home
        self.pending.clear()
        self.lost = None
        self.connected = False

    async def _connect_once(self) -> None:
        link = self.link = BotSocket(self.host, self.port, self.path, self.fail, self._on_close)
        await link.open()
        await link.send_all(masked_binary_frame(self.proto.join()))
        while self.proto.welcome is None:
            for msg in link.ingest(await link.recv_some()):
                for cev in self.proto.receive(msg, trio.current_time()):
                    if isinstance(cev, Redirect):
                        raise cev
                    if isinstance(cev, cp.ErrorReceived):
                        if cev.code == Redirect.code:
                            continue  # the redirect message follows
                        raise OSError(f"join refused: {cev.code}: {cev.reason}")
                    if isinstance(cev, cp.StateUpdated):
                        self._on_state(cev.input_ack, cev.size, True, trio.current_time())
        welcome = self.proto.welcome
        if welcome is not None and welcome.resumed:  # the same seat: what it had not applied, once more
            self.resumes += 1
            for msg in self.proto.resend_unacked():
                link.send_message(msg)
        else:
            self.proto.unacked.clear()
        self.connected = True

    def _on_close(self, code: int, reason: str | None) -> None:
        if code == 4012 and not self.connected:  # a redirect while joining: followed, not a loss
            return
        self.fail(f"server closed: {code} {reason}")

    def pump(self, now: float) -> None:
        """Read what arrived and apply it."""
        assert self.link is not None
        self.apply(self.link.receive(), now)

    def apply(self, msgs: list[bytes], now: float) -> None:
        """Apply the messages read from the socket. The usual ones (snapshots without events,
        under a protocol that decodes every snapshot) go straight to the client protocol's
        ``take_snapshot``; from the first other message on, ``receive_many`` takes the rest."""
        proto = self.proto
        if proto.stream and proto.mirror is not None:
            fields = native.snapshot_fields
            for i, msg in enumerate(msgs):
                f = fields(msg)
                if f is None:
                    self._apply_events(msgs[i:], now)
                    return
                try:
                    st = proto.take_snapshot(f)
                except GamesyncError as e:
                    self.fail(f"{e.code}: {e.reason}")
                    return
                if st is not None:
                    self._on_state(f[3], len(msg), True, now)
            return
        if msgs:
            self._apply_events(msgs, now)

    def _apply_events(self, msgs: list[bytes], now: float) -> None:
        """Apply messages through the client protocol's events (the general path)."""
        try:
            events = self.proto.receive_many(msgs, now)  # a long backlog: only the newest is decoded
        except GamesyncError as e:
            self.fail(f"{e.code}: {e.reason}")
            return
        for ev in events:
            if isinstance(ev, (cp.StateUpdated, cp.StateSkipped)):
                self._on_state(ev.input_ack, ev.size, type(ev) is cp.StateUpdated, now)
            elif isinstance(ev, cp.ErrorReceived):
                self.fail(f"server error {ev.code}: {ev.reason}")

    def _on_state(self, input_ack: int, size: int, decoded: bool, now: float) -> None:
        """A snapshot of ``size`` bytes came (``decoded`` or skipped), acking inputs up to ``input_ack``."""
        pend = self.pending
        if self.measuring:
            stats = self.stats
            stats.states += 1
            if decoded:
                stats.decoded += 1
            stats.payload_bytes += size
            if stats.states % VISIBLE_EVERY == 1:  # counting them costs a pass over the world
                stats.visible_sum += self.proto.visible
                stats.visible_samples += 1
            while pend and pend[0][0] <= input_ack:
                stats.latencies.append(now - pend.popleft()[1])
        else:
            while pend and pend[0][0] <= input_ack:
                pend.popleft()

    def next_input(self, now: float) -> bytes:
        """The input message to send now (a new random direction once a second)."""
        if now >= self.next_turn:
            self.direction = (self.rng.choice((-1, 0, 1)), self.rng.choice((-1, 0, 1)))
            self.next_turn = now + 1.0
        return self.proto.send_input(self.direction)

    def input_sent(self, now: float) -> None:
        """The input from ``next_input`` went out: its ack latency is measured from now."""
        self.pending.append((self.proto.input_seq, now))
        self.stats.inputs += 1
        if len(self.pending) > MAX_PENDING_INPUTS:
            self.pending.popleft()

    def send_input(self, now: float) -> None:
        msg = self.next_input(now)
        assert self.link is not None
        if self.link.send_message(msg):
            self.input_sent(now)

    def fail(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            logger.warning("bot %d: %s", self.idx, why)
        self.connected = False

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


class Swarm:
    """Runs the bots: connect (ramped), send inputs on schedule, drain sockets, measure."""

    def __init__(self, url: str, count: int, room: str = "arena", input_rate: float = 30.0,
                 shared_decode: bool = True, seed: int = 1, token_secret: bytes | None = None,
                 token_ttl_s: float = 3600.0, reconnect: bool = False, version: int = PROTOCOL_VERSION,
                 game: str | None = None) -> None:
        u = urlparse(url)
        if u.scheme not in ("ws", "") or not u.hostname:
            raise ValueError(f"need a ws:// URL, got {url!r}")
        self.cache = DecodeCache() if shared_decode else None
        self.view_cache = ChunkCache(count_chunks=packing.chunk_counter()) if shared_decode else None
        rng = random.Random(seed)
        now = time.time()
        self.bots = [Bot(i, u.hostname, u.port or 80, u.path or "/", room, self.cache, random.Random(rng.random()),
                         None if token_secret is None else tokens.mint(token_secret, f"bot{i}", room, token_ttl_s, now),
                         version, game, self.view_cache)
                     for i in range(count)]
        self.input_rate = input_rate
        #: bots whose connection was lost come back (with backoff, from the URL they started
        #: at) and resume their seats; without it a lost bot stays lost
        self.reconnect = reconnect
        self._revive_send, self._revive_recv = trio.open_memory_channel[Bot](max(1, count))
        self.sel = ReadySet()
        self.t_measure: float | None = None

    async def connect_all(self, ramp: float) -> None:
        gap = ramp / max(1, len(self.bots))
        async with trio.open_nursery() as n:
            for b in self.bots:
                n.start_soon(self._connect_one, b)
                await trio.sleep(gap)

    async def _connect_one(self, b: Bot) -> None:
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                await b.connect()
        except (OSError, trio.TooSlowError, GamesyncError) as e:
            b.fail(f"connect failed: {e!r}")
            return
        assert b.sock is not None
        self.sel.add(b.sock, b)

    async def reader(self) -> None:
        """Drain every readable socket each time any is readable: the sockets on the fast path
        in one ``gamesync.native.recv_frames`` call, the others one by one."""
        sel = self.sel
        while True:
            await trio.lowlevel.wait_readable(sel.fileno())
            ready: list[Bot] = sel.ready()
            fast: list[tuple[Bot, BotSocket]] = []
            for b in ready:
                ln = b.link
                if ln is not None and (r := ln.stream.reader) is not None and not r.done and ln.sock is not None:
                    fast.append((b, ln))  # (BotSocket.batchable, inline)
                else:
                    b.pump(trio.current_time())
            if fast:
                results = native.recv_frames([ln.sock for _, ln in fast], [ln.stream.reader for _, ln in fast],
                                             RECV_CHUNK)
                clock = trio.lowlevel.current_clock().current_time  # (trio.current_time without its wrapper)
                for (b, ln), res in zip(fast, results, strict=True):
                    msgs = ln.absorb(res)
                    if msgs:
                        b.apply(msgs, clock())
            for b in ready:
                if b.lost is not None:
                    self._lost(b)

    def _lost(self, b: Bot) -> None:
        """Stop reading a lost bot's socket (and bring it back, with ``reconnect``)."""
        if b.link is None or not self.sel.remove(b):
            return
        if self.reconnect:
            self._revive_send.send_nowait(b)

    async def reviver(self) -> None:
        """Bring lost bots back (``reconnect``): backoff with full jitter, then resume."""
        async with trio.open_nursery() as n:
            async for b in self._revive_recv:
                n.start_soon(self._revive, b)

    async def _revive(self, b: Bot) -> None:
        for attempt in range(1, 1000):
            await trio.sleep(random.uniform(0, min(REVIVE_MAX_S, 0.2 * 2 ** attempt)))
            b.reset_for_resume()
            b.reconnects += 1
            try:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    await b.connect()
            except (OSError, trio.TooSlowError, GamesyncError) as e:
                logger.info("bot %d: reconnect failed: %r", b.idx, e)
                continue
            assert b.sock is not None
            self.sel.add(b.sock, b)
            return

    async def sender(self) -> None:
        """Every bot sends at ``input_rate`` with its own random phase, in SEND_SLOTS groups.

        Slots whose time came while the process was busy are sent late (``slots_due``)."""
        period = 1.0 / self.input_rate
        slot = period / SEND_SLOTS
        slots: list[list[Bot]] = [[] for _ in range(SEND_SLOTS)]
        for b in self.bots:
            slots[b.rng.randrange(SEND_SLOTS)].append(b)
        start = trio.current_time()
        k = 0
        while True:
            await trio.sleep_until(start + k * slot)
            now = trio.current_time()
            for j in slots_due(k, now - start, slot):
                self._send_slot(slots[j % SEND_SLOTS], now)
                k = j + 1

    def _send_slot(self, bots: list[Bot], now: float) -> None:
        """Every connected bot of a slot sends its input: one masked frame each, in one
        ``gamesync.native.send_masked`` call."""
        live: list[Bot] = []
        socks: list[socket.socket] = []
        for b in bots:
            ln = b.link
            if b.connected and ln is not None and ln.sock is not None:
                live.append(b)
                socks.append(ln.sock)
        if not live:
            return
        msgs = [b.next_input(now) for b in live]
        sent = native.send_masked(socks, msgs, os.urandom(4 * len(live)))
        for b, msg, n in zip(live, msgs, sent, strict=True):
            if n >= frame_size(len(msg), masked=True):
                b.input_sent(now)
            elif n < 0:
                b.fail(f"send failed: {OSError(-n, os.strerror(-n))}")
            elif n > 0:
                b.fail("socket buffer full mid-frame")  # a bot that cannot send 20 bytes is broken

    def start_measuring(self) -> None:
        self.t_measure = trio.current_time()
        for b in self.bots:
            b.measuring = True
            b.stats = BotStats()

    def results(self, now: float) -> dict[str, Any]:
        secs = now - (self.t_measure or now)
        lat = sorted(x for b in self.bots for x in b.stats.latencies)

        def pct(q: float) -> float | None:  # None (JSON null) when there are no samples
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 2) if lat else None

        per_bot_states = [b.stats.states / secs for b in self.bots] if secs > 0 else [0.0]
        per_bot_bytes = [b.stats.payload_bytes / secs for b in self.bots] if secs > 0 else [0.0]
        out: dict[str, Any] = {
            "bots": len(self.bots),
            "seconds": round(secs, 2),
            "payload_bytes_per_client_s": round(statistics.median(per_bot_bytes), 1),
            "states_per_client_s": round(statistics.median(per_bot_states), 2),
            "states_per_client_s_min": round(min(per_bot_states), 2),
            "inputs_per_client_s": round(statistics.median(b.stats.inputs / secs for b in self.bots), 2)
            if secs > 0 and self.bots else 0.0,
            # snapshots each bot decoded, over those it received (1.0 while the process keeps up)
            "decoded_share": round(sum(b.stats.decoded for b in self.bots)
                                   / max(1, sum(b.stats.states for b in self.bots)), 3),
            "ack_latency_ms_p50": pct(0.50),
            "ack_latency_ms_p99": pct(0.99),
            "ack_samples": len(lat),
            "all_connected": all(b.lost is None for b in self.bots),
            "disconnected": sum(b.lost is not None for b in self.bots),
            "redirects": sum(b.redirects for b in self.bots),
            "reconnects": sum(b.reconnects for b in self.bots),
            "resumes": sum(b.resumes for b in self.bots),
            # mean entities a bot holds (all of them, unless the room has interest management)
            "visible_entities_mean": round(statistics.mean(b.stats.visible_sum / max(1, b.stats.visible_samples)
                                                           for b in self.bots), 1) if self.bots else 0.0,
        }
        view = self.view_cache is not None and (self.view_cache.hits + self.view_cache.misses) > 0
        cache = self.view_cache if view else self.cache
        if cache is not None and cache.hits + cache.misses:  # (none in a view room: its bots only count)
            out["shared_decode_hit_rate"] = round(cache.hits / (cache.hits + cache.misses), 3)
        return out

    def close(self) -> None:
        for b in self.bots:
            b.close()
        self.sel.close()


async def swarm_main(url: str, count: int, duration: float, *, room: str = "arena", warmup: float = 0.0,
                     input_rate: float = 30.0, ramp: float = 2.0, shared_decode: bool = True, seed: int = 1,
                     progress: bool = False, token_secret: bytes | None = None,
                     reconnect: bool = False, version: int = PROTOCOL_VERSION,
                     game: str | None = None) -> dict[str, Any]:
    """Connect ``count`` bots, run ``warmup`` + ``duration`` seconds, return the results dict.
    With ``token_secret`` each bot joins with its own token (player ``bot<i>``); ``version``
    is the protocol they speak."""
    swarm = Swarm(url, count, room, input_rate, shared_decode, seed, token_secret,
                  token_ttl_s=warmup + duration + ramp + 3600, reconnect=reconnect, version=version, game=game)
    bar = None
    native.log_path_once()
    try:
        async with trio.open_nursery() as n:
            n.start_soon(swarm.reader)
            n.start_soon(swarm.sender)
            n.start_soon(swarm.reviver)
            await swarm.connect_all(ramp)
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=round(warmup + duration), desc=f"{count} bots", unit="s", file=sys.stderr)
            await _tick_bar(bar, warmup, lambda: "warm-up")
            swarm.start_measuring()

            def status() -> str:
                live = sum(b.connected for b in swarm.bots)
                return f"connected {live}/{count}"

            await _tick_bar(bar, duration, status)
            result = swarm.results(trio.current_time())
            n.cancel_scope.cancel()
    finally:
        if bar is not None:
            bar.close()
        swarm.close()
    return result


async def _tick_bar(bar: Any, seconds: float, status: Any) -> None:
    end = trio.current_time() + seconds
    while (left := end - trio.current_time()) > 0:
        await trio.sleep(min(1.0, left))
        if bar is not None:
            bar.set_postfix_str(status())
            bar.update(1)


def run_swarm(args: argparse.Namespace, token_secret: bytes | None = None) -> int:
    """Entry point for ``gamesync bots``; ``token_secret`` mints each bot a join token."""
    result = trio.run(lambda: swarm_main(
        args.url, args.count, args.duration, room=args.room, warmup=args.warmup, input_rate=args.input_rate,
        ramp=args.ramp, shared_decode=not args.no_shared_decode, seed=args.seed,
        progress=(not args.no_progress and sys.stderr.isatty()) or (not args.no_progress and not args.json),
        token_secret=token_secret, reconnect=args.reconnect, version=args.protocol, game=args.game))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>30}: {v}")
    return 0 if result["all_connected"] else 1
