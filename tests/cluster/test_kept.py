"""Kept data in a cluster: a notes room's document and last chat lines outlive kill -9 of its
host (from the room's save, and from what it keeps in Redis), and chat ids go on. Two real
nodes, one real redis-server."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from cluster_kit import LocalCluster, hosted, wait_until

from gamesync.client.connection import Client, open_client
from gamesync.cluster import keys as k
from gamesync.core.clientproto import GameEvent


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b"])
    yield c
    c.close()


async def _event(c: Client, key: str) -> dict[str, Any]:
    with trio.fail_after(10):
        async for ev in c.events():
            if isinstance(ev, GameEvent) and isinstance(ev.data, dict) and key in ev.data:
                return ev.data
    raise AssertionError(f"no {key} event")


async def _say(c: Client, text: str) -> int:
    assert await c.send_reliable({"chat": text, "ref": 1})
    while True:
        line = (await _event(c, "chat"))["chat"]
        if line["text"] == text:
            return int(line["id"])


async def test_kill_9_of_the_host_keeps_the_document_and_the_chat(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(60):
        async with open_client(a.url, room="kp", name="ann", game="notes") as ann:
            await _event(ann, "doc")
            assert await ann.send_reliable({"op": ["survives"], "v": 0, "ref": 1})
            await _event(ann, "op")
            ids = [await _say(ann, "one"), await _say(ann, "two")]
            await trio.sleep(1.5)  # a save (every 0.5 s here) and the kept data written after those
            cluster.kill("a")
        await wait_until(lambda: _in(cluster, "kp"), 10, "room kp on b")
        async with open_client(b.url, room="kp", name="bob", game="notes") as bob:
            assert (await _event(bob, "doc"))["doc"]["text"] == "survives"
            hist = (await _event(bob, "chat_history"))["chat_history"]
            assert [(h["id"], h["name"], h["text"]) for h in hist] == [(ids[0], "ann", "one"), (ids[1], "ann", "two")]
            assert await _say(bob, "three") == ids[1] + 1  # chat ids go on after the failover


async def _in(cluster: LocalCluster, room: str) -> bool:
    return room in await hosted(cluster.nodes["b"])


async def test_what_a_room_keeps_is_in_redis_without_expiry_of_its_save(cluster: LocalCluster) -> None:
    b = cluster.nodes["b"]
    with trio.fail_after(30):
        async with open_client(b.url, room="kr", name="cy", game="notes") as cy:
            await _event(cy, "doc")
            await _say(cy, "kept")
            await trio.sleep(1.0)
    keys = k.Keys()
    async with cluster.redis_client() as r:
        ttl_ms = await r.pttl(keys.kept("kr"))
    assert ttl_ms > k.STATE_MS  # kept far longer than a save: it outlives the room
