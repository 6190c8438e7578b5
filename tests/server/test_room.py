"""Rooms (gamesync.server.room): players seeing each other, isolation between rooms, events
and reliable messages through the RoomAPI, and teardown of empty rooms."""

from __future__ import annotations

import contextlib

import pytest
import trio

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.games.arena import KIND_NPC, KIND_PLAYER
from gamesync.core.plan import CAP_WAIT_TICKS
from typing import Any

from gs_testkit import (STALL_S, RecordingGame, bystander, period, pk, player, raw_client, running_server, wait_for,
                        watched)

pytestmark = pytest.mark.usefixtures("wire_path")  # every test on both wire paths (tests/conftest.py)


def _joined(pl) -> list[tuple[int, str]]:
    return [(e.client_id, e.name) for e in pl.events if isinstance(e, cp.PlayerJoined)]


def _left(pl) -> list[int]:
    return [e.client_id for e in pl.events if isinstance(e, cp.PlayerLeft)]


async def test_two_clients_see_each_other_and_each_others_join_and_leave():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url, name="ann") as a:
                assert _joined(a) == []  # never a joined event for itself
                assert sorted(a.kinds()) == [KIND_NPC] * 50 + [KIND_PLAYER]
                async with player(url, name="bob") as b:
                    await a.until(lambda: (b.client_id, "bob") in _joined(a))
                    assert _joined(b) == [(a.client_id, "ann")]  # the newcomer learns who is here
                    await a.until(lambda: a.state.tick >= b.state.tick)
                    await b.until(lambda: b.state.tick >= a.state.tick)
                    for pl in (a, b):
                        assert pl.kinds().count(KIND_PLAYER) == 2
                        pl.entity(a.me())  # each mirror holds both player entities
                        pl.entity(b.me())
                    assert a.me() != b.me()
                await a.until(lambda: b.client_id in _left(a))
                await a.next_state()
                assert a.kinds().count(KIND_PLAYER) == 1
    assert _joined(a) == [(b.client_id, "bob")]


async def test_a_dropped_connection_reaches_others_as_left():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url, name="ann") as a:
                async with raw_client(url) as b:
                    wb = await b.join(name="bob")
                    await a.until(lambda: (wb.client_id, "bob") in _joined(a))
                    await b.send(b"\xc1")  # thrown out for a protocol error
                    await b.closed()
                await a.until(lambda: wb.client_id in _left(a))


async def test_one_players_inputs_move_it_in_the_other_players_mirror():
    with trio.fail_after(10):
        async with running_server(game_options={"npcs": 0}) as (server, url):
            async with player(url, name="ann") as a, player(url, name="bob") as b:
                await b.until(lambda: b.kinds().count(KIND_PLAYER) == 2)
                x0 = b.entity(a.me())["x"]
                dx = 1 if x0 < 500 else -1
                for seq in range(1, 4):
                    await a.send_input(seq, [dx, 0])
                await b.until(lambda: b.entity(a.me())["ack"] == 3)
                assert b.entity(a.me())["x"] - x0 == pytest.approx(dx * 3 * 200 / 30, abs=1 / 64)


async def test_rooms_are_isolated_inputs_in_one_never_move_anything_in_the_other():
    with trio.fail_after(10):
        async with running_server(game_options={"npcs": 0}) as (server, url):
            async with player(url, room="a", name="ann") as a, player(url, room="b", name="bob") as b:
                still = b.state
                for seq in range(1, 31):
                    await a.send_input(seq, [1, 1])
                await a.until(lambda: a.input_ack == 30)
                for _ in range(5):
                    st = await b.next_state()
                    assert st.same_as(still), "room b's world changed while only room a had inputs"
                assert b.kinds() == [KIND_PLAYER] and a.kinds() == [KIND_PLAYER]
                assert _joined(a) == [] and _joined(b) == []
                rooms = {r["room"]: r for r in server.stats()["rooms"]}
                assert rooms["a"]["clients"] == 1 and rooms["b"]["clients"] == 1
                assert rooms["b"]["inputs_in"] == 0 and rooms["a"]["inputs_in"] == 30


