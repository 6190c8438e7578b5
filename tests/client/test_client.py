"""The Python client library (gamesync.client.connection) against a real server."""

from __future__ import annotations

import pytest
import trio

import gamesync.client.connection as connection
from gamesync.client.connection import ClientClosed, open_client
from gamesync.client.status import Status, StatusChanged
from gamesync.core import clientproto as cp
from gamesync.core.errors import ProtocolViolation, Timeout
from gamesync.core.protocol import ClientMessage, parse_client
from gamesync.games.arena import KIND_NPC, KIND_PLAYER
from gamesync.server.app import Server
from gs_testkit import RecordingGame, make_config, running_server, wait_for


async def _events_until(client, pred, timeout: float = 3.0) -> list:
    """Events from ``client.events()`` up to and including the first that matches ``pred``."""
    seen = []
    with trio.fail_after(timeout):
        async for ev in client.events():
            seen.append(ev)
            if pred(ev):
                return seen
    raise AssertionError(f"events ended without a match: {seen}")


def _drop(server, client_id: int, err) -> None:
    """Make the server throw a joined client out with ``err``."""
    for room in server.rooms.values():
        s = room.sessions.get(client_id)
        if s is not None:
            s.close(err)
            return
    raise AssertionError(f"client {client_id} is in no room")


async def test_open_client_joins_and_mirrors_the_arena():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", name="ann") as c:
                st = await c.wait_state()
                assert c.client_id is not None and c.connects == 1
                assert [f.name for f in c.schema] == ["x", "y", "heading", "hp", "ack", "kind", "owner"]
                assert st.tick >= 0
                alive = c.alive()
                kinds = c.column("kind")[alive]
                assert sorted(kinds.tolist()) == [KIND_NPC] * 50 + [KIND_PLAYER]
                xs, ys = c.column("x")[alive], c.column("y")[alive]
                assert ((xs >= 0) & (xs <= 1000) & (ys >= 0) & (ys <= 1000)).all()
                assert (c.column("hp")[alive] == 100).all()
                st2 = await c.wait_state(newer_than=st.tick)
                assert st2.tick > st.tick
                evs = await _events_until(c, lambda e: isinstance(e, cp.GameEvent))
    welcomes = [e for e in evs if isinstance(e, cp.Welcomed)]
    assert len(welcomes) == 1 and welcomes[0].welcome.client_id == c.client_id
    assert set(evs[-1].data) == {"you"}


async def test_send_input_returns_its_seq_and_input_ack_follows_with_the_move():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r") as c:
                evs = await _events_until(c, lambda e: isinstance(e, cp.GameEvent))
                me = evs[-1].data["you"]
                st = await c.wait_state()
                slot = int(((st.ids == me) & st.alive).nonzero()[0][0])
                x0 = float(c.column("x")[slot])
                dx = 1 if x0 < 500 else -1
                seqs = [await c.send_input([dx, 0]) for _ in range(4)]
                assert seqs == [1, 2, 3, 4]
                while c.input_ack < 4:
                    await c.wait_state(newer_than=c.state.tick)
                x1 = float(c.column("x")[slot])
    assert x1 - x0 == dx * 4 * round(200 / 30 * 64) / 64  # whole 1/64 steps: the arena moves on its grid


async def test_clients_get_player_joined_and_left_events():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", name="ann") as a:
                async with open_client(url, room="r", name="bob") as b:
                    ev = (await _events_until(a, lambda e: isinstance(e, cp.PlayerJoined)))[-1]
                    assert (ev.client_id, ev.name) == (b.client_id, "bob")
                    ev = (await _events_until(b, lambda e: isinstance(e, cp.PlayerJoined)))[-1]
                    assert (ev.client_id, ev.name) == (a.client_id, "ann")
                ev = (await _events_until(a, lambda e: isinstance(e, cp.PlayerLeft)))[-1]
                assert ev.client_id == b.client_id


async def test_events_yield_game_events_sent_by_the_room():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r") as c:
                await c.wait_state()
                room = server.rooms["r"]
                room.send(c.client_id, {"score": 3})
                room.broadcast(["all", 1])
                evs = await _events_until(c, lambda e: isinstance(e, cp.GameEvent) and e.data == ["all", 1])
    game_events = [e.data for e in evs if isinstance(e, cp.GameEvent)]
    assert game_events[-2:] == [{"score": 3}, ["all", 1]]


async def test_send_reliable_returns_true_once_the_server_acks():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            async with open_client(url, room="r") as c:
                assert await c.send_reliable({"buy": "sword"}, timeout=2.0) is True
                assert await c.send_reliable("again", timeout=2.0) is True
                await c.send_message("fire and forget")
                game = server.rooms["r"].game
                await wait_for(lambda: len(game.messages) == 3, 2, "the plain message")
    assert game.messages == [(c.client_id, {"buy": "sword"}), (c.client_id, "again"),
                             (c.client_id, "fire and forget")]


