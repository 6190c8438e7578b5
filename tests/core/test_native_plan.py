"""The native snapshot plan (``_wire.plan_keys``, behind ``native.plan_pass``) against
``core.plan.plan_payloads``: clients sent snapshots and acking them at random give the same
pair per client, the same full snapshots, and the same baselines and waits afterwards; past
the cap the native plan declines and changes nothing, and the Python plan takes the tick."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import on_path

from gamesync import native
from gamesync.core.acks import AckTracker
from gamesync.core.plan import PlanCounts, plan_payloads

needs_native = pytest.mark.skipif(not native.available(), reason="the native extension is not built here")
KEEP, LAG = 30, 1


def _state(t: Any) -> tuple[int, int, int, int, int]:
    return t.base, t.waits, t.acked, t.ack_bits, t.newest_sent


@needs_native
@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 6), cap=st.integers(1, 3), span=st.integers(2, 12),
       ticks=st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 14), st.integers(0, 255)), max_size=8),
                      min_size=1, max_size=30))
def test_the_native_plan_is_the_python_plan(n: int, cap: int, span: int,
                                            ticks: list[list[tuple[int, int, int]]]) -> None:
    """Each tick: some clients ack some tick (with random ack bits), the history holds the last
    ``span`` ticks, both plans run, and every client is sent what its plan gave."""
    assert native._ext is not None
    with on_path(True):
        nat = [native.ack_tracker(KEEP, LAG) for _ in range(n)]
    py = [AckTracker(KEEP, LAG) for _ in range(n)]
    for tick, acks in enumerate(ticks, start=1):
        for who, back, bits in acks:
            if who < n and tick - 1 - back >= 0:
                for ts in (nat, py):
                    try:
                        ts[who].on_ack(tick - 1 - back, bits)
                    except Exception:  # an ack never sent: refused alike (the states are compared below)
                        pass
        history = range(max(0, tick - span + 1), tick + 1)
        before = [_state(t) for t in nat]
        keys = native._ext.plan_keys(nat, tick, history, tick - KEEP, KEEP + 1, cap)
        counts = PlanCounts()
        want = plan_payloads(tick, py, history, cap, counts)
        if keys is None:  # past the cap: declined, nothing changed, the Python plan takes the tick
            assert [_state(t) for t in nat] == before
            assert len({k for k in want if k is not None} - {(-1, -1)}) == cap or None in want
            keys = plan_payloads(tick, nat, history, cap, PlanCounts())
        else:
            assert counts.full_snapshots == keys.count((-1, -1))
        assert keys == want
        assert [_state(t) for t in nat] == [_state(t) for t in py]
        for ts in (nat, py):
            for t, key in zip(ts, keys, strict=True):
                if key is not None:
                    t.on_sent(tick, key[0])
