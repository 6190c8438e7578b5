"""Reconnect backoff of the Python client: capped exponential, full jitter (backoff_delay)."""

from __future__ import annotations

import random
import statistics

import pytest
import trio

import gamesync.client.connection as connection
from gamesync.client.connection import backoff_delay, open_client
from gamesync.server.app import Server
from gs_testkit import make_config, wait_for


class Top:
    """An rng whose ``uniform`` returns the top of its range, recording each range."""

    def __init__(self) -> None:
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, lo: float, hi: float) -> float:
        self.ranges.append((lo, hi))
        return hi


def test_the_bound_doubles_with_each_attempt_from_twice_the_initial_delay():
    rng = Top()
    delays = [backoff_delay(a, 0.2, 1000.0, rng) for a in range(1, 8)]
    assert delays == pytest.approx([0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6])
    assert [lo for lo, _ in rng.ranges] == [0.0] * 7  # full jitter: every range starts at 0


def test_the_bound_is_capped_at_the_maximum():
    rng = Top()
    delays = [backoff_delay(a, 0.2, 5.0, rng) for a in range(1, 10)]
    assert delays == pytest.approx([0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0, 5.0])
    assert backoff_delay(2, 0.2, 0.5, rng) == pytest.approx(0.5)  # a cap below the second step
    assert backoff_delay(1, 0.2, 0.1, rng) == pytest.approx(0.1)  # ... or even the first


def test_attempts_past_the_float_range_stay_at_the_cap():
    # a client retrying for ever reaches attempt 1024 after about 40 minutes at the default cap,
    # where initial * 2 ** attempt overflows a float
    rng = Top()
    assert backoff_delay(1024, 0.2, 5.0, rng) == 5.0
    assert backoff_delay(100_000, 0.2, 5.0, rng) == 5.0


def test_attempts_count_from_one():
    with pytest.raises(ValueError):
        backoff_delay(0, 0.2, 5.0, Top())


def test_delays_are_uniform_between_zero_and_the_bound():
    rng = random.Random(1234)
    bound = 0.2 * 2 ** 3
    delays = [backoff_delay(3, 0.2, 5.0, rng) for _ in range(4000)]
    assert all(0.0 <= d <= bound for d in delays)
    assert min(delays) < 0.02 * bound and max(delays) > 0.98 * bound  # the whole range, not half of it
    assert statistics.fmean(delays) == pytest.approx(bound / 2, rel=0.05)
    quarters = [sum(q * bound / 4 <= d < (q + 1) * bound / 4 for d in delays) for q in range(4)]
    assert all(900 < n < 1100 for n in quarters), quarters  # flat: 1000 expected in each


def test_delays_use_the_module_rng_by_default():
    random.seed(99)
    a = [backoff_delay(2, 0.1, 5.0) for _ in range(3)]
    random.seed(99)
    b = [random.uniform(0.0, 0.4) for _ in range(3)]
    assert a == b


def test_client_rejects_a_negative_backoff():
    with pytest.raises(ValueError):
        connection.Client("ws://127.0.0.1:1/", "r", "me", backoff_initial=-1.0)


async def _serve_until(server: Server, stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with trio.open_nursery() as n:
        task_status.started(await n.start(server.serve))
        await stop.wait()
        n.cancel_scope.cancel()


async def test_retries_against_a_closed_port_back_off_exponentially_up_to_the_cap(monkeypatch):
    """The client loop feeds backoff_delay: 1 after the lost session, then one more per refusal."""
    drawn: list[tuple[float, float]] = []  # (bound, delay)
    real = random.Random(7)

    class Recording:
        @staticmethod
        def uniform(lo: float, hi: float) -> float:
            d = real.uniform(lo, hi)
            drawn.append((hi, d))
            return d

    monkeypatch.setattr(connection, "random", Recording)
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            stop = trio.Event()
            port = await n.start(_serve_until, Server(make_config()), stop)
            async with open_client(f"ws://127.0.0.1:{port}/", room="r", backoff_initial=0.01,
                                   backoff_max=0.08) as c:
                await c.wait_state()
                t0 = trio.current_time()
                stop.set()  # the server goes away: its port refuses every connection from now on
                await wait_for(lambda: len(drawn) >= 6, 5, lambda: f"six retries, drew {drawn}")
                elapsed = trio.current_time() - t0
                assert c.connects == 1
    bounds = [b for b, _ in drawn[:6]]
    assert bounds == pytest.approx([0.02, 0.04, 0.08, 0.08, 0.08, 0.08])
    assert all(0.0 <= d <= b for b, d in drawn)
    assert elapsed >= sum(d for _, d in drawn[:5])  # it slept each delay before the next attempt
