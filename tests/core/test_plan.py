"""The room's snapshot policy (gamesync.core.plan): shared pairs, the cap, rides, waits, turns."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamesync.core.acks import AckTracker
from gamesync.core.mirror import Mirror
from gamesync.core.plan import CAP_WAIT_TICKS, PlanCounts, plan_payloads
from gamesync.core.protocol import NO_TICK
from gamesync.core.state import State
from test_mirror import SCHEMA, Server

HIST = range(0, 1000)  # every tick is still in the history


def sent(t: AckTracker, ticks: range) -> AckTracker:
    for k in ticks:
        t.on_sent(k, k - 1 if k else NO_TICK)
    return t


def tracker(acked: int, bits: int = 0) -> AckTracker:
    t = sent(AckTracker(32, 1), range(acked + 1))
    t.on_ack(acked, bits)
    return t


def test_clients_that_keep_up_share_one_pair():
    clients = [tracker(9, 0b1) for _ in range(20)]
    keys = plan_payloads(10, clients, HIST, cap=8)
    assert set(keys) == {(9, 8)}


def test_never_more_distinct_pairs_than_the_cap_plus_the_full_snapshot():
    clients = [tracker(40 - i) for i in range(30)]  # 30 different newest acks
    counts = PlanCounts()
    for tick in range(41, 50):
        keys = plan_payloads(tick, clients, HIST, cap=4, counts=counts)
        assert len({k for k in keys if k is not None} - {(NO_TICK, NO_TICK)}) <= 4
    assert counts.cap_waits > 0 and counts.cap_fulls > 0


def test_the_pair_most_clients_want_is_built_first_whoever_is_first_in_line():
    """Twelve lagging clients with twelve different pairs, ahead in line of a crowd that
    keeps up: the crowd's one pair still makes the cap, on every tick."""
    laggers = [tracker(30 - i) for i in range(12)]
    for tick in range(31, 31 + 12):
        crowd = [tracker(tick - 1, 0b1) for _ in range(20)]
        keys = plan_payloads(tick, [*laggers, *crowd], HIST, cap=4)
        assert keys[12:] == [(tick - 1, tick - 2)] * 20
        assert len({k for k in keys if k is not None} - {(NO_TICK, NO_TICK)}) <= 4


def test_past_the_cap_a_client_rides_an_older_pair_it_holds():
    ahead = [tracker(20, 0b1) for _ in range(2)]  # want (20, 19)
    behind = tracker(18, 0b1)  # wants (18, 17)
    keys = plan_payloads(21, [*ahead, behind], HIST, cap=2)
    assert keys == [(20, 19), (20, 19), (18, 17)]
    odd = tracker(19, 0b11)  # wants (19, 18): a third pair, past the cap of 2
    odd.base = 17  # it has been on baseline 17 before
    counts = PlanCounts()
    keys = plan_payloads(21, [*ahead, behind, odd], HIST, cap=2, counts=counts)
    assert keys[3] == (18, 17) and odd.base == 18  # it holds 18 (bits) and 17 = 18 - 1
    assert counts.cap_rides == 1 and counts.full_snapshots == 0


def test_past_the_cap_with_nothing_to_ride_a_client_waits_then_gets_the_full_snapshot():
    a, b = tracker(20, 0b1), tracker(15, 0)
    lone = tracker(17, 0)  # holds only 17, which nobody else's pair is built on
    counts = PlanCounts()
    got = []
    for tick in range(21, 21 + CAP_WAIT_TICKS + 1):
        order = [a, b]
        at = (tick + 2) % 3  # where turn-taking puts it last in line (start = tick % 3)
        order.insert(at, lone)
        keys = plan_payloads(tick, order, HIST, cap=2, counts=counts)
        got.append(keys[at])
    assert got == [None] * CAP_WAIT_TICKS + [(NO_TICK, NO_TICK)]
    assert (counts.cap_waits, counts.cap_fulls, counts.full_snapshots) == (CAP_WAIT_TICKS, 1, 1)
    assert lone.waits == 0


def test_clients_take_turns_at_coming_first():
    clients = [tracker(40 - i) for i in range(6)]  # six different pairs, a cap of 2
    own = {i: 0 for i in range(6)}
    for tick in range(41, 41 + 12):
        for i, key in enumerate(plan_payloads(tick, clients, HIST, cap=2)):
            if key is not None and key[0] == 40 - i:
                own[i] += 1
    assert all(n >= 2 for n in own.values()), own


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ticks=st.integers(10, 70), n=st.integers(2, 7),
       cap=st.integers(1, 3), loss=st.sampled_from([0.0, 0.2]), ack_loss=st.sampled_from([0.0, 0.3]),
       max_delay=st.integers(0, 4), backlog=st.sampled_from([1, 3]))
