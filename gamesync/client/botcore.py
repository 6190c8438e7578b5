"""A bot's per-state and per-input work, and the swarm's batched read and send over many bots.

``BotCore`` holds what a bot touches for every state and every input: its stats, the inputs
awaiting their ack, its random walk and (while connected) its socket. ``read_ready`` reads
every ready bot's socket at once and applies the usual snapshots; ``send_slot`` sends the
inputs of a send slot's bots. gamesync/native/_bots.pyx has the twins of all three (and of the
mirror, its decode cache and the poll set); ``kit()`` picks the path in use. Both give the same
results (tests/client/test_botcore.py).
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import native, sockio
from ..core.clientproto import ClientProtocol
from ..core.errors import GamesyncError
from ..core.mirror import DecodeCache, Mirror
from ..core.protocol import snapshot_fields
from ..native import bots as native_bots
from ..wsframe import frame_size

VISIBLE_EVERY = 8  # a bot counts the entities it holds on every 8th state it receives
MAX_PENDING_INPUTS = 256  # inputs awaiting their ack, per bot (older ones count as lost)
TURN = (-1, 0, 1)  # each axis of a bot's direction

#: ``read_ready``'s third field, when not the index of the first message for the general path
FAILED = -1  # the bot failed (its ``lost`` says why)
PUMP = -2  # not on the fast path: read its socket the general way
ABSORB = -3  # the batched read was not the usual one: the second field is its result

#: one bot that ``read_ready`` leaves to the general path: (owner, messages or read result, what, time)
Leftover = tuple[Any, Any, int, float]


class BotCore:
    """One bot's per-state and per-input state: counts, the inputs awaiting their ack, its walk,
    its protocol, and its socket while connected."""

    def __init__(self, rng: random.Random, fail: Callable[[str], None]) -> None:
        self.rng = rng
        self.fail = fail  # the bot's failure: why
        self.direction: Any = (0, 0)
        self.next_turn = 0.0  # when the direction changes next
        self.measuring = False
        self.proto: ClientProtocol | None = None
        self.sock: Any = None  # while connected
        self.reader: Any = None  # the socket's fast frame reader (None: none)
        self.pending: deque[tuple[int, float]] = deque()
        self.reset_stats()

    def reset_stats(self) -> None:
        """Every count from zero."""
        self.states = 0  # snapshots received
        self.decoded = 0  # of those, decoded (the rest came in one read with a newer one)
        self.payload_bytes = 0
        self.latencies: list[float] = []
        self.visible_sum = 0  # entities held, summed over the states sampled (every VISIBLE_EVERY-th)
        self.visible_samples = 0
        self.inputs = 0  # inputs sent

    def clear_pending(self) -> None:
        self.pending.clear()

    def attach(self, sock: Any, reader: Any) -> None:
        """Connected: ``sock`` carries the protocol's messages (read by ``reader``, None before the fast path)."""
        self.sock, self.reader = sock, reader

    def detach(self) -> None:
        """The connection is gone: no more inputs."""
        self.sock = None

    def take(self, msgs: list[bytes], now: float) -> int:
        """Apply the usual snapshots at the front of ``msgs`` (no events, under a protocol that
        decodes every snapshot) through the protocol's ``take_snapshot``. Returns the index of the
        first message left for the protocol's events (``len(msgs)``: none, 0: not this protocol),
        or FAILED when the protocol refused one (the bot failed; the rest is dropped)."""
        proto = self.proto
        if proto is None or not proto.stream or proto.mirror is None:
            return 0
        for i, msg in enumerate(msgs):
            f = snapshot_fields(msg)
            if f is None:
                return i
            try:
                st = proto.take_snapshot(f)
            except GamesyncError as e:
                self.fail(f"{e.code}: {e.reason}")
                return FAILED
            if st is not None:
                self.on_state(f[3], len(msg), True, now)
        return len(msgs)

    def on_state(self, input_ack: int, size: int, decoded: bool, now: float) -> None:
        """A snapshot of ``size`` bytes came (``decoded`` or skipped), acking inputs up to ``input_ack``."""
        pend = self.pending
        if self.measuring:
            self.states += 1
            if decoded:
                self.decoded += 1
            self.payload_bytes += size
            if self.states % VISIBLE_EVERY == 1:  # counting them costs a pass over the world
                assert self.proto is not None
                self.visible_sum += self.proto.visible
                self.visible_samples += 1
            while pend and pend[0][0] <= input_ack:
                self.latencies.append(now - pend.popleft()[1])
        else:
            while pend and pend[0][0] <= input_ack:
                pend.popleft()

    def next_input(self, now: float) -> bytes:
        """The input message to send now (a new random direction once a second)."""
        if now >= self.next_turn:
            self.direction = (self.rng.choice(TURN), self.rng.choice(TURN))
            self.next_turn = now + 1.0
        assert self.proto is not None
        return self.proto.send_input(self.direction)

    def input_sent(self, now: float) -> None:
        """The input from ``next_input`` went out: its ack latency is measured from now."""
        assert self.proto is not None
        self.pending.append((self.proto.input_seq, now))
        self.inputs += 1
        if len(self.pending) > MAX_PENDING_INPUTS:
            self.pending.popleft()


