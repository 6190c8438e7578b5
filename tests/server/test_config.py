"""ServerConfig: derived defaults, and the settings it refuses (ConfigError names the setting)."""

from __future__ import annotations

import pytest
import trio

from gamesync.core import protocol as p
from gamesync.core.errors import ConfigError
from gamesync.server.config import ServerConfig
from gamesync.server.netaddr import origin_problem, url_problem
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


@pytest.mark.parametrize(("setting", "value"), [
    ("tick_rate", 0), ("tick_rate", -1.0), ("tick_rate", float("nan")), ("tick_rate", 5000), ("port", -1),
    ("port", 65536), ("http_port", 70000), ("stats_interval_s", 0), ("save_interval_s", float("inf")),
    ("drain_timeout_s", -0.5), ("redis_url", "redis:/nohost"), ("redis_url", "http://x:6379"),
    ("public_url", "https://game.example"), ("allowed_origins", ("https://game.example/",)),
])
def test_unusable_settings_are_refused_naming_the_setting(setting, value):
    with pytest.raises(ConfigError) as e:
        ServerConfig(**{setting: value})
    assert e.value.setting == setting and isinstance(e.value, ValueError)


def test_usable_settings_pass():
    ServerConfig(port=0, http_port=0, tick_rate=0.5, drain_timeout_s=0, redis_url="rediss://r.internal:6380/0",
                 public_url="wss://eu-1.game.example/", allowed_origins=("https://game.example", "http://[::1]:8000"))
    ServerConfig(redis_url="unix:///run/redis.sock")


@pytest.mark.parametrize(("origin", "fixed"), [
    ("https://game.example", None), ("http://127.0.0.1:8000", None), ("http://[::1]:8000", None),
    ("https://game.example/", "https://game.example"), ("HTTPS://Game.Example", "https://game.example"),
    ("https://game.example:443", "https://game.example"), ("http://a.example:80/x?y", "http://a.example"),
    ("game.example", "scheme://host"), ("*", "no wildcard"), ("https://*.game.example", "no wildcard"),
    ("ftp://game.example", "http or https"), ("https://game.example:99999", "not an origin"),
])
def test_an_origin_is_what_a_browser_sends_and_a_near_miss_gets_its_fix(origin, fixed):
    problem = origin_problem(origin)
    assert (problem is None) == (fixed is None), problem
    if fixed is not None:
        assert fixed in problem


def test_url_problems_say_which_scheme_and_that_a_host_is_needed():
    assert url_problem("redis://127.0.0.1:6379", ("redis",)) is None
    assert "must start with redis://" in url_problem("127.0.0.1:6379", ("redis",))
    assert "names no host" in url_problem("ws:///path", ("ws",))
    assert "not a URL" in url_problem("ws://h:port", ("ws",))
