"""The fixed-rate scheduler (gamesync.server.tick.run_ticks) under a mock clock, and the tick
rate a real room holds."""

from __future__ import annotations

import pytest
import trio

from gamesync.server.tick import RECENT_TICKS, TickStats, run_ticks
from gs_testkit import raw_client, running_server

RATE = 10.0
PERIOD = 1.0 / RATE


async def _record(clock, n: int, overrun: dict[int, float] | None = None, first_tick: int = 0,
                  rate: float = RATE) -> tuple[list[tuple[int, float]], TickStats, float]:
    """Run ``n`` ticks; the body jumps the mock clock by ``overrun[tick]`` seconds (work that
    took that long). Returns the (tick, now) calls, the stats and the start time."""
    calls: list[tuple[int, float]] = []
    stats = TickStats()
    overrun = overrun or {}
    with trio.CancelScope() as cs:

        def body(tick: int, now: float) -> None:
            calls.append((tick, now))
            assert now == trio.current_time()
            if tick in overrun:
                clock.jump(overrun[tick])
            if len(calls) == n:
                cs.cancel()

        start = trio.current_time()
        await run_ticks(rate, body, stats, first_tick=first_tick)
    return calls, stats, start


async def test_ticks_run_on_absolute_deadlines(autojump_clock):
    calls, stats, start = await _record(autojump_clock, 50)
    assert [t for t, _ in calls] == list(range(50))
    for k, (_, now) in enumerate(calls):
        assert now == pytest.approx(start + k * PERIOD, abs=1e-9)
    assert (stats.ticks, stats.overruns, stats.skipped) == (50, 0, 0)


async def test_work_shorter_than_the_period_causes_no_drift(autojump_clock):
    """Each tick takes 90% of the period; deadlines stay start + k / rate, not now + period."""
    work = {k: 0.9 * PERIOD for k in range(100)}
    calls, stats, start = await _record(autojump_clock, 100, work)
    for k, (_, now) in enumerate(calls):
        assert now == pytest.approx(start + k * PERIOD, abs=1e-9)
    assert stats.overruns == 0 and stats.skipped == 0
    assert stats.mean_s == pytest.approx(0.9 * PERIOD)
    assert stats.max_s == pytest.approx(0.9 * PERIOD)


async def test_overrun_runs_the_newest_missed_deadline_at_once_and_skips_the_older(autojump_clock):
    # tick 3 takes 2.5 periods: it ends at 5.5 periods, so the deadlines at 4 and 5 are missed;
    # 5 runs at once, 4 is dropped, and the next tick is back on the grid at 6
    calls, stats, start = await _record(autojump_clock, 8, {3: 2.5 * PERIOD})
    times = [(now - start) / PERIOD for _, now in calls]
    assert [t for t, _ in calls] == list(range(8))  # tick numbers stay consecutive
    assert times == pytest.approx([0, 1, 2, 3, 5.5, 6, 7, 8], abs=1e-6)  # no burst: one late tick
    assert stats.overruns == 1
    assert stats.skipped == 1 and stats.late == 1
    assert stats.max_s == pytest.approx(2.5 * PERIOD)


async def test_ticks_a_little_over_the_period_lose_a_little_rate_not_half(autojump_clock):
    """Every tick takes 1.13 periods: each starts as the one before ends (late, at once), so the
    room runs at 1/1.13 of its rate, where a scheduler that waited for the next deadline on the
    grid would run at half of it; and it never lags the grid by a period or more."""
    n = 40
    calls, stats, start = await _record(autojump_clock, n, {k: 1.13 * PERIOD for k in range(n)})
    times = [(now - start) / PERIOD for _, now in calls]
    assert times == pytest.approx([1.13 * k for k in range(n)], abs=1e-6)
    assert stats.overruns == n and stats.late == n
    # the last tick ran for grid deadline n - 1 + skipped, less than a period before it started
    assert 0 <= times[-1] - (n - 1 + stats.skipped) < 1
    assert stats.skipped == 5  # 40 ticks over 44 periods: 4-5 deadlines dropped, never a burst


async def test_long_stall_skips_many_deadlines_and_resumes_on_the_grid(autojump_clock):
    # tick 1 ends at 11.3 periods: deadline 11 runs at once, 2..10 are dropped
    calls, stats, start = await _record(autojump_clock, 5, {1: 10.3 * PERIOD})
    times = [(now - start) / PERIOD for _, now in calls]
    assert times == pytest.approx([0, 1, 11.3, 12, 13], abs=1e-6)
    assert stats.skipped == 9 and stats.overruns == 1 and stats.late == 1


async def test_overrun_shorter_than_a_period_runs_the_missed_deadline_late_and_skips_nothing(autojump_clock):
    # 1.5 periods: ends at 1.5, the deadline at 1 runs then, the next tick at 2 is on the grid
    calls, stats, start = await _record(autojump_clock, 4, {0: 1.5 * PERIOD})
    times = [(now - start) / PERIOD for _, now in calls]
    assert times == pytest.approx([0, 1.5, 2, 3], abs=1e-6)
    assert stats.overruns == 1 and stats.skipped == 0 and stats.late == 1


async def test_first_tick_sets_the_tick_numbers(autojump_clock):
    calls, _, _ = await _record(autojump_clock, 3, first_tick=100)
    assert [t for t, _ in calls] == [100, 101, 102]


async def test_recent_durations_are_capped(autojump_clock):
    n = RECENT_TICKS + 40
    calls, stats, _ = await _record(autojump_clock, n, {k: 0.001 * (k % 7) for k in range(n)}, rate=1000.0)
    assert stats.ticks == n
    assert len(stats.recent) == RECENT_TICKS
    assert stats.recent[-1] == pytest.approx(0.001 * ((n - 1) % 7))


async def test_room_holds_its_tick_rate_without_drift():
    """Over 3 s the room's deadline counter (ticks run + deadlines skipped) follows
    start + k / rate to within 2 at every sample, which a scheduler that slept a period after
    each tick would not; and the ticks actually run are at least 90 % of the periods elapsed,
    so a room that kept its schedule by skipping deadlines (a loaded machine: tests run beside
    other processes) passes only while it skips few."""
    rate_hz = 30.0
    with trio.fail_after(15):
        async with running_server(tick_rate=rate_hz) as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.snapshot()
                ts = server.rooms["r"].tick_stats

                def now() -> tuple[float, int, int]:
                    return trio.current_time(), ts.ticks, ts.ticks + ts.skipped

                t0, run0, k0 = now()
                samples = []
                for _ in range(12):
                    await c.follow(0.25)  # a client that keeps up, meanwhile
                    samples.append(now())
    for t, _, k in samples:
        expected = k0 + (t - t0) * rate_hz
        assert abs(k - expected) <= 2, f"deadline {k} (run + skipped) at +{t - t0:.2f} s, expected {expected:.1f}"
    t_end, run_end, k_end = samples[-1]
    elapsed = (t_end - t0) * rate_hz  # periods
    assert (k_end - k0) / (t_end - t0) == pytest.approx(rate_hz, rel=0.03)
    run = run_end - run0
    assert run >= 0.9 * elapsed, (
        f"{run} ticks run in {elapsed:.1f} periods ({k_end - k0 - run} deadlines skipped): "
        f"{run / (t_end - t0):.1f} Hz, not {rate_hz:g}")
