"""A swarm of arena bots in one process, for load and for the ARENA.md client-side figures.

Each bot behaves as ARENA.md says: a new random direction every second, its current input
sent 30 times a second (the input also acknowledges the newest snapshot), and every
snapshot applied to its own mirror of the world. What makes hundreds of bots fit in one
process is how bytes move, not what a bot does: every bot's socket is non-blocking and one
task drains all readable sockets at once (one wakeup for many messages), one task sends
all bots' inputs on a shared schedule, and bots that receive identical payload bytes
against the identical baseline share the decode (see ``DecodeCache``). What a bot does per
state and per input is its ``BotCore``'s (client/botcore.py): with the native path on, one
native call per reader wake-up reads every ready socket and applies the usual snapshots, and
one per send slot builds, masks and sends its bots' inputs (gamesync/native/_bots.pyx).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import socket
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlparse

import trio

from .. import native, tokens
from ..core import clientproto as cp
from ..core.errors import GamesyncError, Redirect
from ..core.protocol import PROTOCOL_VERSION
from ..core.viewmirror import ChunkCache
from ..native import packing
from ..wsframe import masked_binary_frame
from . import botcore
from .botcore import PYTHON_KIT, Kit, kit
from .botsocket import RECV_CHUNK, BotSocket

logger = logging.getLogger(__name__)

SEND_SLOTS = 8  # input sends per tick period are spread over this many slots
CONNECT_TIMEOUT_S = 10.0


def slots_due(k: int, elapsed: float, slot: float) -> range:
    """The send slots to send now, ``k`` being the next one not sent, ``elapsed`` the time since
    slot 0 and ``slot`` the time between slots. A slot whose time came while the process was
    busy is sent late rather than skipped (a skipped slot is an input its bots never send); of a
    stall longer than a whole period only the last period's slots are sent, so no bot sends two
    inputs at once."""
    due = math.floor(elapsed / slot + 1e-6) + 1  # slots whose time has come (k * slot / slot may read k - 1)
    return range(max(k, due - SEND_SLOTS), due)


MAX_REDIRECTS = 5  # redirects a bot follows in a row while joining


REVIVE_MAX_S = 2.0  # backoff cap of a bot's reconnects


class Bot:
    """One arena player: its seat and its connections; what it does per state and per input
    (its game behaviour, a random walk of inputs, and its stats) is its ``core``'s (``BotCore``,
    native or Python, see ``botcore.kit``), the bytes move through a ``BotSocket`` and the
    shared client protocol."""

    def __init__(self, idx: int, host: str, port: int, path: str, room: str, cache: Any,
                 rng: random.Random, token: str | None = None, version: int = PROTOCOL_VERSION,
                 game: str | None = None, view_cache: ChunkCache | None = None, kit: Kit = PYTHON_KIT) -> None:
        self.idx = idx
        self.host, self.port, self.path = host, port, path
        self.home = (host, port, path)  # where a reconnect starts (a redirect goes elsewhere)
        self.reconnects = 0
        self.resumes = 0
        self.core = kit.core(rng, self.fail)
        self.proto = cp.ClientProtocol(room, f"bot{idx}", game, auto_ack=False, cache=cache, token=token,
                                       version=version, view_cache=view_cache, materialise=False,
                                       new_mirror=kit.mirror)
        self.link: BotSocket | None = None  # the current connection (None before the first)
        self.rng = rng
        self.lost: str | None = None
        self.redirects = 0

    @property
    def proto(self) -> cp.ClientProtocol:
        """The client protocol of the current (or next) connection."""
        proto: cp.ClientProtocol = self.core.proto
        return proto

    @proto.setter
    def proto(self, proto: cp.ClientProtocol) -> None:
        self.core.proto = proto

    @property
    def connected(self) -> bool:
        """Joined, and the connection not lost since (its inputs go out)."""
        return self.core.sock is not None

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
        self.core.clear_pending()
        self.lost = None
        self.core.detach()

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
                        self.core.on_state(cev.input_ack, cev.size, True, trio.current_time())
        welcome = self.proto.welcome
        if welcome is not None and welcome.resumed:  # the same seat: what it had not applied, once more
            self.resumes += 1
            for msg in self.proto.resend_unacked():
                link.send_message(msg)
        else:
            self.proto.unacked.clear()
        assert link.sock is not None
        self.core.attach(link.sock, link.stream.reader)

    def _on_close(self, code: int, reason: str | None) -> None:
        if code == 4012 and not self.connected:  # a redirect while joining: followed, not a loss
            return
        self.fail(f"server closed: {code} {reason}")

    def pump(self, now: float) -> None:
        """Read what arrived and apply it."""
        assert self.link is not None
        self.apply(self.link.receive(), now)

    def apply(self, msgs: list[bytes], now: float) -> None:
        """Apply the messages read from the socket: the usual ones (snapshots without events,
        under a protocol that decodes every snapshot) through the core's ``take``, from the
        first other message on through the protocol's events."""
        i = self.core.take(msgs, now)
        if 0 <= i < len(msgs):
            self.apply_events(msgs[i:], now)

    def apply_events(self, msgs: list[bytes], now: float) -> None:
        """Apply messages through the client protocol's events (the general path)."""
        try:
            events = self.proto.receive_many(msgs, now)  # a long backlog: only the newest is decoded
        except GamesyncError as e:
            self.fail(f"{e.code}: {e.reason}")
            return
        for ev in events:
            if isinstance(ev, (cp.StateUpdated, cp.StateSkipped)):
                self.core.on_state(ev.input_ack, ev.size, type(ev) is cp.StateUpdated, now)
            elif isinstance(ev, cp.ErrorReceived):
                self.fail(f"server error {ev.code}: {ev.reason}")

    def fail(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            logger.warning("bot %d: %s", self.idx, why)
        self.core.detach()

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
        self.kit = kit()  # native or Python, chosen now (the tests switch paths between swarms)
        self.cache = self.kit.cache() if shared_decode else None
        self.view_cache = ChunkCache(count_chunks=packing.chunk_counter()) if shared_decode else None
        rng = random.Random(seed)
        now = time.time()
        self.bots = [Bot(i, u.hostname, u.port or 80, u.path or "/", room, self.cache, random.Random(rng.random()),
                         None if token_secret is None else tokens.mint(token_secret, f"bot{i}", room, token_ttl_s, now),
                         version, game, self.view_cache, self.kit)
                     for i in range(count)]
        self.input_rate = input_rate
        #: bots whose connection was lost come back (with backoff, from the URL they started
        #: at) and resume their seats; without it a lost bot stays lost
        self.reconnect = reconnect
        self._revive_send, self._revive_recv = trio.open_memory_channel[Bot](max(1, count))
        self.sel = self.kit.ready_set()
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
        """Drain every readable socket each time any is readable (``read_ready``: the usual
        snapshots applied in one call), then the bots it leaves to the general path."""
        sel, read_ready = self.sel, self.kit.read_ready
        clock = trio.lowlevel.current_clock().current_time  # (trio.current_time without its wrapper)
        while True:
            await trio.lowlevel.wait_readable(sel.fileno())
            for b, data, what, now in read_ready(sel, clock, RECV_CHUNK):
                if what == botcore.PUMP:
                    b.pump(clock())
                elif what == botcore.ABSORB:
                    assert b.link is not None
                    msgs = b.link.absorb(data)
                    if msgs:
                        b.apply(msgs, clock())
                elif what >= 0:
                    b.apply_events(data[what:], now)
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
        """Every bot sends at ``input_rate`` with its own random phase, in SEND_SLOTS groups, a
        group's inputs in one ``send_slot`` call. Slots whose time came while the process was
        busy are sent late (``slots_due``)."""
        period = 1.0 / self.input_rate
        slot = period / SEND_SLOTS
        slots: list[list[Any]] = [[] for _ in range(SEND_SLOTS)]  # the bots' cores
        for b in self.bots:
            slots[b.rng.randrange(SEND_SLOTS)].append(b.core)
        send_slot = self.kit.send_slot
        start = trio.current_time()
        k = 0
        while True:
            await trio.sleep_until(start + k * slot)
            now = trio.current_time()
            for j in slots_due(k, now - start, slot):
                send_slot(slots[j % SEND_SLOTS], now)
                k = j + 1

    def start_measuring(self) -> None:
        self.t_measure = trio.current_time()
        for b in self.bots:
            b.core.measuring = True
            b.core.reset_stats()

    def results(self, now: float) -> dict[str, Any]:
        secs = now - (self.t_measure or now)
        lat = sorted(x for b in self.bots for x in b.core.latencies)

        def pct(q: float) -> float | None:  # None (JSON null) when there are no samples
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 2) if lat else None

        per_bot_states = [b.core.states / secs for b in self.bots] if secs > 0 else [0.0]
        per_bot_bytes = [b.core.payload_bytes / secs for b in self.bots] if secs > 0 else [0.0]
        out: dict[str, Any] = {
            "bots": len(self.bots),
            "seconds": round(secs, 2),
            "payload_bytes_per_client_s": round(statistics.median(per_bot_bytes), 1),
            "states_per_client_s": round(statistics.median(per_bot_states), 2),
            "states_per_client_s_min": round(min(per_bot_states), 2),
            "inputs_per_client_s": round(statistics.median(b.core.inputs / secs for b in self.bots), 2)
            if secs > 0 and self.bots else 0.0,
            # snapshots each bot decoded, over those it received (1.0 while the process keeps up)
            "decoded_share": round(sum(b.core.decoded for b in self.bots)
                                   / max(1, sum(b.core.states for b in self.bots)), 3),
            "ack_latency_ms_p50": pct(0.50),
            "ack_latency_ms_p99": pct(0.99),
            "ack_samples": len(lat),
            "all_connected": all(b.lost is None for b in self.bots),
            "disconnected": sum(b.lost is not None for b in self.bots),
            "redirects": sum(b.redirects for b in self.bots),
            "reconnects": sum(b.reconnects for b in self.bots),
            "resumes": sum(b.resumes for b in self.bots),
            # mean entities a bot holds (all of them, unless the room has interest management)
            "visible_entities_mean": round(statistics.mean(b.core.visible_sum / max(1, b.core.visible_samples)
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