async def test_flooding_and_malformed_clients_in_one_room_do_not_disturb_another():
    with trio.fail_after(20):
        async with running_server(in_msgs_per_s=30, in_msgs_burst=40) as (server, url):
            async with bystander(server, url, room="b"):
                async with raw_client(url) as flood, raw_client(url) as bad, raw_client(url) as big:
                    for c in (flood, bad, big):
                        await c.join(room="a")
                    for seq in range(1, 101):
                        await flood.send([3, seq, [1, 0]])
                    await bad.send(b"\x93\x01")
                    await big.send(pk([6, b"x" * 20000]))
                    codes = sorted([(await c.closed()).code for c in (flood, bad, big)])
                assert codes == [1002, 1008, 1009]
                assert server.rooms["b"].stats.leaves == 0


async def test_room_send_broadcast_and_broadcast_all_rooms_reach_the_right_clients():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url, room="x", name="a") as a, player(url, room="x", name="b") as b, \
                    player(url, room="y", name="c") as c:
                await a.until(lambda: len(_joined(a)) == 1)
                rx, ry = server.rooms["x"], server.rooms["y"]
                rx.send(a.client_id, "to-a")
                rx.broadcast("to-x")
                rx.broadcast("to-x-but-a", exclude=a.client_id)
                ry.broadcast_all_rooms("to-all")
                rx.send(99999, "to-nobody")  # an unknown client id is ignored

                def got(pl):
                    return [e.data for e in pl.events if isinstance(e, cp.GameEvent) and isinstance(e.data, str)]

                for pl in (a, b, c):
                    await pl.until(lambda pl=pl: "to-all" in got(pl))
    assert got(a) == ["to-a", "to-x", "to-all"]
    assert got(b) == ["to-x", "to-x-but-a", "to-all"]
    assert got(c) == ["to-all"]


# ---- reliable messages -------------------------------------------------------------------------


async def test_reliable_message_to_a_client_is_acked_and_resolves_true():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url) as pl:
                room = server.rooms["r"]
                h = room.send_reliable(pl.client_id, {"quest": 1}, timeout=3.0, on_result=results.append)
                assert h.result is None
                await pl.until(lambda: any(isinstance(e, cp.ReliableMessage) for e in pl.events))
                with trio.fail_after(1):
                    assert await h.wait() is True
                msg = [e for e in pl.events if isinstance(e, cp.ReliableMessage)][0]
    assert msg.data == {"quest": 1} and msg.ack_id == h.ack_id
    assert results == [True]
    assert not room._reliable


async def test_reliable_message_that_is_never_acked_times_out_false():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:  # reads but never sends message_ack
                w = await c.join()
                await c.snapshot()
                room = server.rooms["r"]
                t0 = trio.current_time()
                h = room.send_reliable(w.client_id, "ack me", timeout=0.5, on_result=results.append)
                seen = []
                while h.result is None:
                    seen += [e for e in (await c.snapshot()).events if e[0] == p.Ev.RELIABLE]
                took = trio.current_time() - t0
    assert seen == [[1, "ack me", h.ack_id]]
    assert results == [False] and h.result is False
    assert 0.45 < took < 0.5 + STALL_S  # at its timeout, not at some later sweep


async def test_reliable_message_resolves_false_when_the_client_leaves():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                w = await c.join()
                await c.snapshot()
                room = server.rooms["r"]
                h = room.send_reliable(w.client_id, "bye?", timeout=10.0, on_result=results.append)
                await c.send([11])
                await c.closed()
            with trio.fail_after(1):
                assert await h.wait() is False
    assert results == [False]


async def test_reliable_message_to_an_unknown_client_resolves_false_at_once():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.snapshot()
                h = server.rooms["r"].send_reliable(424242, "?", on_result=results.append)
    assert h.result is False and results == [False]


async def test_reliable_ack_from_another_client_neither_resolves_nor_cancels_it():
    results = []
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as target, raw_client(url) as other:
                wt = await target.join(name="target")
                await other.join(name="other")
                await target.snapshot()
                await other.snapshot()
                room = server.rooms["r"]
                h = room.send_reliable(wt.client_id, "secret", timeout=2.0, on_result=results.append)
                await other.send([7, h.ack_id])  # ack ids are small integers: easy to guess
                await other.follow(0.2)
                assert h.result is None, "another client's ack resolved the message"
                ack_id = None
                while ack_id is None:
                    for e in (await target.snapshot()).events:
                        if e[0] == p.Ev.RELIABLE:
                            ack_id = e[2]
                await target.send([7, ack_id])
                with trio.fail_after(1):
                    assert await h.wait() is True
    assert results == [True]


