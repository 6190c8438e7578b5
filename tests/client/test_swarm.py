"""The bot swarm (gamesync.client.swarm) against a real server."""

from __future__ import annotations

import math

import pytest
import trio

from gamesync.client.swarm import swarm_main
from gs_testkit import running_server, wait_for

pytestmark = pytest.mark.usefixtures("wire_path")  # every test on both wire paths (tests/conftest.py)


async def test_swarm_connects_every_bot_and_reports_rates_and_latency():
    with trio.fail_after(20):
        async with running_server() as (server, url):
            result = await swarm_main(url, count=5, duration=2, ramp=0.2)
            room = server.stats()["rooms"][0]
            await wait_for(lambda: server.connections == 0, 3, "the bots to disconnect")
    assert result["bots"] == 5
    assert result["all_connected"] is True and result["disconnected"] == 0
    assert result["seconds"] == pytest.approx(2.0, abs=0.2)
    assert result["states_per_client_s"] == pytest.approx(30.0, rel=0.1)
    assert result["states_per_client_s_min"] > 25.0
    assert result["payload_bytes_per_client_s"] > 0
    for key in ("ack_latency_ms_p50", "ack_latency_ms_p99"):
        assert math.isfinite(result[key]) and 0 < result[key] < 500, (key, result[key])
    assert result["ack_latency_ms_p50"] <= result["ack_latency_ms_p99"]
    assert result["ack_samples"] > 5 * 30  # ~30 inputs/s per bot, most acked
    assert result["inputs_per_client_s"] == pytest.approx(30.0, rel=0.1)
    assert 0 < result["shared_decode_hit_rate"] <= 1  # five bots in one room share payloads
    assert room["joins"] == 5 and room["inputs_in"] > 5 * 30


async def test_swarm_against_a_dead_port_reports_every_bot_disconnected():
    async with running_server() as (server, url):
        pass  # the port is free again
    with trio.fail_after(10):
        result = await swarm_main(url, count=3, duration=0.3, ramp=0.05)
    assert result["all_connected"] is False
    assert result["disconnected"] == 3
    assert result["states_per_client_s"] == 0
    assert result["ack_samples"] == 0 and result["ack_latency_ms_p50"] is None  # JSON null, never NaN


async def test_swarm_notices_a_bot_the_server_drops():
    with trio.fail_after(20):
        async with running_server() as (server, url):
            async with trio.open_nursery() as n:
                out = {}

                async def run():
                    out["result"] = await swarm_main(url, count=3, duration=1.5, ramp=0.05)

                n.start_soon(run)
                await wait_for(lambda: server.stats()["clients"] == 3, 5, "three bots in")
                room = next(iter(server.rooms.values()))
                room.sessions[min(room.sessions)].close(None, "dropped by the test")
    result = out["result"]
    assert result["all_connected"] is False and result["disconnected"] == 1