def read_ready(sel: sockio.ReadySet, clock: Callable[[], float], max_bytes: int) -> list[Leftover]:
    """Read every readable socket of ``sel`` (its owners have a ``core``) and apply the usual
    snapshots: the sockets on the fast path in one ``gamesync.native.recv_frames`` call, each
    bot's messages through its ``BotCore.take`` at ``clock()``. Returns the bots left to the
    general path: (owner, messages, index of the first to apply, time), (owner, read result,
    ABSORB, 0.0), (owner, None, PUMP, 0.0) or (owner, messages, FAILED, time)."""
    out: list[Leftover] = []
    fast: list[Any] = []
    for owner in sel.ready():
        c = owner.core
        r = c.reader
        if c.sock is None or r is None or r.done:
            out.append((owner, None, PUMP, 0.0))
        else:
            fast.append(owner)
    if not fast:
        return out
    results = native.recv_frames([b.core.sock for b in fast], [b.core.reader for b in fast], max_bytes)
    for owner, res in zip(fast, results, strict=True):
        c = owner.core
        n, msgs, rest = res
        r = c.reader
        if n > 0 and rest is None and not r.too_big and not r.controls:
            now = clock()
            i = c.take(msgs, now)
            if i != len(msgs):
                out.append((owner, msgs, i, now))
        else:
            out.append((owner, res, ABSORB, 0.0))
    return out


def send_slot(cores: list[BotCore], now: float) -> None:
    """Every connected bot of a send slot sends its input: one masked frame each, in one
    ``gamesync.native.send_masked`` call; a send that fails fails its bot."""
    live = [c for c in cores if c.sock is not None]
    if not live:
        return
    msgs = [c.next_input(now) for c in live]
    sent = native.send_masked([c.sock for c in live], msgs, os.urandom(4 * len(live)))
    for c, msg, n in zip(live, msgs, sent, strict=True):
        if n >= frame_size(len(msg), masked=True):
            c.input_sent(now)
        elif n < 0:
            c.fail(f"send failed: {OSError(-n, os.strerror(-n))}")
        elif n > 0:
            c.fail("socket buffer full mid-frame")  # a bot that cannot send 20 bytes is broken


@dataclass(frozen=True)
class Kit:
    """The swarm's per-bot pieces on one path: all native or all Python."""

    core: Any  # BotCore's class
    mirror: Any  # the mirror's class (a ClientProtocol's ``new_mirror``)
    cache: Any  # the decode cache's class
    ready_set: Any  # the poll set's class
    read_ready: Callable[[Any, Callable[[], float], int], list[Leftover]]
    send_slot: Callable[[list[Any], float], None]
    native: bool


PYTHON_KIT = Kit(BotCore, Mirror, DecodeCache, sockio.ReadySet, read_ready, send_slot, False)


def kit() -> Kit:
    """The native pieces (gamesync.native._bots) when built and the native path is on, else Python's."""
    ext = native_bots.extension()
    if ext is None:
        return PYTHON_KIT
    return Kit(ext.BotCore, ext.Mirror, ext.DecodeCache, ext.ReadySet, ext.read_ready, ext.send_slot, True)