async def test_game_can_send_reliable_from_its_hooks():
    class Greeter(RecordingGame):
        def on_join(self, client_id, name):
            super().on_join(client_id, name)
            self.handle = self.room.send_reliable(client_id, f"welcome {name}", timeout=2.0)

    with trio.fail_after(10):
        async with running_server(games={"g": Greeter}, default_game="g") as (server, url):
            async with player(url, name="zoe") as pl:
                await pl.until(lambda: any(isinstance(e, cp.ReliableMessage) for e in pl.events))
                game = server.rooms["r"].game
                with trio.fail_after(1):
                    assert await game.handle.wait() is True


# ---- lifetime ----------------------------------------------------------------------------------


async def test_empty_room_is_torn_down_after_linger_and_a_new_join_starts_fresh():
    with trio.fail_after(10):
        async with running_server(room_linger_s=0.3) as (server, url):
            async with raw_client(url) as c:
                await c.join(room="brief")
                for _ in range(15):
                    await c.snapshot()
            old = server.rooms["brief"]
            assert old.tick >= 14
            await wait_for(lambda: "brief" not in server.rooms, 2, "the empty room to go")
            assert old.closed
            async with raw_client(url) as c:
                w = await c.join(room="brief")
                assert w.tick < 3  # a fresh room counts from 0 again
            assert server.rooms["brief"] is not old


async def test_room_with_a_client_is_never_torn_down():
    with trio.fail_after(10):
        async with running_server(room_linger_s=0.1) as (server, url):
            async with raw_client(url) as c:
                await c.join(room="kept")
                got = await c.follow(0.6)
                assert "kept" in server.rooms
                ticks = [s.tick for _, s in got]
                assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))


# ---- a failing game hurts only the client (or the room) it concerns ------------------------


