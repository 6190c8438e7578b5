"""One client's session (gamesync.server.session and its room dispatch): inputs, acks,
messages, pings, leaving, and the outbound budget."""

from __future__ import annotations

import math

import pytest
import trio

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.games.arena import Arena
from gs_testkit import (RecordingGame, WireClient, pk, player, port_of, raw_client, running_server, wait_for)

pytestmark = pytest.mark.usefixtures("wire_path")  # every test on both wire paths (tests/conftest.py)

STEP = 200.0 / 30.0  # arena: one input = one tick of movement at 200 units/s, 30 Hz
Q = 1 / 64  # arena position quantum
# the arena moves by whole quanta per axis: the nearest to STEP, and to STEP / sqrt(2) diagonally
STEP_Q = round(STEP / Q) * Q
DIAG_Q = round(STEP / math.sqrt(2) / Q) * Q


class CornerArena(Arena):
    """The arena with players spawned at (995, 3), near the +x / -y corner."""

    def on_join(self, client_id, name):
        super().on_join(client_id, name)
        slot = self.players[client_id]
        self.world["x"][slot] = 995.0
        self.world["y"][slot] = 3.0


async def _move(pl, first_seq: int, n: int, d: list[int]) -> tuple[dict, dict]:
    """Send ``n`` inputs ``d`` from ``first_seq``; return own entity before and once acked."""
    before = pl.entity(pl.me())
    last = first_seq + n - 1
    for seq in range(first_seq, last + 1):
        await pl.send_input(seq, d)
    await pl.until(lambda: pl.input_ack >= last)
    return before, pl.entity(pl.me())


async def test_each_input_moves_the_player_one_tick_at_200_units_per_second_and_is_acked():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url) as pl:
                x0 = pl.entity(pl.me())["x"]
                dx = 1 if x0 < 500 else -1  # away from the nearer wall
                before, after = await _move(pl, 1, 5, [dx, 0])
    assert pl.input_ack == 5
    assert after["ack"] == 5  # the arena also writes the applied seq into the entity
    assert after["x"] - before["x"] == dx * 5 * STEP_Q  # exactly, on the grid
    assert STEP_Q == pytest.approx(STEP, rel=0.0025)  # within 0.25 % of 200 units/s
    assert after["y"] == before["y"]
    assert after["heading"] == pytest.approx(0.0 if dx == 1 else math.pi, abs=2 * math.pi / 4096)


async def test_diagonal_input_is_normalised():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url) as pl:
                e = pl.entity(pl.me())
                d = [1 if e["x"] < 500 else -1, 1 if e["y"] < 500 else -1]
                before, after = await _move(pl, 1, 6, d)
    assert after["x"] - before["x"] == d[0] * 6 * DIAG_Q
    assert after["y"] - before["y"] == d[1] * 6 * DIAG_Q
    assert math.hypot(after["x"] - before["x"], after["y"] - before["y"]) == pytest.approx(6 * STEP, rel=0.0025)


async def test_zero_input_is_applied_and_acked_without_moving():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url) as pl:
                before, after = await _move(pl, 1, 3, [0, 0])
    assert (after["x"], after["y"]) == (before["x"], before["y"])
    assert after["ack"] == 3


async def test_position_clamps_to_the_world():
    with trio.fail_after(10):
        async with running_server(games={"arena": CornerArena}) as (server, url):
            async with player(url) as pl:
                before, after = await _move(pl, 1, 4, [1, -1])
    assert (before["x"], before["y"]) == (995.0, 3.0)
    assert (after["x"], after["y"]) == (1000.0, 0.0)


