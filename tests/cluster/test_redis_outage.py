"""Redis going away for a few seconds (killed, then restarted empty on the same port) does
not stop running rooms; the nodes log it, keep ticking, and register again when it is back."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from cluster_kit import LocalCluster, hosted, http_json, wait_until

from gamesync.client.connection import open_client
from gamesync.cluster import keys as k

OUTAGE_S = 4.0


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b"])
    yield c
    c.close()


async def test_redis_restart_leaves_running_rooms_running(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(60):
        async with open_client(a.url, room="keep", name="k1", reconnect=False) as c1, \
                open_client(b.url, room="keep", name="k2", reconnect=False) as c2, \
                open_client(b.url, room="keep-b", name="k3", reconnect=False) as c3:
            for c in (c1, c2, c3):
                await c.wait_state()
            ticks_before = (await c1.wait_state()).tick
            ticks: list[int] = []

            async def watch() -> None:  # the room keeps ticking and sending throughout
                while True:
                    ticks.append((await c1.wait_state(newer_than=ticks[-1] if ticks else ticks_before)).tick)
                    await c3.wait_state()

            async with trio.open_nursery() as n:
                n.start_soon(watch)
                await trio.to_thread.run_sync(cluster.restart_redis, OUTAGE_S)
                outage_ticks = len(ticks)

                async def registered() -> bool:
                    async with cluster.redis_client() as r:
                        return (await r.get(k.Keys().lease("keep")) == "a"
                                and await r.get(k.Keys().lease("keep-b")) == "b")
                took = await wait_until(registered, 5, "the nodes to take their leases again")
                lobby = {e["room"]: e for e in await http_json(b, "/rooms")}
                await wait_until(lambda: _lobby_has(b, {"keep", "keep-b"}), 5, "both rooms back in the lobby")
                n.cancel_scope.cancel()
            print(f"re-registered {took:.2f} s after Redis came back")
            # about 30 ticks a second reached the client while Redis was down
            assert outage_ticks >= 0.6 * 30 * OUTAGE_S, outage_ticks
            assert ticks == sorted(ticks)
            assert c1.connects == 1 and c2.connects == 1 and c3.connects == 1  # nobody was dropped
            assert await hosted(a) == {"keep"} and await hosted(b) == {"keep-b"}
            del lobby
    logs = cluster.logs()
    assert "Redis unreachable" in logs and "Redis reachable again" in logs


async def _lobby_has(node: Any, rooms: set[str]) -> bool:
    return rooms <= {e["room"] for e in await http_json(node, "/rooms")}


async def test_a_new_room_waits_for_redis_rather_than_risk_running_twice(cluster: LocalCluster) -> None:
    """While Redis is down a node cannot know whether a room runs elsewhere: a join for a room
    it does not host is refused with ``unavailable`` (the client retries), never run blind."""
    a = cluster.nodes["a"]
    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            n.start_soon(trio.to_thread.run_sync, cluster.restart_redis, 3.0)
            await trio.sleep(0.5)
            async with open_client(a.url, room="fresh", name="f", backoff_initial=0.2, backoff_max=0.5) as c:
                await c.wait_state()
                assert c.connects == 1
            assert "unavailable" in cluster.logs()