class _SendReturnsLate:
    """A live connection whose send_message, for a reliable message, returns only once the
    client's reader has taken that message's ack off the socket: a sender that resumes late
    (a busy loop, a slow socket) while the server acks at its next tick."""

    def __init__(self, ws, acks_read: list) -> None:
        self.ws, self.acks_read = ws, acks_read

    async def send_message(self, msg) -> None:
        n = len(self.acks_read)
        await self.ws.send_message(msg)
        ev = parse_client(msg)
        if isinstance(ev, ClientMessage) and ev.ack_id is not None:
            await wait_for(lambda: len(self.acks_read) > n, 3, "the ack to be read")


async def test_send_reliable_counts_an_ack_read_before_its_send_returned():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            async with open_client(url, room="r") as c:
                await c.wait_state()
                acks_read: list[int] = []
                handle = c._handle

                def recording_handle(ev, *rest):
                    if isinstance(ev, cp.MessageAcked):
                        acks_read.append(ev.ack_id)
                    handle(ev, *rest)

                c._handle = recording_handle
                c._ws = _SendReturnsLate(c._ws, acks_read)
                t0 = trio.current_time()
                assert await c.send_reliable("acked at once", timeout=2.0) is True
                assert trio.current_time() - t0 < 1.5, "it waited for its timeout"
                assert acks_read == [1]
                assert c._pending_acks == {}


async def test_send_reliable_leaves_no_waiter_behind_when_cancelled():
    with trio.fail_after(10):
        async with running_server(out_bytes_per_s=1, out_bytes_burst=100) as (server, url):
            async with open_client(url, room="r") as c:  # over the outbound budget: no ack reaches it
                with trio.move_on_after(0.2) as scope:
                    await c.send_reliable("cancelled", timeout=5.0)
                assert scope.cancelled_caught
                assert c._pending_acks == {}


async def test_send_reliable_returns_false_when_no_ack_comes_in_time():
    # over the outbound budget: after the first snapshot nothing reaches the client, acks included
    with trio.fail_after(10):
        async with running_server(out_bytes_per_s=1, out_bytes_burst=100) as (server, url):
            async with open_client(url, room="r") as c:
                t0 = trio.current_time()
                assert await c.send_reliable("lost?", timeout=0.3) is False
                assert 0.29 < trio.current_time() - t0 < 1.0
                assert server.stats()["rooms"][0]["messages_in"] == 1  # it did arrive
                assert c._pending_acks == {}


async def test_reliable_message_from_the_server_is_acked_by_the_client_library():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r") as c:
                await c.wait_state()
                h = server.rooms["r"].send_reliable(c.client_id, {"loot": 7}, timeout=2.0,
                                                    on_result=results.append)
                evs = await _events_until(c, lambda e: isinstance(e, cp.ReliableMessage))
                with trio.fail_after(1):
                    assert await h.wait() is True
    assert evs[-1].data == {"loot": 7} and evs[-1].ack_id == h.ack_id
    assert results == [True]


async def test_rtt_becomes_a_small_positive_number_after_pings():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r") as c:
                assert c.rtt is None
                await c.ping()
                await wait_for(lambda: c.rtt is not None, 3, "a pong")
                assert 0 < c.rtt < 0.5  # includes up to one tick of waiting on the server
                await trio.sleep(1.2)  # the client also pings once a second by itself
                assert 0 < c.rtt < 0.5


async def test_open_client_to_a_dead_port_raises_client_closed_quickly():
    async with running_server() as (server, url):
        pass  # the port is free again
    t0 = trio.current_time()
    with trio.fail_after(5):
        with pytest.raises(BaseException) as info:
            async with open_client(url, room="r"):
                pytest.fail("connected to a dead port")
    assert trio.current_time() - t0 < 1.0
    assert isinstance(info.value, ClientClosed), f"raised {info.value!r}, not ClientClosed"


async def test_refused_join_raises_client_closed_with_the_servers_error():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            with pytest.raises(BaseException) as info:
                async with open_client(url, room="r", game="chess"):
                    pytest.fail("joined a game the server does not run")
    assert isinstance(info.value, ClientClosed), f"raised {info.value!r}, not ClientClosed"
    assert "unknown_game" in str(info.value)


