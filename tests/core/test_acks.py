"""AckTracker: what a client holds, and the baseline/reference it gets."""

from __future__ import annotations

import pytest

from gamesync.core.acks import AckTracker
from gamesync.core.errors import ProtocolViolation
from gamesync.core.protocol import NO_TICK


def tracker_with_sent(ticks: range, lag: int = 2, keep: int = 32) -> AckTracker:
    """A tracker that sent every tick in ``ticks``, each against the tick before it."""
    t = AckTracker(keep, lag)
    for k in ticks:
        t.on_sent(k, k - 1 if k else NO_TICK)
    return t


def test_no_ack_means_a_full_snapshot():
    assert tracker_with_sent(range(5)).choose(5, range(6)) == (NO_TICK, NO_TICK)


def test_client_holding_tick_minus_lag_gets_it_as_baseline_and_the_tick_before_as_reference():
    t = tracker_with_sent(range(10))
    t.on_ack(9, 0b11)  # holds 9, 8, 7
    assert t.choose(10, range(11)) == (8, 7)


def test_without_the_lag_tick_the_newest_ack_is_the_baseline_and_its_own_baseline_the_reference():
    t = tracker_with_sent(range(10))
    t.on_ack(9, 0)  # holds only 9, which was encoded against 8 (see tracker_with_sent)
    assert t.choose(10, range(11)) == (9, 8)


def test_baseline_never_moves_back():
    t = tracker_with_sent(range(10))
    t.on_ack(9, 0b1)
    assert t.choose(10, range(11))[0] == 8
    t.on_ack(9, 0)  # same newest tick: bits only add
    assert t.choose(11, range(12))[0] == 9  # 9 now qualifies as 11 - 2
    t.ack_bits = 0
    assert t.choose(12, range(13))[0] == 9  # never older than before


def test_baseline_that_left_the_history_means_a_full_snapshot():
    t = tracker_with_sent(range(10))
    t.on_ack(3)
    assert t.choose(40, range(20, 41)) == (NO_TICK, NO_TICK)


def test_reference_outside_the_history_is_dropped():
    t = tracker_with_sent(range(10))
    t.on_ack(9)
    assert t.choose(10, range(9, 11)) == (9, NO_TICK)


def test_ack_for_a_tick_never_sent_is_a_protocol_violation_and_old_unknown_acks_are_ignored():
    t = tracker_with_sent(range(50), keep=8)
    with pytest.raises(ProtocolViolation):
        t.on_ack(50)
    t.on_ack(3)  # long forgotten: ignored
    assert t.acked == NO_TICK


def test_ack_bits_only_count_for_ticks_that_were_sent():
    t = AckTracker(32, 2)
    t.on_sent(5, NO_TICK)
    t.on_sent(7, 5)
    t.on_ack(7, 0b11)  # claims 6 and 5; 6 was never sent
    assert t.holds(7) and t.holds(5) and not t.holds(6)


def test_what_was_sent_is_remembered_for_a_bounded_window():
    t = tracker_with_sent(range(1000), keep=32)
    assert all(t.was_sent(k) for k in range(1000 - 34, 1000))
    assert not any(t.was_sent(k) for k in range(0, 1000 - 34))
    assert not t.was_sent(1000) and not t.was_sent(-1)
    assert t.sent_base(999) == 998 and t.sent_base(3) == -1
    assert len(t._ticks) == len(t._bases) == 34  # fixed size however long the stream


def test_usable_needs_the_baseline_held_and_not_below_the_floor_and_a_reference_it_still_has():
    t = tracker_with_sent(range(20))
    t.on_ack(19, 0b1111)  # holds 19, 18, 17, 16, 15
    floor = 16
    assert t.usable((17, 16), floor)  # both held
    assert t.usable((18, NO_TICK), floor)  # no reference needed
    assert t.usable((17, 14), floor) is False  # 14 not held and not the baseline 17 was built on
    assert t.usable((16, 15), floor)  # 15 = floor - 1: the client keeps it
    assert t.usable((15, 14), floor) is False  # baseline below the floor: may be gone
    assert t.usable((18, 17), floor) and t.usable((18, 17), 19) is False
    assert t.usable((17, 16), floor) and t.usable((18, 16), floor)  # 16 held and >= floor - 1
    assert t.usable((10, 9), floor) is False  # never acked
    t.on_ack(19, 0b1)  # same tick again: bits only add, nothing changes
    assert t.usable((19, 18), floor)
    # a reference below floor - 1 counts only as the baseline's own baseline
    t2 = tracker_with_sent(range(20))
    t2.on_ack(19, (1 << 5) | 1)  # holds 19, 18 and 13
    assert t2.usable((18, 13), 18) is False and t2.usable((18, 17), 18)  # 17 = 18's own baseline
    assert t2.settle((18, 17)) == (18, 17) and t2.base == 18


