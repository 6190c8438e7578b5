"""Three nodes and one redis-server: kill -9 of a node moves its rooms within 5 s and its
players resume their seats on the new host from the room's last save; SIGTERM hands a node's
rooms over and its players follow; at no time do two nodes run the same room."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest
import trio
from cluster_kit import LocalCluster, hosted, http_json, wait_until

from gamesync.client.connection import Client, open_client
from gamesync.cluster import keys as k

#: the nodes save every 0.5 s (cluster_kit.NODE_ARGS; written within 0.25 s) at 30 Hz: a restored room is at most
#: this many ticks behind the last one its players saw, plus the ticks of the failover itself
SAVE_TICKS = 30


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = LocalCluster(["a", "b", "c"])
    yield c
    c.close()


async def _owner(cluster: LocalCluster, room: str) -> str | None:
    async with cluster.redis_client() as r:
        return await r.get(k.Keys().lease(room))


async def _never_twice(cluster: LocalCluster, stop: trio.Event, seen: list[set[str]]) -> None:
    """Sample every live node's rooms until ``stop``; fail if a room is on two at once."""
    while not stop.is_set():
        rooms: dict[str, str] = {}
        for name, node in list(cluster.nodes.items()):
            if node.proc.poll() is not None:
                continue
            try:
                mine = await hosted(node)
            except OSError:
                continue  # stopping
            for room in mine:
                assert room not in rooms, f"room {room} runs on {rooms[room]} and {name}"
                rooms[room] = name
        seen.append(set(rooms))
        await trio.sleep(0.1)


async def _moving(c: Client, before_id: int) -> None:
    await wait_until(lambda: _true(c.resumes >= 1 and c.client_id == before_id and c.state is not None), 15,
                     f"{c.name} to resume its seat")


async def _true(v: bool) -> bool:
    return v


async def test_kill_9_moves_the_rooms_within_5_s_and_players_resume_from_the_last_save(
        cluster: LocalCluster) -> None:
    a, b, c = cluster.nodes["a"], cluster.nodes["b"], cluster.nodes["c"]
    with trio.fail_after(60):
        # p1 creates the room on a; p2 comes in through b and is sent to a; both retry quickly, for
        # as long as the failover takes (8 tries of at most 0.5 s could end before it)
        async with open_client([a.url, b.url], room="fo", name="p1", backoff_max=0.5, max_attempts=None) as p1, \
                open_client([b.url, c.url], room="fo", name="p2", backoff_max=0.5, max_attempts=None) as p2, \
                open_client(a.url, room="fo2", name="p3") as p3, trio.open_nursery() as n:
            for cl in (p1, p2, p3):
                await cl.wait_state()
            assert await _owner(cluster, "fo") == "a" and p2.redirects == 1
            ids = (p1.client_id, p2.client_id)
            for _ in range(30):  # move, so that the saved world has p1 somewhere of its own
                await p1.send_input([1, 0])
                await trio.sleep(1 / 30)
            await trio.sleep(1.0)  # a save after those moves
            tick_before = (await p1.wait_state()).tick
            stop, seen = trio.Event(), []
            n.start_soon(_never_twice, cluster, stop, seen)

            t0 = trio.current_time()
            cluster.kill("a")

            async def moved() -> bool:
                owner = await _owner(cluster, "fo")
                return owner in ("b", "c") and "fo" in await hosted(cluster.nodes[owner])
            took = await wait_until(moved, 8, "room fo on a live node")
            assert took < 5.0, f"room fo took {took:.1f} s to move"
            new_host = await _owner(cluster, "fo")
            print(f"failover: room fo hosted by {new_host} {took:.2f} s after kill -9")

            await _moving(p1, ids[0])
            await _moving(p2, ids[1])
            resumed_at = trio.current_time() - t0
            welcome = p1.proto.welcome if p1.proto else None
            assert welcome is not None and welcome.resumed and welcome.client_id == ids[0]
            # the room went on from its last save, not from scratch
            assert welcome.tick >= tick_before - SAVE_TICKS, (welcome.tick, tick_before)
            assert p1.host_url is not None and p1.host_url.startswith(cluster.nodes[new_host].url)
            # both players still see each other and the room goes on
            st = await p2.wait_state(newer_than=welcome.tick + 5)
            assert st.alive.sum() >= 50 + 2
            # p3's room "fo2" was a's too: taken over as well (p3 had only a's URL, so it
            # cannot follow, but the room is back for whoever joins)
            await wait_until(lambda: _owner_in(cluster, "fo2", ("b", "c")), 5, "room fo2 on a live node")
            stop.set()
            print(f"players resumed {resumed_at:.2f} s after kill -9")
            assert len(seen) > 10
            n.cancel_scope.cancel()
    # the dead node is forgotten: no rooms, no presence
    nodes = {x["node"] for x in await http_json(b, "/nodes")}
    assert nodes == {"b", "c"}
    assert all(e["node"] != "a" for e in await http_json(c, "/presence"))