async def _serve_until(server: Server, stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with trio.open_nursery() as n:
        task_status.started(await n.start(server.serve))
        await stop.wait()
        n.cancel_scope.cancel()


async def test_reconnects_after_a_server_restart_and_state_flows_again():
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            stop1 = trio.Event()
            port = await n.start(_serve_until, Server(make_config()), stop1)
            url = f"ws://127.0.0.1:{port}/"
            async with open_client(url, room="r", backoff_initial=0.05, backoff_max=0.2) as c:
                await c.wait_state()
                first_proto = c.proto
                stop1.set()  # the server goes away; its port refuses connections for a while
                await wait_for(lambda: c._ws is None, 3, "the client to notice")
                await trio.sleep(0.3)
                assert c.connects == 1
                stop2 = trio.Event()
                await n.start(_serve_until, Server(make_config(port=port)), stop2)
                await wait_for(lambda: c.connects == 2, 5, "the client to reconnect")
                assert c.proto is not first_proto  # a fresh session: new mirror, seqs, ack ids
                st = await c.wait_state()
                st2 = await c.wait_state(newer_than=st.tick)
                assert st2.tick > st.tick
                assert await c.send_input([0, 0]) == 1
            stop2.set()


async def test_reconnects_with_a_new_client_id_after_the_server_drops_it():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", backoff_initial=0.05, backoff_max=0.2) as c:
                await c.wait_state()
                old_id = c.client_id
                _drop(server, old_id, Timeout("dropped by the test"))
                evs = await _events_until(c, lambda e: isinstance(e, cp.Welcomed) and e.welcome.client_id != old_id)
                assert c.connects == 2 and c.client_id != old_id
                assert any(isinstance(e, cp.ErrorReceived) and e.code == "timeout" for e in evs)
                await c.wait_state()
                assert server.stats()["clients"] == 1
                assert server.rooms["r"].client_ids == [c.client_id]


async def test_backoff_restarts_from_the_initial_delay_after_a_successful_connection(monkeypatch):
    """Each drop below follows a successful join, so every reconnect is a first retry."""
    bounds: list[float] = []

    class FakeRandom:
        @staticmethod
        def uniform(lo: float, hi: float) -> float:
            bounds.append(hi)
            return 0.0

    monkeypatch.setattr(connection, "random", FakeRandom)
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", backoff_initial=0.01, backoff_max=10.0) as c:
                for i in range(4):
                    await c.wait_state()
                    _drop(server, c.client_id, Timeout("dropped by the test"))
                    await wait_for(lambda i=i: c.connects == i + 2, 5, "a reconnect")
    assert len(bounds) == 4
    assert bounds == [pytest.approx(0.02)] * 4, f"retry delay bounds grew across good sessions: {bounds}"


async def test_fatal_error_stops_reconnecting_and_ends_events():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", backoff_initial=0.01) as c:
                await c.wait_state()
                _drop(server, c.client_id, ProtocolViolation("dropped by the test"))
                evs = [ev async for ev in c.events()]  # ends once the client is closed
                assert c.last_error is not None and c.last_error.code == "protocol"
                assert isinstance(evs[-2], cp.ErrorReceived)
                assert evs[-1] == StatusChanged(Status.OFFLINE, reason="gave up: protocol: dropped by the test")
                await trio.sleep(0.2)
                assert c.connects == 1 and server.connections == 0
                with pytest.raises(ClientClosed):
                    await c.send_input([0, 0])


async def test_leaving_closes_the_session_and_others_see_it_leave():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", name="ann") as a:
                async with open_client(url, room="r", name="bob") as b:
                    await b.wait_state()
                    bob = b.client_id
                ev = (await _events_until(a, lambda e: isinstance(e, cp.PlayerLeft)))[-1]
                assert ev.client_id == bob
                await wait_for(lambda: server.connections == 1, 2, "bob's connection to close")


async def test_leaving_open_client_is_quick():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r") as c:
                await c.wait_state()
                t0 = trio.current_time()
            took = trio.current_time() - t0
            await wait_for(lambda: server.connections == 0, 2, "the server to see the client go")
    assert took < 0.5, f"leaving open_client took {took:.2f} s"


async def test_leaving_open_client_while_the_server_goes_away_raises_nothing():
    """The server closing the connection just as the user leaves the block is a normal end."""
    with trio.fail_after(30):
        for _ in range(6):
            async with trio.open_nursery() as n:
                stop = trio.Event()
                port = await n.start(_serve_until, Server(make_config()), stop)
                async with open_client(f"ws://127.0.0.1:{port}/", room="r") as c:
                    await c.wait_state()
                    await c.send_input([0, 0])
                    stop.set()  # the server is cancelled: it closes with 1000 "bye"


async def test_wait_state_raises_client_closed_once_the_client_has_given_up():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with open_client(url, room="r", reconnect=False) as c:
                st = await c.wait_state()
                _drop(server, c.client_id, Timeout("dropped by the test"))
                with trio.move_on_after(2) as cs:
                    with pytest.raises(ClientClosed):
                        await c.wait_state(newer_than=st.tick + 1000)
                assert not cs.cancelled_caught, "wait_state() still waiting 2 s after the client closed for good"


def test_a_close_racing_a_lost_connection_ends_as_a_plain_cancel():
    """open_client cancels its connection task on exit; if the connection is going down at that
    moment, the lost-connection error must not escape around the cancellation."""
    from trio_websocket import ConnectionClosed

    cancelled = trio.Cancelled._create()
    group = BaseExceptionGroup("both", [cancelled, BaseExceptionGroup("inner", [ConnectionClosed(None)])])
    with pytest.raises(BaseExceptionGroup) as info:
        connection._outcome(group)
    assert [type(x) for x in info.value.exceptions] == [trio.Cancelled]
    with pytest.raises(BaseExceptionGroup) as info:  # anything unexpected still propagates whole
        connection._outcome(BaseExceptionGroup("both", [cancelled, KeyError("bug")]))
    assert len(info.value.exceptions) == 2
