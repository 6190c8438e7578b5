"""The HTTP side of `gamesync serve`: health, Prometheus metrics, the room list, stats and the
demo's static files, on its own port next to the WebSocket one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from gs_testkit import raw_client, running_server, wait_for


async def _get(url: str) -> tuple[int, str, str]:
    def fetch() -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.headers.get("content-type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("content-type", ""), e.read().decode()
    return await trio.to_thread.run_sync(fetch)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>arena</title>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("export const x = 1;\n")
    return tmp_path


async def test_health_rooms_stats_and_metrics_follow_the_server(demo: Path):
    with trio.fail_after(15):
        async with running_server(http_port=0, demo_dir=str(demo)) as (server, url):
            base = server.http_url
            assert base is not None and base.startswith("http://127.0.0.1:")
            status, ctype, body = await _get(base + "/health")
            assert status == 200 and json.loads(body)["ok"] is True
            assert (await _get(base + "/rooms"))[2] == "[]"
            async with raw_client(url) as c:
                await c.join(room="lobby")
                await wait_for(lambda: "lobby" in server.rooms and server.rooms["lobby"].sessions, 3.0, "the join")
                rooms = json.loads((await _get(base + "/rooms"))[2])
                assert rooms == [{"room": "lobby", "game": "arena", "clients": 1, "max_players": 1024}]
                health = json.loads((await _get(base + "/health"))[2])
                assert health["connections"] == 1 and health["rooms"] == 1
                stats = json.loads((await _get(base + "/stats"))[2])
                assert stats["rooms"][0]["room"] == "lobby" and stats["rooms"][0]["ticks"] > 0
                status, ctype, text = await _get(base + "/metrics")
                assert status == 200 and ctype.startswith("text/plain")
                assert "gamesync_connections 1.0" in text
                assert 'gamesync_room_clients{game="arena",room="lobby"} 1.0' in text
                assert 'gamesync_room_tick_ms{room="lobby",stat="p99"}' in text
                assert 'gamesync_room_bytes_out_total{room="lobby"}' in text


async def test_the_demo_directory_is_served_at_the_root_and_nothing_outside_it(demo: Path):
    with trio.fail_after(15):
        async with running_server(http_port=0, demo_dir=str(demo)) as (server, url):
            base = server.http_url
            status, ctype, body = await _get(base + "/")
            assert status == 200 and ctype.startswith("text/html") and "<title>arena</title>" in body
            status, ctype, body = await _get(base + "/js/app.js")
            assert status == 200 and "javascript" in ctype
            assert (await _get(base + "/missing.js"))[0] == 404
            assert (await _get(base + "/../../etc/passwd"))[0] == 404


async def test_without_an_http_port_there_is_no_http_side():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            assert server.http_url is None
