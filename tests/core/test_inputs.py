"""The input jitter buffer (gamesync.core.inputs): inputs in seq order, one per tick while a
small backlog lasts, catch-up past it, a standing backlog drained, the flood limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamesync.core.errors import RateLimited
from gamesync.core.inputs import DRAIN_TICKS, INPUT_BACKLOG, InputQueue


def ticks(q: InputQueue, arrivals: list[list[int]]) -> list[list[int]]:
    """Feed each tick's arriving seqs, then take; the seqs applied at each tick."""
    out = []
    for seqs in arrivals:
        for s in seqs:
            q.add(s, f"d{s}")
        out.append([f.seq for f in q.take()])
    return out


def test_the_defaults_are_a_backlog_of_one_and_a_third_of_a_second_of_standing():
    assert (INPUT_BACKLOG, DRAIN_TICKS) == (1, 10)


def test_inputs_bunched_by_the_network_reach_the_game_one_per_tick():
    q = InputQueue()
    # sent one per tick, delivered two in one tick and none in the next
    assert ticks(q, [[1], [2, 3], [], [4, 5], [], [6]]) == [[1], [2], [3], [4], [5], [6]]


def test_the_input_ack_is_the_newest_seq_handed_to_the_game():
    q = InputQueue()
    q.add(1, "a")
    q.add(2, "b")
    assert [f.data for f in q.take()] == ["a"] and q.last_applied == 1
    assert [f.data for f in q.take()] == ["b"] and q.last_applied == 2
    assert q.take() == [] and q.last_applied == 2  # a tick without input keeps the ack


def test_inputs_go_in_seq_order_each_seq_once():
    q = InputQueue(backlog=0)
    for s in (3, 1, 2, 2, 1):
        q.add(s, s)
    assert [f.seq for f in q.take()] == [1, 2, 3]
    q.add(2, "a late resend")
    q.add(3, "a duplicate")
    assert q.take() == [] and len(q) == 0


def test_a_backlog_past_the_bound_is_caught_up_at_once():
    q = InputQueue(backlog=1)
    assert ticks(q, [[1, 2, 3, 4, 5]]) == [[1, 2, 3, 4]]  # one left waiting, the bound
    assert len(q) == 1
    q = InputQueue(backlog=2)
    assert ticks(q, [[1, 2, 3, 4, 5], [], []]) == [[1, 2, 3], [4], [5]]


def test_catching_up_never_passes_the_per_tick_cap():
    q = InputQueue(max_per_tick=4, backlog=1)
    assert ticks(q, [list(range(1, 11)), [], [], []]) == [[1, 2, 3, 4], [5, 6, 7, 8], [9], [10]]


def test_backlog_zero_is_every_waiting_input_at_the_next_tick():
    q = InputQueue(backlog=0)
    assert ticks(q, [[1, 2, 3], [], [4]]) == [[1, 2, 3], [], [4]]


def test_a_backlog_that_stands_drains_one_input_after_drain_ticks():
    q = InputQueue(backlog=1, drain_ticks=5)
    arrivals = [[1, 2]] + [[s] for s in range(3, 12)]  # a burst once, then one per tick
    applied = ticks(q, arrivals)
    assert applied[:4] == [[1], [2], [3], [4]]  # one input waits: each input one tick later
    assert applied[4] == [5, 6]  # after five ticks standing the backlog gives one up
    assert all(len(a) == 1 for a in applied[5:]) and len(q) == 0  # and stays empty


def test_a_backlog_that_empties_now_and_then_is_not_drained():
    q = InputQueue(backlog=1, drain_ticks=3)
    # jitter both ways: the backlog comes and goes, never standing three ticks
    applied = ticks(q, [[1, 2], [], [3, 4], [], [5, 6], [], [7, 8], []])
    assert applied == [[s] for s in range(1, 9)]


def test_more_than_four_times_the_cap_waiting_is_a_flood():
    q = InputQueue(max_per_tick=2)
    for s in range(1, 9):
        q.add(s, None)  # 8 = 4 x 2 waiting: allowed
    with pytest.raises(RateLimited):
        q.add(9, None)


def test_the_flood_limit_counts_what_waits_after_the_tick():
    q = InputQueue(max_per_tick=2, backlog=1)
    for s in range(1, 9):
        q.add(s, None)
    q.take()  # two applied, six wait
    for s in range(9, 11):
        q.add(s, None)
    with pytest.raises(RateLimited):
        q.add(11, None)


def test_clear_drops_everything_waiting():
    q = InputQueue()
    q.add(1, None)
    q.add(2, None)
    q.clear()
    assert q.take() == [] and q.last_applied == 0


def test_the_arrivals_of_a_tick_are_counted_until_it_takes():
    q = InputQueue()
    q.add(1, None)
    q.add(2, None)
    q.add(1, "duplicate of a waiting one still counts as arrived")
    assert q.arrived == 3
    q.take()
    assert q.arrived == 0
    q.add(1, "already applied: dropped on arrival")
    assert q.arrived == 0


def test_settings_out_of_range_are_refused():
    for kw in ({"max_per_tick": 0}, {"backlog": -1}, {"drain_ticks": 0}):
        with pytest.raises(ValueError):
            InputQueue(**kw)  # type: ignore[arg-type]


@given(
    arrivals=st.lists(st.lists(st.integers(1, 60), max_size=6), max_size=40),
    backlog=st.integers(0, 3),
    cap=st.integers(1, 8),
    drain=st.integers(1, 40),
)
def test_every_seq_reaches_the_game_once_in_order_and_the_backlog_stays_bounded(
        arrivals: list[list[int]], backlog: int, cap: int, drain: int) -> None:
    q = InputQueue(max_per_tick=cap, backlog=backlog, drain_ticks=drain, max_waiting=10_000)
    seen: list[int] = []
    due: set[int] = set()  # seqs newer than the input ack when they arrived: each must be applied
    for seqs in arrivals:
        for s in seqs:
            if s > q.last_applied:
                due.add(s)
            q.add(s, None)
        applied = [f.seq for f in q.take()]
        assert len(applied) <= cap
        if applied:
            assert q.last_applied == applied[-1]  # the ack names exactly the newest applied input
        seen += applied
        if len(applied) < cap:  # not held back by the cap: at most the backlog still waits
            assert len(due - set(seen)) <= backlog
    for _ in range(len(due) + 1):
        seen += [f.seq for f in q.take()]
    assert seen == sorted(due)  # in seq order, each once, none lost
