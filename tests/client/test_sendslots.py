"""The bot swarm's send schedule (gamesync.client.swarm.slots_due): a bot process that wakes
late sends the slots it missed instead of dropping their inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gamesync.client.swarm import SEND_SLOTS, slots_due

SLOT = 1.0 / 30 / SEND_SLOTS


def _run(stalls: list[float]) -> list[tuple[float, int]]:
    """(time sent, slot) of every send of a sender loop whose wake-ups come late by ``stalls``."""
    sent: list[tuple[float, int]] = []
    k = 0
    for late in stalls:
        now = k * SLOT + late
        for j in slots_due(k, now, SLOT):
            sent.append((now, j))
            k = j + 1
    return sent


def test_on_time_every_slot_is_sent_once_in_order():
    sent = _run([0.0] * 50)
    assert [j for _, j in sent] == list(range(50))


def test_a_stall_shorter_than_a_period_sends_the_missed_slots_late_not_never():
    stall = 5.5 * SLOT  # the process was busy for five and a half slots
    sent = _run([0.0] * 10 + [stall] + [0.0] * 20)
    assert [j for _, j in sent] == list(range(len(sent)))  # none skipped, none twice
    late = [j for t, j in sent if t == 10 * SLOT + stall]
    assert late == [10, 11, 12, 13, 14, 15]  # the slot it woke for and the five that came meanwhile


def test_a_stall_longer_than_a_period_sends_each_bot_at_most_once():
    stall = 3 * SEND_SLOTS * SLOT + 0.5 * SLOT  # three periods and a half
    sent = _run([0.0] * 4 + [stall] + [0.0] * 10)
    burst = [j for t, j in sent if t == 4 * SLOT + stall]
    assert len(burst) == SEND_SLOTS  # one period's slots: every bot once
    assert len({j % SEND_SLOTS for j in burst}) == SEND_SLOTS


@given(st.lists(st.floats(min_value=0.0, max_value=30 * SLOT), min_size=1, max_size=200))
def test_any_stalls_no_slot_twice_and_no_gap_inside_a_period(stalls):
    sent = _run(stalls)
    slots = [j for _, j in sent]
    assert slots == sorted(set(slots))  # ascending, each at most once
    for a, b in zip(slots, slots[1:]):
        if b - a > 1:  # slots dropped: only by a stall of more than a period
            assert b - a <= max(stalls) / SLOT + 1
            assert max(stalls) > SEND_SLOTS * SLOT - SLOT
