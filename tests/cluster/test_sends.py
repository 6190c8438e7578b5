"""Sends across nodes (gamesync.cluster.sends, gamesync.sends): a room on one node sends to a
list of rooms and, reliably, to a player on the other node, with an acknowledgement, a reply
and a timeout; a player who moves between nodes mid-request answers from where they arrive;
``gamesync publish --player --reply`` does the same from outside. Two real nodes running the
test game ``relay`` (tests/server/relay_game.py), one real redis-server."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from cluster_kit import LocalCluster, hosted, run_cli
from gs_testkit import next_game_event, next_reliable

from gamesync.client.connection import Client, open_client

RELAY = [sys.executable, str(Path(__file__).resolve().parent / "relay_server.py")]


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b"], launcher=RELAY)
    yield c
    c.close()


_game_event = partial(next_game_event, timeout=8.0)
_request = partial(next_reliable, timeout=8.0)


async def _on(c: Client, cluster: LocalCluster, node: str) -> Client:
    """``c`` once it is in its room, which runs on ``node``."""
    await c.wait_state()
    assert c.room in await hosted(cluster.nodes[node])
    return c


async def test_a_room_sends_to_rooms_and_to_a_player_on_the_other_node(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(40):
        async with open_client(a.url, room="s1", name="asker", game="relay") as asker, \
                open_client(b.url, room="x1", name="pat", game="relay") as pat, \
                open_client(b.url, room="y1", name="yan", game="relay") as yan:
            await _on(asker, cluster, "a")
            await _on(pat, cluster, "b")
            await _on(yan, cluster, "b")
            await asker.send_message({"rooms": ["x1", "y1", "x1"], "say": "to both"})
            assert await _game_event(pat, "said") == "to both" and await _game_event(yan, "said") == "to both"
            # acknowledged
            await asker.send_message({"ask": "pat", "q": "there?"})
            assert (await _request(pat)).data["q"] == "there?"
            assert await _game_event(asker, "answer") == {"ok": True, "acked": True, "reply": None}
            # answered
            await asker.send_message({"ask": "pat", "reply": True, "q": "how many?"})
            req = await _request(pat)
            await pat.reply(req.ack_id, 3)
            assert await _game_event(asker, "answer") == {"ok": True, "acked": True, "reply": 3}
            # nobody of that name anywhere: the timeout fires, on time
            t0 = trio.current_time()
            await asker.send_message({"ask": "nobody", "timeout": 1.0})
            assert await _game_event(asker, "answer") == {"ok": False, "acked": False, "reply": None}
            assert 1.0 <= trio.current_time() - t0 < 2.5
            # acked but never answered: the timeout fires, and says it arrived
            await asker.send_message({"ask": "pat", "reply": True, "timeout": 1.0})
            await _request(pat)
            assert await _game_event(asker, "answer") == {"ok": False, "acked": True, "reply": None}


async def test_a_player_moving_between_nodes_mid_request_answers_from_the_new_node(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(40):
        async with open_client(a.url, room="s2", name="asker", game="relay") as asker:
            await _on(asker, cluster, "a")
            async with open_client(b.url, room="x2", name="mover", game="relay") as mover:
                await _on(mover, cluster, "b")
                await asker.send_message({"ask": "mover", "reply": True, "timeout": 10, "q": "where are you?"})
                first = await _request(mover)  # on b: acked on receipt; the player leaves before answering
            async with open_client(a.url, room="y2", name="mover", game="relay") as mover:
                await _on(mover, cluster, "a")
                again = await _request(mover)  # offered again, reaching the player on a
                assert again.data == first.data
                await mover.reply(again.ack_id, "on a now")
            assert await _game_event(asker, "answer") == {"ok": True, "acked": True, "reply": "on a now"}


async def test_gamesync_publish_asks_a_player_and_prints_the_reply(cluster: LocalCluster) -> None:
    b = cluster.nodes["b"]
    with trio.fail_after(40):
        async with open_client(b.url, room="x3", name="quinn", game="relay") as quinn:
            await _on(quinn, cluster, "b")

            async def answer() -> None:
                req = await _request(quinn)
                assert req.data == {"vote": "map?"}
                await quinn.reply(req.ack_id, "dust")

            async with trio.open_nursery() as n:
                n.start_soon(answer)
                done = await trio.to_thread.run_sync(lambda: run_cli(
                    "publish", "--redis", cluster.redis_url, "--player", "quinn", "--reply", "--timeout", "8",
                    '{"vote": "map?"}'))
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout) == {"ok": True, "acked": True, "replied": True, "reply": "dust"}
            done = await trio.to_thread.run_sync(lambda: run_cli(
                "publish", "--redis", cluster.redis_url, "--player", "nobody", "--ack", "--timeout", "0.5", "1"))
            assert done.returncode == 1 and json.loads(done.stdout)["ok"] is False