class FragileGame(RecordingGame):
    """Raises on the message "boom" and, once armed by "arm-step", in step()."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.armed = False

    def on_message(self, client_id: int, data: Any) -> None:
        if data == "boom":
            raise RuntimeError("game bug on a message")
        if data == "arm-step":
            self.armed = True

    def step(self, tick: int, inputs: dict[int, list[Any]], dt: float) -> None:
        if self.armed:
            raise RuntimeError("game bug in step")


async def test_game_error_on_a_message_closes_that_client_with_1011_and_the_room_carries_on():
    with trio.fail_after(15):
        async with running_server(games={"fragile": FragileGame}, default_game="fragile") as (server, url):
            async with bystander(server, url, room="r"):
                async with raw_client(url) as bad:
                    await bad.join(room="r", name="bad")
                    await bad.send([6, "boom"])
                    closed = await bad.closed()
            assert closed.code == 1011
            assert closed.error is not None and closed.error.code == "internal"


async def test_game_error_in_step_closes_only_that_room_and_other_rooms_keep_ticking():
    with trio.fail_after(15):
        async with running_server(games={"fragile": FragileGame}, default_game="fragile") as (server, url):
            async with watched(url, room="healthy") as other:
                async with raw_client(url) as victim:
                    await victim.join(room="doomed", name="victim")
                    await victim.send([6, "arm-step"])
                    closed = await victim.closed()
                assert closed.code == 1011
                await wait_for(lambda: "doomed" not in server.rooms, 3.0, "the failed room to be gone")
                mark = other.mark()
                await trio.sleep(10 * period(server))
                assert other.count(mark) >= 8, "the other room stopped ticking"
                assert other.max_gap(mark) <= STALL_S
                assert other.closed is None


class BrokenSetupGame(RecordingGame):
    def setup(self, room: Any) -> None:
        raise RuntimeError("game bug in setup")


async def test_game_that_fails_to_start_refuses_that_join_with_1011_and_the_server_carries_on():
    with trio.fail_after(15):
        games = {"broken": BrokenSetupGame, "rec": RecordingGame}
        async with running_server(games=games, default_game="rec") as (server, url):
            async with watched(url, room="fine") as other:
                async with raw_client(url) as c:
                    await c.send([1, p.PROTOCOL_VERSION, "b", "victim", "broken"])
                    closed = await c.closed()
                assert closed.code == 1011 and closed.error is not None and closed.error.code == "internal"
                assert "b" not in server.rooms
                mark = other.mark()
                await trio.sleep(6 * period(server))
                assert other.count(mark) >= 4 and other.closed is None


async def test_payloads_built_per_tick_stay_bounded_whatever_baselines_clients_ack():
    """Protocol 2 clients choose baselines through their acks; past max_payloads_per_tick a client rides
    a payload it can decode, or waits at most CAP_WAIT_TICKS ticks for its turn and then gets
    the shared full snapshot: the room builds at most cap + 1 payloads a tick, and every
    client still gets at least one snapshot every CAP_WAIT_TICKS + 1 ticks."""
    cap, n_clients = 2, 6
    with trio.fail_after(20):
        async with running_server(max_payloads_per_tick=cap) as (server, url):
            counts: dict[int, int] = {}

            async def laggard(lag: int, task_status=trio.TASK_STATUS_IGNORED):
                async with raw_client(url) as c:
                    await c.join(room="r", name=f"lag{lag}", version=2)
                    seen: list[int] = []
                    task_status.started()
                    while True:
                        s = await c.snapshot()
                        seen.append(s.tick)
                        counts[lag] = counts.get(lag, 0) + 1
                        if len(seen) > lag:
                            await c.send([5, seen[-1 - lag]])  # each acks a different, older tick

            async with trio.open_nursery() as n:
                for lag in range(n_clients):
                    await n.start(laggard, lag)
                await trio.sleep(10 * period(server))
                room = server.rooms["r"]
                b0, t0 = room.stats.payloads_built, room.tick_stats.ticks
                counts.clear()
                await trio.sleep(30 * period(server))
                built, ticks = room.stats.payloads_built - b0, room.tick_stats.ticks - t0
                n.cancel_scope.cancel()
            assert built <= (cap + 1) * ticks
            assert room.plan_counts.cap_waits > 0  # the cap was met, and some waited for their turn
            least = ticks // (CAP_WAIT_TICKS + 1) - 2
            assert all(counts.get(lag, 0) >= least for lag in range(n_clients)), (least, counts)


async def test_clients_that_keep_up_get_the_same_payload_bytes_built_once_per_tick():
    """Five clients acking every snapshot: for each tick, the ones sent against the same
    (baseline, reference) carry byte-identical payloads, and the room built exactly one
    payload per distinct pair that tick, not one per client; once they all keep up, that is
    about one a tick."""
    n_clients, warmup = 5, 10
    with trio.fail_after(20):
        async with running_server() as (server, url):
            async with contextlib.AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(raw_client(url)) for _ in range(n_clients)]
                for i, c in enumerate(clients):
                    await c.join(name=f"c{i}")
                room = server.rooms["r"]
                built: dict[int, int] = {}  # tick -> payloads the room built for it
                encode = room._encode

                def counting_encode(state):
                    before = room.stats.payloads_built
                    plan = encode(state)
                    built[state.tick] = room.stats.payloads_built - before
                    return plan

                room._encode = counting_encode
                got: dict[int, dict[int, p.Snapshot]] = {}

                async def follow(i: int, c) -> None:
                    got[i] = {s.tick: s for _, s in await c.follow(2.0)}

                async with trio.open_nursery() as n:
                    for i, c in enumerate(clients):
                        n.start_soon(follow, i, c)
    common = sorted(set.intersection(*(set(g) & set(built) for g in got.values())))
    assert len(common) >= 30, f"only {len(common)} ticks reached all {n_clients} clients"
    for tick in common:
        by_key: dict[tuple[int, int], set[tuple[int, bytes]]] = {}
        for g in got.values():
            s = g[tick]
            by_key.setdefault((s.base, s.ref), set()).add((s.flags, s.payload))
        assert all(len(v) == 1 for v in by_key.values()), f"tick {tick}: different payloads for one baseline"
        assert built[tick] == len(by_key), (
            f"tick {tick}: {built[tick]} payloads built for {len(by_key)} distinct baselines {sorted(by_key)}")
    steady = common[warmup:]
    per_tick = [built[t] for t in steady]
    assert sum(per_tick) <= 1.5 * len(steady), f"payloads built per tick: {per_tick}"
    assert sum(k == 1 for k in per_tick) >= 0.75 * len(steady), f"payloads built per tick: {per_tick}"
    assert all(g[t].base != p.NO_TICK for g in got.values() for t in steady)  # deltas, all of them