def test_a_full_snapshot_keeps_the_baseline_floor():
    t = tracker_with_sent(range(10))
    t.on_ack(9, 0b11)
    assert t.choose(10, range(11)) == (8, 7)
    assert t.restart() == (NO_TICK, NO_TICK)
    assert t.base == 8
    t.on_sent(10, NO_TICK)
    assert t.choose(11, range(12))[0] >= 8


@pytest.mark.parametrize(("first", "second"), [(0b01, 0b10), (0b11, 0b01), (0b101, 0b110), (0b1, 0), (1 << 31, 0b1)])
def test_a_repeated_ack_adds_its_bits_to_those_already_reported(first, second):
    """Overlapping or not, a second ack of the same tick never takes a held tick away."""
    t = tracker_with_sent(range(40), keep=64)  # every tick the bits name is still remembered
    t.on_ack(35, first)
    t.on_ack(35, second)
    both = first | second
    assert t.ack_bits == both
    for i in range(32):
        assert t.holds(35 - 1 - i) == bool(both >> i & 1), i
    assert t.holds(35)


def test_an_older_ack_changes_nothing_and_a_newer_one_starts_the_bits_afresh():
    t = tracker_with_sent(range(40))
    t.on_ack(35, 0b1)
    t.on_ack(30, 0b11)  # late: 30 and its bits are old news
    assert (t.acked, t.ack_bits) == (35, 0b1) and not t.holds(29)
    t.on_ack(36, 0b10)  # newer: its own bits (35 is not reported, but 34 is)
    assert (t.acked, t.ack_bits) == (36, 0b10) and t.holds(34) and not t.holds(35)


def sent_against(ticks: range, back: int, keep: int = 32, lag: int = 2) -> AckTracker:
    """A tracker that sent every tick in ``ticks`` against the tick ``back`` before it."""
    t = AckTracker(keep, lag)
    for k in ticks:
        t.on_sent(k, k - back if k >= back else NO_TICK)
    return t


def test_a_fresh_tracker_holds_nothing_and_any_ack_is_for_a_tick_never_sent():
    t = AckTracker(16, 2)
    assert (t.keep, t.lag, t.acked, t.ack_bits, t.base, t.newest_sent, t.waits) == (16, 2, NO_TICK, 0, NO_TICK, NO_TICK, 0)
    assert not any(t.holds(k) for k in range(40))
    with pytest.raises(ProtocolViolation, match="ack for tick 0, which was never sent"):
        t.on_ack(0)


def test_tick_zero_is_a_tick_like_any_other():
    t = AckTracker(16, 1)
    t.on_sent(0, NO_TICK)
    assert t.was_sent(0) and t.sent_base(0) == NO_TICK
    t.on_ack(0)
    assert t.acked == 0 and t.holds(0)
    assert t.choose(1, range(2)) == (0, NO_TICK)


def test_the_reference_is_the_tick_before_the_baseline_when_held_else_the_baseline_it_was_built_on():
    t = sent_against(range(20), back=3)  # each tick encoded against the one 3 before it
    t.on_ack(19, 0b11)  # holds 19, 18, 17
    assert t.choose(20, range(21)) == (18, 17)  # 18 = 20 - lag; 17 held, though 18 was built on 15
    t = sent_against(range(20), back=3)
    t.on_ack(19, 0b1)  # holds 19, 18
    assert t.choose(20, range(21)) == (18, 15)  # 17 not held: 18's own baseline


def test_a_baseline_the_acks_would_move_back_stays_where_it_was_with_its_reference():
    t = sent_against(range(20), back=1, lag=1)
    t.on_ack(15, 0b1)
    assert t.choose(16, range(17)) == (15, 14) and t.base == 15
    t.acked, t.ack_bits = 12, 0b1  # as if the acks said less than before
    assert t.choose(17, range(18)) == (15, 14) and t.base == 15


def test_a_reference_at_exactly_floor_minus_one_is_usable_when_held():
    t = sent_against(range(20), back=3)  # no tick was built on the tick before it
    t.on_ack(19, 0b1111)  # holds 19, 18, 17, 16, 15
    assert t.sent_base(17) == 14
    assert t.usable((17, 15), 16)  # 15 = floor - 1, held
    assert t.usable((17, 15), 17) is False  # 15 < 17 - 1, and 17 was not built on it
    assert t.usable((18, 15), 17)  # ... but 18 was