async def test_duplicate_and_old_inputs_are_not_applied_twice():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with player(url) as pl:
                x0 = pl.entity(pl.me())["x"]
                dx = 1 if x0 < 500 else -1
                before, after3 = await _move(pl, 1, 3, [dx, 0])
                for seq in (1, 2, 3, 3, 2):  # re-sent, all already applied
                    await pl.send_input(seq, [dx, 0])
                await pl.send_input(4, [dx, 0])
                await pl.until(lambda: pl.input_ack >= 4)
                await pl.next_state()
                after4 = pl.entity(pl.me())
    assert after3["x"] - before["x"] == dx * 3 * STEP_Q
    assert after4["x"] - before["x"] == dx * 4 * STEP_Q
    assert after4["ack"] == 4


async def test_inputs_reach_the_game_once_per_tick_in_seq_order_without_duplicates():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            wc = await WireClient.open(port_of(url))
            w = await wc.join()
            game = None
            while game is None or w.client_id not in game.joined:
                await wc.recv()
                game = server.rooms["r"].game
            # one write, so one read in one tick: out of order and with a duplicate
            await wc.send(pk([3, 3, "c"]), pk([3, 1, "a"]), pk([3, 2, "b"]), pk([3, 2, "b"]))
            while (await wc.recv()).input_ack < 3:
                pass
            # seq 2 again (already applied) and 5 before 4
            await wc.send(pk([3, 2, "b"]), pk([3, 5, "e"]), pk([3, 4, "d"]))
            while (await wc.recv()).input_ack < 5:
                pass
            await wc.aclose()
    batches = [b[w.client_id] for _, b in game.steps if w.client_id in b]
    assert batches == [[1, 2], [3], [4], [5]]  # one left waiting after a tick (input_backlog 1)
    ticks = [t for t, b in game.steps]
    assert len(set(ticks)) == len(ticks)  # step() once per tick


async def test_gaps_in_seqs_are_allowed_but_late_ones_are_dropped():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            async with player(url) as pl:
                for seq in (1, 2, 5):
                    await pl.send_input(seq, 0)
                await pl.until(lambda: pl.input_ack >= 5)
                for seq in (3, 4):
                    await pl.send_input(seq, 0)
                await pl.send([8, 1.0])  # a ping, to know when the late ones were handled
                await pl.until(lambda: any(isinstance(e, cp.Pong) for e in pl.events))
                await pl.next_state()
                game = server.rooms["r"].game
                assert game.applied(pl.client_id) == [1, 2, 5]
                assert pl.input_ack == 5


async def test_inputs_beyond_the_per_tick_cap_wait_for_the_following_ticks():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec",
                                  max_inputs_per_tick=8) as (server, url):
            wc = await WireClient.open(port_of(url))
            w = await wc.join()
            await wc.recv()
            await wc.send(*[pk([3, seq, 0]) for seq in range(1, 31)])  # 30 at once, cap 8 per tick
            acks = []
            while not acks or acks[-1] < 30:
                s = await wc.recv()
                acks.append(s.input_ack)
            await wc.aclose()
            game = server.rooms["r"].game
    batches = [b[w.client_id] for _, b in game.steps if w.client_id in b]
    assert [len(b) for b in batches] == [8, 8, 8, 5, 1]  # the cap, then down to the backlog of one
    assert [s for b in batches for s in b] == list(range(1, 31))
    assert 8 in acks and 16 in acks and 24 in acks and 29 in acks  # input_ack moves one batch per tick


async def _bunched(server, url, rounds: int, per_write: int) -> tuple[list[list[int]], list[int], int]:
    """Send ``rounds`` writes of ``per_write`` inputs each (one write: one read, one tick),
    each once the previous ones are acked; the client's batches in step() and the acks seen."""
    wc = await WireClient.open(port_of(url))
    w = await wc.join()
    await wc.recv()
    acks: list[int] = []
    seq = 0
    for _ in range(rounds):
        await wc.send(*[pk([3, s, 0]) for s in range(seq + 1, seq + per_write + 1)])
        seq += per_write
        while not acks or acks[-1] < seq:
            acks.append((await wc.recv()).input_ack)
    await wc.aclose()
    game = server.rooms["r"].game
    return [b[w.client_id] for _, b in game.steps if w.client_id in b], acks, w.client_id


