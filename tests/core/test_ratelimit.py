"""Token bucket (gamesync.core.ratelimit)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core.ratelimit import TokenBucket

FAST = settings(max_examples=300, deadline=None)

rates = st.floats(0.0, 1e6)
bursts = st.floats(1e-3, 1e6)
costs = st.floats(0.0, 2e6)
dts = st.floats(-10.0, 10.0)
ops = st.lists(st.tuples(st.sampled_from(["take", "oversize", "refill"]), costs, dts), max_size=60)


def test_starts_full():
    b = TokenBucket(10, 50, now=100.0)
    assert b.tokens == 50.0 and b.refill(100.0) == 50.0


def test_invalid_parameters_rejected():
    for rate, burst in ((-1, 10), (1, 0), (1, -5)):
        with pytest.raises(ValueError, match=r"^rate must be >= 0 and burst > 0$"):
            TokenBucket(rate, burst)
    assert TokenBucket(0, 1).rate == 0.0


def test_take_succeeds_iff_enough_tokens_and_takes_nothing_otherwise():
    b = TokenBucket(rate=10, burst=100)
    assert b.take(60, 0.0) and b.tokens == 40
    assert not b.take(41, 0.0) and b.tokens == 40
    assert b.take(40, 0.0) and b.tokens == 0
    assert not b.take(1, 0.0)
    assert b.take(0, 0.0)  # a free take always succeeds


def test_refill_adds_elapsed_times_rate_up_to_burst():
    b = TokenBucket(rate=10, burst=100)
    b.take(100, 0.0)
    assert b.refill(1.5) == 15.0
    assert b.refill(4.0) == 40.0
    assert b.refill(1000.0) == 100.0


def test_time_going_backwards_adds_nothing_and_does_not_rewind_the_clock():
    b = TokenBucket(rate=10, burst=100, now=10.0)
    b.take(100, 10.0)
    assert b.refill(5.0) == 0.0
    assert b.refill(10.0) == 0.0
    assert b.refill(11.0) == 10.0  # measured from 10, not from 5


def test_zero_rate_never_refills():
    b = TokenBucket(rate=0, burst=5)
    assert b.take(5, 0.0)
    assert b.refill(1e9) == 0.0 and not b.take(1, 1e9)


def test_take_oversize_passes_a_cost_above_burst_only_from_a_full_bucket():
    b = TokenBucket(rate=100, burst=1000)
    assert b.take_oversize(5000, 0.0) and b.tokens == 0.0  # full: passes and empties
    assert not b.take_oversize(5000, 5.0)  # 500 tokens: not full
    assert b.tokens == 500.0
    assert b.take_oversize(400, 5.0) and b.tokens == 100.0  # within burst: an ordinary take
    assert not b.take_oversize(200, 5.0) and b.tokens == 100.0
    assert b.take_oversize(1e9, 100.0) and b.tokens == 0.0
    assert not b.take(1e9, 1e6)  # plain take never passes a cost above burst


def test_take_oversize_at_exactly_burst_is_an_ordinary_take():
    b = TokenBucket(rate=1, burst=10)
    assert b.take_oversize(10, 0.0) and b.tokens == 0.0
    assert not b.take_oversize(10, 5.0) and b.tokens == 5.0


@FAST
@given(rate=rates, burst=bursts, start=st.floats(-1e3, 1e3), ops=ops)
def test_bucket_matches_its_model_and_stays_within_zero_and_burst(rate, burst, start, ops):
    b = TokenBucket(rate, burst, now=start)
    tokens, last, now = float(burst), start, start
    for op, n, dt in ops:
        now += dt
        # model: refill by elapsed * rate up to burst; time going backwards adds nothing
        if now > last:
            tokens = min(burst, tokens + (now - last) * rate)
            last = now
        if op == "refill":
            assert b.refill(now) == tokens
        elif op == "take":
            ok = b.take(n, now)
            assert ok == (n <= tokens)
            if ok:
                tokens -= n
        else:
            full = tokens >= burst
            ok = b.take_oversize(n, now)
            if n <= tokens:
                assert ok
                tokens -= n
            elif n > burst and full:
                assert ok
                tokens = 0.0
            else:
                assert not ok
        assert b.tokens == tokens
        assert 0.0 <= b.tokens <= b.burst


@FAST
@given(rate=rates, burst=bursts, n=costs, t0=st.floats(0, 1e3), dt=st.floats(0, 1e3))
def test_a_failed_take_changes_nothing_but_the_refill(rate, burst, n, t0, dt):
    b = TokenBucket(rate, burst, now=t0)
    b.take(burst, t0)
    before = b.refill(t0 + dt)
    if not b.take(n, t0 + dt):
        assert b.tokens == before and n > before
    else:
        assert b.tokens == before - n >= 0.0


@FAST
@given(rate=st.floats(0.1, 50.0), burst=st.floats(1.0, 50.0), dts=st.lists(st.floats(0.0, 1.0), max_size=20))
def test_long_run_throughput_never_exceeds_burst_plus_rate_times_time(rate, burst, dts):
    b = TokenBucket(rate, burst)
    now = taken = 0.0
    for dt in dts:
        now += dt
        while b.take(1.0, now):
            taken += 1.0
    assert taken <= burst + rate * now + 1e-6 * (burst + rate * now)


@pytest.mark.parametrize("n", [-1, -1e-9, -100.0, float("-inf")])
def test_a_negative_cost_is_refused_and_mints_nothing(n):
    b = TokenBucket(rate=1, burst=10)
    assert b.take(4, 0.0)
    with pytest.raises(ValueError, match=r"^cannot take a negative number of tokens$"):
        b.take(n, 0.0)
    assert b.tokens == 6  # nothing added, nothing taken
    assert not b.take_oversize(n, 0.0) and b.tokens == 6  # the oversize take refuses it too
    assert b.take(0, 0.0) and b.tokens == 6  # zero, the boundary, is a free take


@FAST
@given(rate=rates, burst=bursts, n=st.floats(-1e6, -1e-12), now=st.floats(0.0, 10.0))
def test_no_negative_cost_ever_lifts_the_tokens(rate, burst, n, now):
    b = TokenBucket(rate, burst)
    b.take(burst / 2, 0.0)
    before = b.refill(now)
    with pytest.raises(ValueError):
        b.take(n, now)
    b.take_oversize(n, now)
    assert b.tokens == before <= burst
