"""Placement by load (gamesync.cluster.placement): a new room goes to the least loaded live
node (rooms, clients, tick time), its first player redirected there. The rule alone, then
two real nodes (placing by load, their default) and one real redis-server."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from cluster_kit import NODE_ARGS, LocalCluster, hosted, http_json

from gamesync.client.connection import open_client
from gamesync.cluster import keys as k
from gamesync.cluster.placement import least_loaded, load


def _node(name: str, rooms: int = 0, clients: int = 0, tick_load: float = 0.0, draining: bool = False) -> dict:
    return {"node": name, "rooms": rooms, "clients": clients, "tick_load": tick_load, "draining": draining}


def test_the_least_loaded_node_counts_tick_time_clients_and_rooms() -> None:
    # one room whose ticks take a quarter of a core outweighs a dozen idle rooms and their players
    heavy, many = _node("a", rooms=1, clients=2, tick_load=0.25), _node("b", rooms=12, clients=40, tick_load=0.01)
    assert load(heavy) > load(many)
    assert least_loaded([heavy, many], "a") == "b"
    # between idle nodes, clients and rooms decide
    assert least_loaded([_node("a", rooms=2, clients=3), _node("b", rooms=2, clients=1)], "a") == "b"
    assert least_loaded([_node("a", rooms=1), _node("b", rooms=2)], "b") == "a"


def test_a_tie_keeps_the_room_on_the_node_placing_it_and_draining_nodes_get_none() -> None:
    assert least_loaded([_node("a"), _node("b"), _node("c")], "b") == "b"
    assert least_loaded([_node("a", draining=True), _node("b", rooms=5)], "a") == "b"
    assert least_loaded([_node("a", rooms=5), _node("b")], "b", include_me=False) == "a"
    assert least_loaded([_node("a", draining=True)], "a") is None


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b"], args=[a for a in NODE_ARGS if a not in ("--placement", "local")])
    yield c
    c.close()


async def _lease(cluster: LocalCluster, room: str) -> str | None:
    async with cluster.redis_client() as r:
        return await r.get(k.Keys().lease(room))


async def test_new_rooms_go_to_the_least_loaded_node_and_their_players_are_redirected(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(40):
        async with open_client(a.url, room="p1", name="x1") as p1, open_client(a.url, room="p1", name="x2") as p2, \
                open_client(a.url, room="p1", name="x3") as p3:
            for c in (p1, p2, p3):
                await c.wait_state()
            assert await _lease(cluster, "p1") == "a" and p1.redirects == 0  # both idle: it stays where it came
            await trio.sleep(1.2)  # a heartbeat: a reports its room and 3 clients
            # every new room joined through a goes to b, as long as b is the less loaded
            async with open_client(a.url, room="p2", name="y1") as q1:
                await q1.wait_state()
                assert q1.redirects == 1 and await _lease(cluster, "p2") == "b"
                assert "p2" in await hosted(b) and q1.host_url is not None and q1.host_url.startswith(b.url)
                # a join through b for a room of a still goes to a: placement is for new rooms only
                async with open_client(b.url, room="p1", name="x4") as p4:
                    await p4.wait_state()
                    assert p4.redirects == 1 and "p1" in await hosted(a)
                    await trio.sleep(1.2)
                    # each node now has one room; which is the less loaded depends on their tick
                    # times as much as on their clients (1 against 4), so only the redirect is
                    # checked here: the player ends where the room was placed, redirected if that
                    # is not the node it reached (the rule itself: the test above)
                    async with open_client(a.url, room="p3", name="z1") as r1:
                        await r1.wait_state()
                        where = await _lease(cluster, "p3")
                        assert where in ("a", "b") and r1.redirects == (1 if where == "b" else 0)
                        assert "p3" in await hosted(cluster.nodes[where])
            nodes = {n["node"]: n for n in await http_json(a, "/nodes")}
            assert nodes["a"]["tick_load"] > 0 and "tick_load" in nodes["b"]


async def test_rooms_placed_at_once_spread_before_any_heartbeat_counts_them(cluster: LocalCluster) -> None:
    a = cluster.nodes["a"]
    await trio.sleep(1.5)  # the last test's rooms are empty now; compare from a known state
    before = {n["node"]: n["rooms"] for n in await http_json(a, "/nodes")}
    with trio.fail_after(40):
        placed = []
        for i in range(4):  # one after the other, well within a heartbeat
            async with open_client(a.url, room=f"burst{i}", name=f"w{i}") as c:
                await c.wait_state()
                placed.append(await _lease(cluster, f"burst{i}"))
    # the placing node counts each room on its node as it places it, so they do not all go to
    # the one that looked least loaded at the last heartbeat
    assert len(set(placed)) == 2, (placed, before)