async def test_inputs_that_arrive_together_reach_the_game_one_per_tick_with_exact_acks():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            batches, acks, cid = await _bunched(server, url, rounds=5, per_write=2)
            steps = [(t, b[cid]) for t, b in server.rooms["r"].game.steps if cid in b]
    assert batches == [[s] for s in range(1, 11)]  # two in one write, one per tick
    for (t0, _), (t1, _) in zip(steps[::2], steps[1::2], strict=True):
        assert t1 == t0 + 1  # the second of a pair goes at the very next tick
    # the input ack names each input as it is applied: it never jumps past one, never goes back
    assert set(range(1, 11)) <= set(acks)
    assert all(0 <= b - a <= 1 for a, b in zip(acks, acks[1:], strict=False))


async def test_a_burst_past_the_backlog_is_caught_up_in_one_tick():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec", input_backlog=1) as (server, url):
            batches, acks, _ = await _bunched(server, url, rounds=1, per_write=6)
    assert batches == [[1, 2, 3, 4, 5], [6]]  # all but the backlog of one at once, then the last
    assert 5 in acks and acks[-1] == 6


async def test_input_backlog_zero_applies_every_waiting_input_at_the_next_tick():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec", input_backlog=0) as (server, url):
            batches, _, _ = await _bunched(server, url, rounds=3, per_write=2)
    assert batches == [[1, 2], [3, 4], [5, 6]]


async def test_inputs_sent_right_behind_the_join_are_applied_when_the_client_enters():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            wc = await WireClient.open(port_of(url))
            await wc.send(pk([1, p.PROTOCOL_VERSION, "r", "quick"]), pk([3, 1, 0]), pk([3, 2, 0]), pk([6, "hello"]))
            w = await wc.recv()
            assert isinstance(w, p.Welcome)
            while (await wc.recv()).input_ack < 2:
                pass
            await wc.aclose()
            game = server.rooms["r"].game
    assert game.applied(w.client_id) == [1, 2]
    assert game.messages == [(w.client_id, "hello")]


async def test_stale_input_still_delivers_its_ack():
    """Protocol 2: an input whose seq was already applied is dropped, but its ack part counts."""
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join(version=2)
                await c.send([3, 1, [0, 0]])
                s = await c.snapshot()
                while s.input_ack < 1:
                    s = await c.snapshot()
                assert s.base == p.NO_TICK  # nothing acked yet: full snapshots
                await c.send([3, 1, [0, 0], s.tick])  # stale seq, fresh ack
                for _ in range(10):
                    later = await c.snapshot()
                    if later.base != p.NO_TICK:
                        break
    assert later.base == s.tick


async def test_acks_of_old_or_forgotten_ticks_and_nil_bits_are_accepted():
    """Protocol 2, where acks choose baselines."""
    with trio.fail_after(10):
        async with running_server(history_ticks=4) as (server, url):
            async with raw_client(url) as c:
                await c.join(version=2)
                first = await c.snapshot()
                for _ in range(8):
                    await c.snapshot()
                await c.send([5, first.tick])  # long gone from the history: ignored
                await c.send([5, first.tick + 1, None])
                await c.send([3, 1, [0, 0], None, None])
                for _ in range(3):
                    s = await c.snapshot()
                assert s.base == p.NO_TICK  # a baseline out of history means full snapshots
                await c.send([5, s.tick])
                for _ in range(3):
                    s2 = await c.snapshot()
                assert s2.base == s.tick or s2.base > s.tick


async def test_ping_is_answered_with_a_pong_event_carrying_the_time_unchanged():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.send([8, 12345.25])
                await c.send([8, 7])
                events = []
                while len(events) < 2:
                    events += [e for e in (await c.snapshot()).events if e[0] == p.Ev.PONG]
    assert events == [[5, 12345.25], [5, 7]]


