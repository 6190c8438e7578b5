"""The server shell (gamesync.server.app): listening, joining, welcome, rooms, limits, shutdown."""

from __future__ import annotations

import socket

import pytest
import trio

from gamesync.core import protocol as p
from gamesync.games.arena import Arena
from gamesync.server.app import Server, serve
from gamesync.wsframe import masked_binary_frame
from gs_testkit import (HOST, RecordingGame, WireClient, make_config, pk, port_of, raw_client, running_server,
                        wait_for)

pytestmark = pytest.mark.usefixtures("wire_path")  # every test on both wire paths (tests/conftest.py)

ARENA_FIELDS = ["x", "y", "heading", "hp", "ack", "kind", "owner"]


async def test_join_gets_welcome_with_client_id_schema_and_tick_rate():
    with trio.fail_after(10):
        async with running_server(tick_rate=20.0) as (server, url):
            async with raw_client(url) as c:
                w = await c.join(room="lobby", name="ann")
    assert w.version == p.PROTOCOL_VERSION == 5
    assert isinstance(w.client_id, int) and w.client_id >= 1
    assert w.room == "lobby" and w.game == "arena"
    assert w.tick_rate == 20.0
    assert isinstance(w.tick, int) and w.tick >= 0
    assert w.history == server.config.history_ticks
    assert [f["name"] for f in w.schema] == ARENA_FIELDS
    by_name = {f["name"]: f for f in w.schema}
    assert by_name["x"] == {"name": "x", "kind": "float", "wire": "<u2", "lo": 0.0, "hi": 1000.0, "step": 1 / 64,
                            "predict": "linear"}
    assert by_name["heading"] == {"name": "heading", "kind": "angle", "wire": "<u2", "bits": 12, "predict": "hold"}
    assert by_name["hp"]["predict"] == "hold" and by_name["ack"]["predict"] == "linear"
    assert by_name["hp"]["kind"] == "int" and by_name["hp"]["wire"] == "<u1"
    assert by_name["ack"]["wire"] == "<u4" and by_name["kind"]["wire"] == "<u1"


async def test_snapshots_follow_the_welcome_one_per_tick_at_the_tick_rate():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                w = await c.join()
                got = await c.follow(1.5)
    ticks = [s.tick for _, s in got]
    assert ticks[0] >= w.tick
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # one per tick, none skipped
    t_first, t_last = got[0][0], got[-1][0]
    rate = (len(got) - 1) / (t_last - t_first)
    assert rate == pytest.approx(30.0, rel=0.1)
    gaps = [b - a for (a, _), (b, _) in zip(got, got[1:])]
    assert max(gaps) < 3 / 30


async def test_first_snapshot_is_full_and_acked_ones_are_deltas_against_held_ticks():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                got = [s for _, s in await c.follow(0.5)]
    first = got[0]
    assert (first.base, first.ref) == (p.NO_TICK, p.NO_TICK)
    assert first.input_ack == 0
    acked: set[int] = set()
    deltas = 0
    for s in got:
        if s.base != p.NO_TICK:
            deltas += 1
            assert s.base in acked  # only ever against a tick this client acknowledged
            assert s.ref < s.base
        acked.add(s.tick)
    assert deltas >= len(got) - 3


async def test_a_protocol_2_client_that_never_acks_gets_full_snapshots_every_tick():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join(version=2)
                got = [s for _, s in await c.follow(0.4, ack=False)]
    assert len(got) >= 8
    assert all(s.base == p.NO_TICK and s.ref == p.NO_TICK for s in got)


async def test_a_protocol_3_client_gets_each_snapshot_on_the_one_before_it_without_acking():
    """After the first (full) snapshot, every tick is built on the tick before it, with the
    one before that as reference: what was written to the stream, whatever the client acks."""
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                got = [s for _, s in await c.follow(0.5, ack=False)]
    assert len(got) >= 10
    assert got[0].base == p.NO_TICK
    for prev, s in zip(got, got[1:]):
        assert s.tick == prev.tick + 1 and s.base == prev.tick
        assert s.ref == (prev.tick - 1 if prev.base != p.NO_TICK else p.NO_TICK)  # the first delta: no older tick