def test_a_room_of_lossy_lagging_clients_never_desyncs_and_nobody_starves(seed, ticks, n, cap, loss, ack_loss,
                                                                          max_delay, backlog):
    """Several clients with their own loss, delays and lost acks against the whole policy
    with a small cap; each decodes a backlog of up to ``backlog`` snapshots whole and only
    the newest of a longer one. No snapshot needs a tick its client dropped, every state
    is exact, and no client goes more than CAP_WAIT_TICKS ticks in a row without one."""
    srv = Server(seed)
    rng = np.random.default_rng(seed ^ 0x9A7)
    trackers = [AckTracker(30, 1) for _ in range(n)]
    mirrors = [Mirror(SCHEMA, history=30) for _ in range(n)]
    wires: list[list[tuple[int, float, tuple]]] = [[] for _ in range(n)]
    acks: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    quiet = [0] * n
    hist: dict[int, State] = {}
    for _ in range(ticks):
        cur = srv.step()
        hist[cur.tick] = cur
        for t in [t for t in hist if t <= cur.tick - 30]:
            del hist[t]
        for i in range(n):
            for a in sorted(a for a in acks[i] if a[0] <= cur.tick):
                acks[i].remove(a)
                trackers[i].on_ack(a[1], a[2])
        keys = plan_payloads(cur.tick, trackers, hist, cap)
        assert len({k for k in keys if k is not None} - {(NO_TICK, NO_TICK)}) <= cap
        for i, key in enumerate(keys):
            quiet[i] = quiet[i] + 1 if key is None else 0
            assert quiet[i] <= CAP_WAIT_TICKS
            if key is None:
                continue
            trackers[i].on_sent(cur.tick, key[0])
            if rng.random() >= loss:
                wires[i].append((cur.tick + int(rng.integers(0, max_delay + 1)), rng.random(), srv.snap(cur.tick, *key)))
        for i in range(n):
            batch = sorted(w for w in wires[i] if w[0] <= cur.tick)
            for item in batch:
                wires[i].remove(item)
            if len(batch) > backlog:
                batch = [max(batch, key=lambda w: w[2][0])]
            for item in batch:
                got = mirrors[i].apply(*item[2])  # must never raise DesyncError
                if got is not None:
                    assert got.same_as(srv.states[got.tick])
                    if rng.random() >= ack_loss:
                        acks[i].append((cur.tick + int(rng.integers(0, max_delay + 1)), got.tick,
                                        mirrors[i].ack_bits()))


def test_past_the_cap_a_client_rides_the_newest_chosen_pair_it_can_decode():
    crowd = [tracker(19, 0b1) for _ in range(3)]  # want (19, 18)
    few = [tracker(17, 0b1) for _ in range(2)]  # want (17, 16)
    odd = tracker(20, 0b1111)  # wants (20, 19); holds 19, 18, 17 and 16 as well
    odd.base = 15
    counts = PlanCounts()
    keys = plan_payloads(21, [odd, *crowd, *few], HIST, cap=2, counts=counts)
    assert keys[1:] == [(19, 18)] * 3 + [(17, 16)] * 2
    assert keys[0] == (19, 18) and odd.base == 19  # both fit; the newer is the better baseline
    assert counts.cap_rides == 1


def test_a_waiting_client_keeps_the_baseline_it_had_and_can_ride_down_to_it_next_tick():
    """A client that waits is sent nothing, so it may still drop nothing older than its old
    baseline: the floor stays where it was, and a pair on a baseline between that floor and
    the one it wanted stays usable."""
    a, b = tracker(20, 0b1), tracker(15, 0)  # want (20, 19) and (15, 14)
    lone = tracker(17, 0)  # wants (17, 16); holds neither 20 nor 15
    lone.base = 15
    counts = PlanCounts()
    tick = 21
    at = (tick + 2) % 3  # last in line, so its pair misses the cap of 2
    order = [a, b]
    order.insert(at, lone)
    assert plan_payloads(tick, order, HIST, cap=2, counts=counts)[at] is None
    assert lone.base == 15 and lone.waits == 1 and counts.cap_waits == 1
    lone.on_ack(17, 0b10)  # the ack for 17 again, now saying it holds 15 too
    tick = 22
    at = (tick + 2) % 3
    order = [a, b]
    order.insert(at, lone)
    assert plan_payloads(tick, order, HIST, cap=2, counts=counts)[at] == (15, 14)
    assert lone.base == 15 and lone.waits == 0 and counts.cap_rides == 1


def test_the_full_snapshot_never_takes_one_of_the_caps_places():
    """Three newcomers want the full snapshot, more than want any pair: the cap of one still
    goes to a pair, and the full snapshot is built besides."""
    fresh = [sent(AckTracker(32, 1), range(0)) for _ in range(3)]
    a, b = tracker(9, 0b1), tracker(7, 0b1)  # want (9, 8) and (7, 6)
    keys = plan_payloads(10, [*fresh, a, b], HIST, cap=1)
    assert keys[:3] == [(NO_TICK, NO_TICK)] * 3
    assert len({k for k in keys[3:] if k is not None} - {(NO_TICK, NO_TICK)}) == 1


def test_counts_add_up_over_clients_and_ticks():
    counts = PlanCounts()
    plan_payloads(10, [AckTracker(32, 1) for _ in range(3)], HIST, cap=2, counts=counts)  # three joins
    assert counts.full_snapshots == 3
    crowd = [tracker(19, 0b1) for _ in range(3)]  # want (19, 18), the one pair of cap 1
    riders = [tracker(20, 0b11) for _ in range(2)]  # want (20, 19); hold 19 and 18: ride
    loners = [tracker(17, 0) for _ in range(2)]  # want (17, 16); hold only 17: wait, then full
    for tick in range(21, 21 + CAP_WAIT_TICKS + 1):
        for t in riders:
            t.base = 18
        plan_payloads(tick, [*crowd, *riders, *loners], HIST, cap=1, counts=counts)
    assert counts.cap_rides == 2 * (CAP_WAIT_TICKS + 1)
    assert counts.cap_waits == 2 * CAP_WAIT_TICKS
    assert counts.cap_fulls == 2 and counts.full_snapshots == 3 + 2