async def test_client_message_with_ack_id_is_confirmed_and_not_deduplicated():
    with trio.fail_after(10):
        async with running_server(games={"rec": RecordingGame}, default_game="rec") as (server, url):
            async with raw_client(url) as c:
                w = await c.join()
                await c.send([6, {"chat": "hi"}, 41])
                await c.send([6, {"chat": "hi"}, 41])  # a re-send: handed to the game again
                await c.send([6, "no ack wanted"])
                acks = []
                with trio.move_on_after(0.5):
                    while True:
                        acks += [e for e in (await c.snapshot()).events if e[0] == p.Ev.MESSAGE_ACK]
                game = server.rooms["r"].game
    assert acks == [[4, 41], [4, 41]]
    assert game.messages == [(w.client_id, {"chat": "hi"}), (w.client_id, {"chat": "hi"}),
                             (w.client_id, "no ack wanted")]


async def test_message_ack_for_an_unknown_id_is_ignored():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.send([7, 999])
                got = await c.follow(0.3)
    assert len(got) >= 5 and not c.errors


async def test_leave_gets_bye_close_without_error():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.snapshot()
                await c.send([11])
                closed = await c.closed()
            await wait_for(lambda: server.connections == 0, 2, "the connection to close")
            assert server.stats()["clients"] == 0
    assert (closed.code, closed.reason, closed.error) == (1000, "bye", None)


async def test_client_closing_first_is_answered_and_forgotten():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            async with raw_client(url) as c:
                await c.join()
                await c.snapshot()
            # trio-websocket's aclose() waited for the server's close frame
            assert c.ws.closed is not None and c.ws.closed.code == 1000
            await wait_for(lambda: server.connections == 0 and server.stats()["clients"] == 0, 2,
                           "the session to go")


async def test_client_over_its_outbound_budget_gets_fewer_snapshots_but_every_event():
    with trio.fail_after(10):
        async with running_server(out_bytes_per_s=300, out_bytes_burst=200) as (server, url):
            async with raw_client(url) as c:
                w = await c.join()
                await c.snapshot()
                room = server.rooms["r"]
                sent = 0
                got_events: list = []
                ticks = []
                t0 = trio.current_time()
                with trio.move_on_after(1.5):
                    while True:
                        s = await c.snapshot()
                        ticks.append(s.tick)
                        got_events += [e[1] for e in s.events if e[0] == p.Ev.EVENT]
                        if sent < 30:
                            room.send(w.client_id, sent)
                            sent += 1
                elapsed = trio.current_time() - t0
                # drain what is still owed
                with trio.move_on_after(3):
                    while len(got_events) < sent:
                        s = await c.snapshot()
                        got_events += [e[1] for e in s.events if e[0] == p.Ev.EVENT]
                assert room.snapshot_stats()["snapshots_skipped"] > 0
    assert len(ticks) / elapsed < 15  # well under 30 Hz: frames of 40 B and more at 300 B/s
    assert ticks == sorted(set(ticks))  # strictly increasing, with gaps
    assert got_events == list(range(sent))  # none lost, in order


async def test_events_piling_up_for_a_client_that_gets_no_snapshots_close_it_as_slow_consumer():
    with trio.fail_after(10):
        async with running_server(out_bytes_per_s=1, out_bytes_burst=100, max_pending_events=16) as (server, url):
            async with raw_client(url) as c:
                w = await c.join()
                await c.snapshot()  # the first one passes (bigger than the burst, bucket full)
                room = server.rooms["r"]
                for i in range(17):
                    room.send(w.client_id, i)
                closed = await c.closed()
    assert closed.code == 4009
    assert closed.error is not None and closed.error.code == "slow_consumer"
    assert "events" in closed.reason


async def test_websocket_ping_from_the_client_gets_a_pong():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            wc = await WireClient.open(port_of(url))
            await wc.join()
            await wc.ping(b"are you there")
            while wc.pongs == 0:
                assert await wc.recv() is not None
            await wc.aclose()