async def test_a_protocol_2_join_is_welcomed_in_protocol_2_and_others_get_4001():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                assert (await c.join(version=2)).version == 2
            for v in (1, 6):
                async with raw_client(url) as c:
                    await c.send([1, v, "r", "old"])
                    closed = await c.closed()
                    assert closed.code == 4001 and "protocol 2 or 3 or 4 or 5" in closed.reason


async def test_messages_sent_with_the_upgrade_request_are_handled():
    """Handshake, join and an input in one write: wsproto keeps the bytes behind the request."""
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            port = port_of(url)
            wc = await WireClient.open(port, handshake=False)
            await wc.send_bytes(wc.upgrade_request(port) + masked_binary_frame(pk([1, p.PROTOCOL_VERSION, "r", "eager"]))
                                + masked_binary_frame(pk([3, 1, [0, 0]])))
            w = await wc.recv()
            assert isinstance(w, p.Welcome)
            while True:
                s = await wc.recv()
                assert isinstance(s, p.Snapshot)
                if s.input_ack == 1:
                    break
            await wc.send([3, 2, [0, 0]])
            while (await wc.recv()).input_ack < 2:
                pass
            await wc.aclose()
            assert server.rooms["r"].game.applied(w.client_id) == [1, 2]


async def test_client_ids_are_unique_across_rooms_and_reconnects():
    ids = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            for room in ["a", "b", "a", "c", "b"]:
                async with raw_client(url) as c:
                    ids.append((await c.join(room=room)).client_id)
    assert len(set(ids)) == len(ids)


async def test_join_without_game_gets_the_default_game_and_with_game_gets_that_one():
    games = {"arena": Arena, "rec": RecordingGame}
    with trio.fail_after(10):
        async with running_server(games=games) as (server, url):
            async with raw_client(url) as a, raw_client(url) as b, raw_client(url) as c:
                assert (await a.join(room="one")).game == "arena"
                assert (await b.join(room="two", game="rec")).game == "rec"
                assert (await c.join(room="two")).game == "rec"  # no game named: whatever the room runs
            assert {r["room"]: r["game"] for r in server.stats()["rooms"]} == {"one": "arena", "two": "rec"}


async def test_join_that_needs_a_room_over_max_rooms_gets_server_full_close():
    with trio.fail_after(10):
        async with running_server(max_rooms=1) as (server, url):
            async with raw_client(url) as a:
                await a.join(room="first")
                async with raw_client(url) as b:
                    await b.send([1, p.PROTOCOL_VERSION, "second", "x"])
                    closed = await b.closed()
                async with raw_client(url) as c:  # joining the existing room is fine
                    await c.join(room="first")
    assert closed.code == 4003
    assert closed.error is not None and closed.error.code == "server_full"
    assert "rooms" in closed.reason


class Duel(RecordingGame):
    max_players = 2


async def test_join_over_the_games_player_limit_gets_room_full_close():
    with trio.fail_after(10):
        async with running_server(games={"duel": Duel}, default_game="duel") as (server, url):
            async with raw_client(url) as a, raw_client(url) as b:
                await a.join()
                await b.join()
                async with raw_client(url) as c:  # even while b is still entering, its slot is taken
                    await c.send([1, p.PROTOCOL_VERSION, "r", "third"])
                    closed = await c.closed()
                await a.snapshot()
                await b.snapshot()
                assert server.stats()["rooms"][0]["clients"] == 2
    assert closed.code == 4002
    assert closed.error is not None and closed.error.code == "room_full"


async def test_stats_count_connections_clients_rooms_and_bytes():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            assert server.stats() == {"connections": 0, "clients": 0, "bytes_out": 0, "rooms": [],
                                      "deflate": {"frames": 0, "compressed": 0, "bytes_in": 0, "bytes_out": 0}}
            async with raw_client(url) as a, raw_client(url) as b:
                await a.join(room="x")
                await b.join(room="y")
                await a.snapshot()
                await b.snapshot()
                st = server.stats()
                assert st["connections"] == 2 and st["clients"] == 2
                assert st["bytes_out"] > 0
                rooms = {r["room"]: r for r in st["rooms"]}
                assert set(rooms) == {"x", "y"}
                assert rooms["x"]["entities"] == 51  # 50 NPCs + the player
                assert rooms["x"]["joins"] == 1 and rooms["x"]["ticks"] >= 1
            await wait_for(lambda: server.connections == 0, 3, "connections to close")


