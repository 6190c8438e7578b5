"""ServerConfig: derived defaults."""

from __future__ import annotations

import trio

from gamesync.core import protocol as p
from gamesync.server.config import ServerConfig
from gs_testkit import raw_client, running_server


def test_history_defaults_to_about_one_second_at_any_tick_rate():
    assert ServerConfig().history_ticks == 32  # 30 Hz
    assert ServerConfig(tick_rate=60).history_ticks == 62
    assert ServerConfig(tick_rate=128).history_ticks == 130
    assert ServerConfig(tick_rate=2).history_ticks == 8  # a floor for slow rooms
    assert ServerConfig(tick_rate=60, history_ticks=5).history_ticks == 5  # set: kept


async def test_a_60_hz_server_tells_clients_it_keeps_a_second_of_history():
    with trio.fail_after(10):
        async with running_server(tick_rate=60.0, history_ticks=0) as (server, url), raw_client(url) as c:
            w = await c.join(name="fast")
            assert isinstance(w, p.Welcome) and w.tick_rate == 60.0 and w.history == 62
            for _ in range(3):
                assert await c.snapshot()
