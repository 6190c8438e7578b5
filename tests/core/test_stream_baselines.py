"""Baselines from the stream (protocol 3): a snapshot handed to a client's socket is its next
baseline, whatever the client's round-trip time, because a client decodes its whole stream in
order. The room's whole policy (``plan_payloads`` over stream ``AckTracker``s) against
clients whose sockets fill up (the one-slot mailbox replaces unwritten snapshots), whose
frames arrive late but in order, and who reconnect: every decode must succeed and equal the
server's state at that tick, bit for bit."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesync.core.acks import AckTracker
from gamesync.core.mirror import Mirror
from gamesync.core.plan import plan_payloads
from gamesync.core.protocol import NO_TICK
from gamesync.core.state import State
from test_mirror import SCHEMA, Server

FULL = (NO_TICK, NO_TICK)


@dataclass
class Client:
    """One client: the server's tracker and one-slot mailbox for it, its stream in flight, its mirror."""

    history: int
    acks: AckTracker = field(init=False)
    mirror: Mirror = field(init=False)
    busy: bool = False  # a frame is partly written: new ones wait in the mailbox
    mailbox: tuple | None = None
    stream: deque = field(default_factory=deque)  # (arrival tick, snapshot): in order
    decoded: int = 0

    def __post_init__(self) -> None:
        self.connect()

    def connect(self) -> None:
        """A new connection (a first join, or a resume): nothing held, nothing in flight."""
        self.acks = AckTracker(self.history, 1, stream=True)
        self.mirror = Mirror(SCHEMA, history=self.history)
        self.busy, self.mailbox = False, None
        self.stream.clear()

    def write(self, snap: tuple, arrive: int) -> None:
        """The frame goes into the socket (maybe partly): from now on it is on its way."""
        self.acks.on_sent(snap[0], snap[1])
        self.stream.append((arrive, snap))


def _run(seed: int, ticks: int, clients: int, history: int, cap: int, full_sockets: float, budget_skips: float,
         max_delay: int, reconnects: float) -> tuple[list[Client], list[int]]:
    srv = Server(seed)
    rng = np.random.default_rng(seed ^ 0x57EA)
    cs = [Client(history) for _ in range(clients)]
    hist: dict[int, State] = {}
    pairs_per_tick = []
    for _ in range(ticks):
        cur = srv.step()
        hist[cur.tick] = cur
        for t in [t for t in hist if t <= cur.tick - history]:
            del hist[t]
        for c in cs:
            if rng.random() < reconnects:
                c.connect()
        keys = plan_payloads(cur.tick, [c.acks for c in cs], hist, cap)
        pairs_per_tick.append(len({k for k in keys if k is not None}))
        for c, key in zip(cs, keys):
            # the socket drains (the writer task: partial frame done, then the mailbox's)
            if c.busy and rng.random() >= full_sockets:
                c.busy = False
                if c.mailbox is not None:
                    c.write(c.mailbox, cur.tick + int(rng.integers(0, max_delay + 1)))
                    c.mailbox = None
                    c.busy = rng.random() < full_sockets
            if key is None:
                continue  # waiting past the cap
            snap = srv.snap(cur.tick, *key)
            if c.busy:
                c.mailbox = snap  # replaces an unwritten one: that one never becomes a baseline
            elif rng.random() < budget_skips:
                pass  # over the byte budget: skipped, never written
            else:
                c.write(snap, cur.tick + int(rng.integers(0, max_delay + 1)))
                c.busy = rng.random() < full_sockets  # only part of it fit
        for c in cs:
            # arrivals in stream order: a frame never overtakes the one before it
            while c.stream and c.stream[0][0] <= cur.tick:
                _, snap = c.stream.popleft()
                st_ = c.mirror.apply(*snap)  # must never raise DesyncError
                assert st_ is not None, "a stream's ticks ascend: none is stale"
                assert st_.same_as(srv.states[st_.tick])
                c.decoded += 1
    return cs, pairs_per_tick


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ticks=st.integers(5, 70), clients=st.integers(1, 6),
       history=st.sampled_from([4, 8, 30]), cap=st.integers(1, 4),
       full_sockets=st.sampled_from([0.0, 0.2, 0.6]), budget_skips=st.sampled_from([0.0, 0.1]),
       max_delay=st.integers(0, 6), reconnects=st.sampled_from([0.0, 0.03]))