# ---- shutdown ----------------------------------------------------------------------------------


async def test_shutdown_closes_every_client_with_going_away_within_2s():
    """Joined clients in two rooms, a client that has upgraded but not joined, and a socket
    still in its handshake: all closed, the WebSocket ones with 1001, serve() returns."""
    server = Server(make_config(join_timeout_s=10.0, handshake_timeout_s=10.0, shutdown_timeout_s=1.5))
    closes: dict[str, tuple[float, object]] = {}
    with trio.fail_after(10):
        async with trio.open_nursery() as outer:
            serve_done = trio.Event()

            async def run_server(task_status=trio.TASK_STATUS_IGNORED):
                await server.serve(task_status=task_status)
                serve_done.set()

            port = await outer.start(run_server)
            url = f"ws://{HOST}:{port}/"
            t0 = None

            async def joined(name: str, room: str, task_status=trio.TASK_STATUS_IGNORED):
                async with raw_client(url) as c:
                    await c.join(room=room, name=name)
                    await c.snapshot()
                    task_status.started()
                    closed = await c.closed(timeout=5)
                    closes[name] = (trio.current_time() - t0, closed)

            async def unjoined(task_status=trio.TASK_STATUS_IGNORED):
                async with raw_client(url) as c:
                    task_status.started()
                    closed = await c.closed(timeout=5)
                    closes["unjoined"] = (trio.current_time() - t0, closed)

            async def handshaking(task_status=trio.TASK_STATUS_IGNORED):
                wc = await WireClient.open(port, handshake=False)
                task_status.started()
                closed = await wc.closed(timeout=5)
                closes["handshaking"] = (trio.current_time() - t0, closed)
                await wc.aclose()

            async with trio.open_nursery() as n:
                for i in range(4):
                    await n.start(joined, f"p{i}", "ab"[i % 2])
                await n.start(unjoined)
                await n.start(handshaking)
                await wait_for(lambda: server.connections == 6, 3, "six connections")
                t0 = trio.current_time()
                await server.shutdown()
                shutdown_took = trio.current_time() - t0
            with trio.fail_after(1):
                await serve_done.wait()
    assert shutdown_took < 2.0
    for name in ["p0", "p1", "p2", "p3", "unjoined"]:
        took, closed = closes[name]
        assert closed.code == 1001, f"{name} closed with {closed.code} {closed.reason!r}"
        assert closed.error == p.ServerError("going_away", "server shutting down")
        assert took < 2.0, f"{name} closed after {took:.2f} s"
    for name in ["p0", "p1", "p2", "p3"]:
        assert closes[name][0] < 1.0  # joined clients are told at once, not after the grace
    took, closed = closes["handshaking"]
    assert closed.code is None and took < 2.5  # no WebSocket yet: just the socket closed
    with pytest.raises(OSError):  # the listener is gone
        s = socket.create_connection((HOST, port), timeout=1)
        s.close()


async def test_shutdown_of_a_server_without_clients_returns_at_once():
    server = Server(make_config())
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            await n.start(server.serve)
            t0 = trio.current_time()
            await server.shutdown()
            assert trio.current_time() - t0 < 1.0  # no grace period to wait out
        await server.shutdown()  # a second call is harmless


async def test_server_restarts_on_the_same_port():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.snapshot()
            port = port_of(url)
        async with running_server(port=port) as (server2, url2):
            assert url2 == url
            async with raw_client(url2) as c:
                assert (await c.join()).client_id == 1
                await c.snapshot()


async def test_serve_function_reports_the_port_and_runs_until_cancelled():
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            port = await n.start(serve, make_config())
            async with raw_client(f"ws://{HOST}:{port}/") as c:
                await c.join()
                await c.snapshot()
            n.cancel_scope.cancel()