async def test_bots_resume_their_seats_after_their_room_s_host_is_killed(cluster: LocalCluster) -> None:
    """``gamesync bots --reconnect`` through a node that does not host the room: redirected
    to the host; when the host is killed, back through the same node to the new host."""
    import json

    d = cluster.start("d")
    entry = cluster.nodes["c"] if "c" in cluster.nodes else cluster.nodes["b"]
    with trio.fail_after(60):
        async with open_client(d.url, room="fb", name="anchor") as anchor:  # the room goes to d
            await anchor.wait_state()
            assert await _owner(cluster, "fb") == "d"
            bots = await trio.lowlevel.open_process(
                [sys.executable, "-m", "gamesync", "bots", entry.url, "--room", "fb", "--count", "5",
                 "--duration", "9", "--warmup", "0", "--ramp", "0.3", "--reconnect", "--json", "--no-progress"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            await wait_until(lambda: _players(cluster, d, "fb", 6), 10, "the bots in room fb on d")
            await trio.sleep(1.0)  # a save with the bots' seats in it
            cluster.kill("d")
        await wait_until(lambda: _owner_in(cluster, "fb", tuple(cluster.nodes)), 8, "room fb on a live node")
        assert bots.stdout is not None
        out = b""
        async for chunk in bots.stdout:
            out += chunk
        await bots.wait()
    res = json.loads(out.decode().strip().splitlines()[-1])
    assert res["redirects"] >= 5 and res["resumes"] == 5, res  # every bot got its seat back
    assert res["all_connected"] and res["disconnected"] == 0, res
    lobby = {e["room"]: e for e in await http_json(entry, "/rooms")}
    assert lobby.get("fb", {}).get("node") in cluster.nodes


async def _players(cluster: LocalCluster, node: Any, room: str, n: int) -> bool:
    return any(r["room"] == room and r["clients"] >= n for r in (await http_json(node, "/stats"))["rooms"])


async def _owner_in(cluster: LocalCluster, room: str, nodes: tuple[str, ...]) -> bool:
    return await _owner(cluster, room) in nodes


async def test_sigterm_hands_the_rooms_over_and_players_follow(cluster: LocalCluster) -> None:
    b = cluster.nodes["b"]
    with trio.fail_after(60):
        async with open_client(b.url, room="dr", name="q1", backoff_max=0.5) as q1, \
                open_client(b.url, room="dr", name="q2", backoff_max=0.5) as q2:
            for cl in (q1, q2):
                await cl.wait_state()
            # b had no room called dr, so joining it there places it there: anything else is a bug
            assert await _owner(cluster, "dr") == "b", "room dr was not placed on b, where its players joined"
            ids = (q1.client_id, q2.client_id)
            tick_before = (await q1.wait_state()).tick
            node = cluster.nodes.pop("b")
            node.proc.send_signal(signal.SIGTERM)
            for cl, cid in zip((q1, q2), ids):
                await _moving(cl, cid)
            assert q1.redirects >= 1 and q1.host_url is not None and q1.host_url.startswith(cluster.nodes["c"].url)
            assert await _owner(cluster, "dr") == "c"
            welcome = q1.proto.welcome if q1.proto else None
            assert welcome is not None and welcome.tick >= tick_before  # handed over with its state
            code = await trio.to_thread.run_sync(lambda: node.proc.wait(10))
            assert code == 0
    assert "handed over to c with its state" in cluster.logs()