def test_stream_baselines_never_desync_under_full_sockets_skips_delays_and_reconnects(
        seed, ticks, clients, history, cap, full_sockets, budget_skips, max_delay, reconnects):
    cs, _ = _run(seed, ticks, clients, history, cap, full_sockets, budget_skips, max_delay, reconnects)
    assert any(c.decoded for c in cs) or max_delay >= ticks - 1 or full_sockets > 0 or reconnects > 0


def test_clients_that_keep_up_share_one_payload_a_tick_whatever_their_delay():
    """Round-trip time does not enter the choice: clients whose frames take 0 to 5 ticks to
    arrive all get (T-1, T-2) from the second tick on, so one payload a tick serves them all."""
    srv = Server(3)
    hist: dict[int, State] = {}
    cs = [Client(30) for _ in range(6)]
    delays = [0, 1, 2, 3, 4, 5]
    for _ in range(40):
        cur = srv.step()
        hist[cur.tick] = cur
        keys = plan_payloads(cur.tick, [c.acks for c in cs], hist, 8)
        if cur.tick == 0:
            assert set(keys) == {FULL}
        else:
            assert set(keys) == {(cur.tick - 1, cur.tick - 2 if cur.tick >= 2 else NO_TICK)}, keys
        for c, key, d in zip(cs, keys, delays):
            c.write(srv.snap(cur.tick, *key), cur.tick + d)
        for c in cs:
            while c.stream and c.stream[0][0] <= cur.tick:
                st_ = c.mirror.apply(*c.stream.popleft()[1])
                assert st_ is not None and st_.same_as(srv.states[st_.tick])


def test_a_snapshot_left_in_the_mailbox_is_never_a_baseline():
    """Only frames that went into the socket count: a client whose socket is full gets its
    next snapshot against the newest one actually written."""
    srv = Server(5)
    hist = {}
    a = AckTracker(30, 1, stream=True)
    for t in range(3):
        hist[t] = srv.step()
        b, r = a.choose(t, hist)
        a.on_sent(t, b)  # ticks 0..2 written
    hist[3] = srv.step()
    assert a.choose(3, hist) == (2, 1)  # tick 3 goes into the mailbox, never written
    hist[4] = srv.step()
    assert a.choose(4, hist) == (2, 1)  # still against 2: 3 was replaced unwritten
    a.on_sent(4, 2)
    hist[5] = srv.step()
    assert a.choose(5, hist) == (4, 2)  # 4's own baseline is the reference: 3 was never sent


def test_stream_acks_follow_the_clients_retention_rule():
    a = AckTracker(8, 1, stream=True)
    a.on_sent(10, NO_TICK)  # a full snapshot: the client keeps ticks >= 10 - 8
    assert (a.acked, a.ack_bits) == (10, 0)
    a.on_sent(11, 10)
    assert (a.acked, a.ack_bits) == (11, 0b1)  # holds 10
    a.on_sent(12, 11)
    assert (a.acked, a.ack_bits) == (12, 0b11)  # holds 11 and 10 (>= 11 - 1)
    a.on_sent(13, 12)
    assert (a.acked, a.ack_bits) == (13, 0b11)  # 10 is pruned (< 12 - 1)
    a.on_sent(16, 13)  # 14 and 15 never written
    assert (a.acked, a.ack_bits) == (16, 0b1100)  # holds 13 and 12; 15 and 14 were not sent
    a.on_sent(60, NO_TICK)  # long gap: a full snapshot, nothing older is usable
    assert (a.acked, a.ack_bits) == (60, 0)
    a.on_ack(60, 0)  # the client's own acks change nothing it had not already
    assert a.holds(60) and not a.holds(59)


def test_stream_acks_at_the_edges_of_the_ack_window_and_after_a_full_snapshot():
    a = AckTracker(30, 1, stream=True)
    a.on_sent(10, NO_TICK)
    a.on_sent(42, 10)  # 32 ticks later: tick 10 is the last one the bits can name (bit 31)
    assert a.ack_bits == 1 << 31
    a.on_sent(75, 42)  # 33 later: none of the old ones fits
    assert a.ack_bits == 0
    b = AckTracker(8, 1, stream=True)
    b.on_sent(10, NO_TICK)
    b.on_sent(11, 10)
    b.on_sent(25, NO_TICK)  # a full snapshot: the client keeps ticks >= 25 - 8 only
    assert b.ack_bits == 0 and not b.holds(11) and not b.holds(10)


def test_protocol_2_trackers_still_wait_for_acks():
    a = AckTracker(30, 1)
    a.on_sent(0, NO_TICK)
    assert a.acked == NO_TICK  # nothing is assumed from the write alone
