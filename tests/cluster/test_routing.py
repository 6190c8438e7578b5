"""Two nodes and one redis-server: directory, routing with redirects and reservations, the
lobby, presence and cross-node events, with real processes and real WebSockets."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio
from cluster_kit import LocalCluster, hosted, http_json, run_cli, wait_until
from gs_testkit import pk, raw_client
from trio_websocket import ConnectionClosed

from gamesync.client.connection import open_client
from gamesync.cluster import Publisher
from gamesync.cluster import keys as k
from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.core.errors import Redirect


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b"])
    yield c
    c.close()


async def _events(client: Any, into: list[Any]) -> None:
    async for ev in client.events():
        if isinstance(ev, cp.GameEvent):
            into.append(ev.data)


async def test_join_through_either_node_ends_in_the_same_room(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(20):
        async with open_client(a.url, room="same", name="alice") as c1, \
                open_client(b.url, room="same", name="bob") as c2:
            await c1.wait_state()
            await c2.wait_state()
            assert c1.redirects == 0 and c2.redirects == 1  # bob came in through b and was sent to a
            assert c2.host_url is not None and c2.host_url.startswith(a.url)
            assert "reservation=" in c2.host_url
            assert c1.client_id != c2.client_id
            st = await c1.wait_state(newer_than=(await c2.wait_state()).tick)
            assert st.tick > 0
            assert await hosted(a) >= {"same"} and "same" not in await hosted(b)
            async with cluster.redis_client() as r:
                assert await r.get(k.Keys().lease("same")) == "a"
                assert await r.zcard(k.Keys().resv("same")) == 0  # bob's reservation was used


async def test_a_join_elsewhere_gets_error_redirect_then_the_redirect_message_then_close_4012(
        cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(20):
        async with open_client(a.url, room="wire", name="host"):
            async with raw_client(b.url) as c:
                await c.send([1, p.PROTOCOL_VERSION, "wire", "raw"])
                err = await c.recv()
                assert isinstance(err, p.ServerError) and err.code == "redirect" and a.url in err.reason
                red = await c.recv()
                assert isinstance(red, Redirect)
                assert red.room == "wire" and red.ttl_ms == k.RESERVATION_MS
                assert red.url.startswith(a.url + "?reservation=")
                with pytest.raises(ConnectionClosed) as closed:
                    await c.recv()
                assert closed.value.reason.code == 4012
            async with cluster.redis_client() as r:  # the seat it was given is held...
                assert await r.zcard(k.Keys().resv("wire")) == 1
            async with raw_client(red.url) as c:  # ... until it is used
                await c.send(pk([1, p.PROTOCOL_VERSION, "wire", "raw"]))
                assert isinstance(await c.recv(), p.Welcome)
                async with cluster.redis_client() as r:
                    assert await r.zcard(k.Keys().resv("wire")) == 0


async def test_reservations_hold_seats_until_they_lapse(cluster: LocalCluster) -> None:
    """The RESERVE script on the real Redis: a full room refuses, a lapsed reservation frees its seat."""
    keys = k.Keys("test-resv:")
    async with cluster.redis_client() as r:
        reserve = r.register_script(k.RESERVE)
        await r.hset(keys.room("r"), {"clients": 1, "max_players": 3})
        now = int(time.time() * 1000)
        args = lambda tok, ttl: [tok, now, now + ttl, 99]  # noqa: E731
        assert await reserve(keys=[keys.resv("r"), keys.room("r")], args=args("t1", 300)) == 1
        assert await reserve(keys=[keys.resv("r"), keys.room("r")], args=args("t2", 60_000)) == 1
        assert await reserve(keys=[keys.resv("r"), keys.room("r")], args=args("t3", 60_000)) == 0  # 1 + 2 = 3
        await trio.sleep(0.4)
        now = int(time.time() * 1000)
        assert await reserve(keys=[keys.resv("r"), keys.room("r")], args=args("t3", 60_000)) == 1  # t1 lapsed
        assert set(await r.zrange(keys.resv("r"), 0, -1)) == {"t2", "t3"}


async def test_lobby_and_presence_show_both_nodes_from_either(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(20):
        async with open_client(a.url, room="on-a", name="ann") as c1, \
                open_client(b.url, room="on-b", name="ben") as c2, \
                open_client(a.url, room="on-b", name="bea") as c3:
            for c in (c1, c2, c3):
                await c.wait_state()

            async def listed() -> bool:
                lobbies = [await http_json(n, "/rooms") for n in (a, b)]
                want = {("on-a", "a", 1), ("on-b", "b", 2)}
                return all(want <= {(e["room"], e["node"], e["clients"]) for e in lb} for lb in lobbies)
            await wait_until(listed, 5, "both rooms in both nodes' lobbies")
            entry = next(e for e in await http_json(b, "/rooms") if e["room"] == "on-a")
            assert entry["game"] == "arena" and entry["url"] == a.url and entry["max_players"] > 0

            async def present() -> bool:
                seen = [{(e["room"], e["name"], e["node"]) for e in await http_json(n, "/presence")} for n in (a, b)]
                want = {("on-a", "ann", "a"), ("on-b", "ben", "b"), ("on-b", "bea", "b")}
                return all(want <= s for s in seen)
            await wait_until(present, 5, "presence of all three players from both nodes")
            nodes = {n["node"]: n for n in await http_json(a, "/nodes")}
            assert {"a", "b"} <= set(nodes) and nodes["b"]["url"] == b.url
        # they left: presence forgets them
        async def gone() -> bool:
            return not any(e["name"] in ("ann", "ben", "bea") for e in await http_json(a, "/presence"))
        await wait_until(gone, 5, "presence to drop the players who left")


async def test_an_external_publish_reaches_players_on_both_nodes(cluster: LocalCluster) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    got: dict[str, list[Any]] = {"x": [], "y": [], "y2": []}
    with trio.fail_after(30):
        async with open_client(a.url, room="pub-a", name="x") as cx, \
                open_client(b.url, room="pub-b", name="y") as cy, \
                open_client(a.url, room="pub-b", name="y2") as cy2, trio.open_nursery() as n:
            for c, key in ((cx, "x"), (cy, "y"), (cy2, "y2")):
                await c.wait_state()
                n.start_soon(_events, c, got[key])
            assert await hosted(a) >= {"pub-a"} and await hosted(b) >= {"pub-b"}
            await trio.sleep(1.2)  # the nodes subscribe to their new rooms' channels at the next heartbeat

            # the CLI, from outside: every room of every node
            res = await trio.to_thread.run_sync(lambda: run_cli("publish", "--redis", cluster.redis_url, "--all",
                                                               '{"notice": "all"}'))
            assert res.returncode == 0 and "2 node(s)" in res.stdout, res.stderr
            # the Python API: one room, and one player wherever they are
            async with Publisher(cluster.redis_url) as pub:
                assert await pub.to_room("pub-b", {"notice": "b only"}) == 1
                assert await pub.to_player("x", {"notice": "for x"}) == 2  # every node hears it; x's delivers

            def notices() -> dict[str, list[Any]]:
                return {key: [d["notice"] for d in evs if isinstance(d, dict) and "notice" in d]
                        for key, evs in got.items()}

            async def arrived() -> bool:
                return all(len(v) >= 2 for v in notices().values())
            await wait_until(arrived, 5, "events to arrive")
            await trio.sleep(0.3)  # and nothing more
            n.cancel_scope.cancel()
    seen = notices()
    assert seen["x"] == ["all", "for x"]
    assert seen["y"] == ["all", "b only"] and seen["y2"] == ["all", "b only"]


async def test_no_two_nodes_ever_run_the_same_room(cluster: LocalCluster) -> None:
    """Many clients join the same rooms through both nodes at once: each room runs on exactly
    one node (the nodes' own stats), the one Redis names as its lease holder."""
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    rooms = [f"race{i}" for i in range(6)]
    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            ready = trio.Semaphore(0)
            done = trio.Event()

            async def player(url: str, room: str, name: str) -> None:
                async with open_client(url, room=room, name=name) as c:
                    await c.wait_state()
                    ready.release()
                    await done.wait()
            for room in rooms:
                for i, node in enumerate((a, b, a, b)):
                    n.start_soon(player, node.url, room, f"p{i}")
            for _ in range(4 * len(rooms)):
                await ready.acquire()
            for _ in range(3):
                on_a, on_b = await hosted(a), await hosted(b)
                assert not on_a & on_b, f"rooms on both nodes: {on_a & on_b}"
                assert set(rooms) <= on_a | on_b
                async with cluster.redis_client() as r:
                    for room in rooms:
                        owner = await r.get(k.Keys().lease(room))
                        assert room in (on_a if owner == "a" else on_b), f"{room}: lease {owner}, stats differ"
                lobby = {e["room"]: e for e in await http_json(a, "/rooms")}
                await trio.sleep(0.5)
            assert all(lobby[r]["clients"] == 4 for r in rooms), lobby
            done.set()


async def test_a_room_whose_lease_another_node_holds_stops_here_and_its_players_follow(
        cluster: LocalCluster) -> None:
    """What a node finds after a partition: its room's lease held by another node (set by hand
    here). At its next heartbeat it stops its copy and redirects the players, who resume their
    seats on the lease holder, which recreates the room from its last save."""
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    with trio.fail_after(30):
        async with open_client(a.url, room="split", name="s1", backoff_max=0.5) as c:
            await c.wait_state()
            cid = c.client_id
            await trio.sleep(1.0)  # a save (every 0.5 s in these tests)
            async with cluster.redis_client() as r:
                assert await r.get(k.Keys().lease("split")) == "a"
                await r.set(k.Keys().lease("split"), "b", px=k.LEASE_MS)

            async def moved() -> bool:
                return c.resumes >= 1 and c.host_url is not None and c.host_url.startswith(b.url)
            await wait_until(moved, 10, "the player to follow the room to b")
            assert c.client_id == cid
            assert "split" in await hosted(b) and "split" not in await hosted(a)
    assert "is now hosted by b: closing this copy" in cluster.logs()
