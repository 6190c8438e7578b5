"""What a game can reach across nodes: ``room.publish`` (a room on another node),
``room.send_to_player`` (a player wherever they are) and ``broadcast_all_rooms`` (every
room of every node). Two servers in this process, a real redis-server, real WebSockets."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import trio
from cluster_kit import wait_until
from gs_testkit import make_config

from gamesync.client.connection import open_client
from gamesync.cluster.local import start_redis, stop
from gamesync.cluster.node import ClusterNode
from gamesync.core import clientproto as cp
from gamesync.core.schema import Int, Schema
from gamesync.game import Game
from gamesync.server.app import Server


class Relay(Game):
    """Forwards what a client asks for: {"room": R, ...}, {"player": P, ...} or {"all": ...}."""

    schema = Schema([Int("v", "u1")])

    def on_message(self, client_id: int, data: Any) -> None:
        if "room" in data:
            self.room.publish(data["room"], {"from": self.room.name, "say": data["say"]})  # type: ignore[attr-defined]
        elif "player" in data:
            self.room.send_to_player(data["player"], {"from": self.room.name, "say": data["say"]})  # type: ignore[attr-defined]
        else:
            self.room.broadcast_all_rooms({"from": self.room.name, "say": data["say"]})


@pytest.fixture(scope="module")
def redis_url() -> Any:
    proc, port = start_redis()
    yield f"redis://127.0.0.1:{port}"
    stop(proc, signal.SIGKILL)


async def _serve(nursery: trio.Nursery, redis_url: str, node: str) -> tuple[Server, str]:
    server = Server(make_config(redis_url=redis_url, node_id=node, games={"relay": Relay}, default_game="relay"))
    port = await nursery.start(server.serve)
    return server, f"ws://127.0.0.1:{port}/"


async def _said(client: Any, into: list[Any]) -> None:
    async for ev in client.events():
        if isinstance(ev, cp.GameEvent) and isinstance(ev.data, dict) and "say" in ev.data:
            into.append((ev.data["from"], ev.data["say"]))


async def test_a_game_reaches_rooms_and_players_on_other_nodes(redis_url: str) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            s1, url1 = await _serve(n, redis_url, "one")
            s2, url2 = await _serve(n, redis_url, "two")
            got: dict[str, list[Any]] = {"ann": [], "bob": [], "cat": []}
            async with open_client(url1, room="r1", name="ann") as ann, \
                    open_client(url2, room="r2", name="bob") as bob, \
                    open_client(url2, room="r3", name="cat") as cat, trio.open_nursery() as ev:
                for c in (ann, bob, cat):
                    await c.wait_state()
                    ev.start_soon(_said, c, got[c.name])
                assert set(s1.rooms) == {"r1"} and set(s2.rooms) == {"r2", "r3"}
                await wait_until(lambda: _subscribed(s2, 2), 5, "node two to follow its rooms' channels")

                await ann.send_message({"room": "r2", "say": "to r2"})  # a room on the other node
                await ann.send_message({"player": "cat", "say": "to cat"})  # a player on the other node
                await bob.send_message({"all": 1, "say": "to all"})  # every room of every node

                async def arrived() -> bool:
                    return len(got["ann"]) >= 1 and len(got["bob"]) >= 2 and len(got["cat"]) >= 2
                await wait_until(arrived, 5, f"the events (got {got})")
                await trio.sleep(0.3)
                ev.cancel_scope.cancel()
            n.cancel_scope.cancel()
    # each exactly once (bob's broadcast reaches its own node's rooms directly, not again via Redis)
    assert got["ann"] == [("r2", "to all")]
    assert sorted(got["bob"]) == [("r1", "to r2"), ("r2", "to all")]
    assert sorted(got["cat"]) == [("r1", "to cat"), ("r2", "to all")]


async def _subscribed(server: Server, n: int) -> bool:
    node = server.cluster
    assert isinstance(node, ClusterNode)
    return len(node.events.subscribed) >= n

