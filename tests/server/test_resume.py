"""Seats survive drops: a player whose connection vanishes keeps client id, entity and applied
inputs for ``seat_grace_s``, resumes with the welcome's resume token, and no input is applied
twice or lost once acknowledged. Real server, real sockets."""

from __future__ import annotations

import time

import trio

from gamesync.client.connection import open_client
from gamesync.core import protocol as p
from gamesync import tokens
from gs_testkit import RecordingGame, WireClient, port_of, running_server, wait_for, watched

V = p.PROTOCOL_VERSION
REC = {"games": {"rec": RecordingGame}, "default_game": "rec"}


async def _snapshot(wc: WireClient) -> p.Snapshot:
    while True:
        ev = await wc.recv()
        assert ev is not None, "connection ended"
        if isinstance(ev, p.Snapshot):
            return ev


async def _until_applied(wc: WireClient, seq: int) -> p.Snapshot:
    while True:
        s = await _snapshot(wc)
        await wc.send([5, s.tick])
        if s.input_ack >= seq:
            return s


def _vanish(wc: WireClient) -> None:
    """Drop the connection without a close frame, as a lost network does."""
    wc.stream.socket.close()


async def test_a_dropped_player_resumes_the_same_seat_and_every_input_is_applied_exactly_once():
    with trio.fail_after(20):
        async with running_server(seat_grace_s=5.0, **REC) as (server, url):
            async with watched(url) as other:
                port = port_of(url)
                wc = await WireClient.open(port)
                await wc.send([1, V, "r", "ann"])
                w = await wc.recv()
                assert isinstance(w, p.Welcome) and w.resume_token and not w.resumed
                for seq in range(1, 6):
                    await wc.send([3, seq, 0])
                await _until_applied(wc, 5)
                await wc.send([3, 6, 0], [3, 7, 0])  # may or may not be applied before the drop
                _vanish(wc)
                room = server.rooms["r"]
                await wait_for(lambda: w.client_id not in room.sessions and len(room.roster.seats) == 1, 3.0,
                               "the seat to be kept")

                back = await WireClient.open(port)
                await back.send([1, V, "r", "someone-else", None, None, w.resume_token])
                w2 = await back.recv()
                assert isinstance(w2, p.Welcome) and w2.resumed
                assert w2.client_id == w.client_id and w2.resume_token != w.resume_token
                first = await _snapshot(back)
                assert first.base == p.NO_TICK  # a full snapshot to start from
                assert first.input_ack >= 5  # what was acknowledged stays applied
                for seq in range(1, 10):  # the client resends everything it has; seqs 1..9
                    await back.send([3, seq, 0])
                await _until_applied(back, 9)
                game = room.game
                assert game.applied(w.client_id) == list(range(1, 10))  # each once, none lost
                assert game.joined.count(w.client_id) == 1 and w.client_id not in game.left
                assert room.sessions[w.client_id].name == "ann"  # the seat's name, not the new join's
                assert not room.roster.seats
                assert other.closed is None


async def test_a_seat_not_resumed_within_the_grace_time_is_freed_and_the_room_told():
    with trio.fail_after(15):
        async with running_server(seat_grace_s=0.4, **REC) as (server, url):
            async with watched(url):
                port = port_of(url)
                wc = await WireClient.open(port)
                w = await wc.join(name="bob")
                _vanish(wc)
                room = server.rooms["r"]
                await wait_for(lambda: room.game.left == [w.client_id], 3.0, "the game to see it leave")
                assert not room.roster.seats and room.stats.leaves == 1
                late = await WireClient.open(port)
                await late.send([1, V, "r", "bob", None, None, w.resume_token])
                w2 = await late.recv()
                assert isinstance(w2, p.Welcome) and not w2.resumed and w2.client_id != w.client_id


async def test_a_player_who_closes_properly_or_is_refused_keeps_no_seat():
    with trio.fail_after(15):
        async with running_server(seat_grace_s=5.0, **REC) as (server, url):
            port = port_of(url)
            a = await WireClient.open(port)
            wa = await a.join(name="polite")
            await a.send([11])  # leave
            await a.closed()
            b = await WireClient.open(port)
            wb = await b.join(name="rude")
            await b.send([3, "not a seq", 0])  # a protocol violation
            await b.closed()
            room = server.rooms["r"]
            await wait_for(lambda: sorted(room.game.left) == sorted([wa.client_id, wb.client_id]), 3.0, "both gone")
            assert not room.roster.seats


async def test_with_join_tokens_a_seat_goes_back_only_to_its_own_player():
    secret = b"k" * 40
    now = time.time()
    mine, theirs = (tokens.mint(secret, who, "r", 60, now) for who in ("p-1", "p-2"))
    with trio.fail_after(15):
        async with running_server(seat_grace_s=5.0, token_secret=secret, **REC) as (server, url):
            port = port_of(url)
            wc = await WireClient.open(port)
            await wc.send([1, V, "r", "x", None, mine])
            w = await wc.recv()
            assert isinstance(w, p.Welcome)
            _vanish(wc)
            room = server.rooms["r"]
            await wait_for(lambda: len(room.roster.seats) == 1, 3.0, "the seat to be kept")
            thief = await WireClient.open(port)
            await thief.send([1, V, "r", "x", None, theirs, w.resume_token])
            closed = await thief.closed()
            assert closed.code == 4011 and "another player" in closed.reason
            assert len(room.roster.seats) == 1  # still there for its owner
            owner = await WireClient.open(port)
            await owner.send([1, V, "r", "x", None, mine, w.resume_token])
            w2 = await owner.recv()
            assert isinstance(w2, p.Welcome) and w2.resumed and w2.client_id == w.client_id


async def test_the_client_library_resumes_its_seat_after_a_lost_connection_and_resends_inputs():
    with trio.fail_after(20):
        async with running_server(seat_grace_s=5.0, **REC) as (server, url):
            async with open_client(url, room="r", name="cy", backoff_initial=0.05) as c:
                await c.wait_state()
                cid = c.client_id
                for _ in range(3):
                    await c.send_input(0)
                room = server.rooms["r"]
                await wait_for(lambda: room.game.applied(cid) == [1, 2, 3], 3.0, "three inputs applied")
                c._ws._stream.socket.close()  # the network goes away under the client
                await wait_for(lambda: c.resumes == 1, 5.0, "the client to resume")
                assert c.client_id == cid
                for _ in range(2):
                    await c.send_input(0)
                await wait_for(lambda: room.game.applied(cid) == [1, 2, 3, 4, 5], 3.0,
                               lambda: f"inputs 4 and 5 (applied: {room.game.applied(cid)}, sessions: {list(room.sessions)}, "
                                       f"seats: {len(room.roster.seats)}, client id now {c.client_id}, resumes {c.resumes})")
                assert room.game.joined.count(cid) == 1 and not room.game.left


async def test_a_resume_while_the_old_connection_is_still_open_retires_it_and_takes_over():
    """A client back faster than the room notices its old connection died (or a half-open
    one): the old connection is closed, the new one has the seat, nobody saw anyone leave."""
    with trio.fail_after(15):
        async with running_server(seat_grace_s=5.0, **REC) as (server, url):
            port = port_of(url)
            old = await WireClient.open(port)
            w = await old.join(name="dee")
            await old.send([3, 1, 0])
            await _until_applied(old, 1)
            room = server.rooms["r"]
            sent_so_far = room.snapshot_stats()["bytes_out"]  # the room's total: sessions' counts and its own
            assert sent_so_far > 0
            new = await WireClient.open(port)
            await new.send([1, V, "r", "dee", None, None, w.resume_token])
            w2 = await new.recv()
            assert isinstance(w2, p.Welcome) and w2.resumed and w2.client_id == w.client_id
            await old.closed()  # the old connection is let go
            await new.send([3, 2, 0])
            await _until_applied(new, 2)
            assert room.snapshot_stats()["bytes_out"] > sent_so_far  # the retired connection's counters are kept
            assert list(room.sessions) == [w.client_id] and room.sessions[w.client_id].conn is not None
            assert room.game.applied(w.client_id) == [1, 2] and not room.game.left and not room.roster.seats


def test_a_resumes_resend_fits_the_servers_inbound_limits():
    """The client re-sends at most UNACKED_INPUTS inputs at once after a resume; the server must
    accept them all (waiting inputs and the message burst), or the resume would cost the seat."""
    from gamesync.core.clientproto import UNACKED_INPUTS
    from gamesync.server.config import ServerConfig

    cfg = ServerConfig()
    assert UNACKED_INPUTS < 4 * cfg.max_inputs_per_tick and UNACKED_INPUTS < cfg.in_msgs_burst


async def test_a_full_resend_after_a_resume_is_applied_not_refused():
    from gamesync.core.clientproto import UNACKED_INPUTS

    with trio.fail_after(15):
        async with running_server(seat_grace_s=5.0, **REC) as (server, url):
            port = port_of(url)
            wc = await WireClient.open(port)
            w = await wc.join(name="eve")
            _vanish(wc)
            room = server.rooms["r"]
            await wait_for(lambda: len(room.roster.seats) == 1, 3.0, "the seat to be kept")
            back = await WireClient.open(port)
            await back.send([1, V, "r", "eve", None, None, w.resume_token])
            assert (await back.recv()).resumed
            await back.send(*[[3, seq, 0] for seq in range(1, UNACKED_INPUTS + 1)])
            await _until_applied(back, UNACKED_INPUTS)
            assert room.game.applied(w.client_id) == list(range(1, UNACKED_INPUTS + 1))


async def test_nothing_a_client_sends_after_its_leave_reaches_the_game():
    with trio.fail_after(15):
        async with running_server(**REC) as (server, url):
            port = port_of(url)
            wc = await WireClient.open(port)
            w = await wc.join(name="eve")
            room = server.rooms["r"]
            await wait_for(lambda: w.client_id in room.sessions, 3.0, "the room to seat it")
            await wc.send([6, "before"], [11], [6, "after, same write"])  # one write, one read
            closed = await wc.closed()
            assert closed.code == 1000
            await wait_for(lambda: room.game.left == [w.client_id], 3.0, "the leave")
            assert room.game.messages == [(w.client_id, "before")]
            # and a leave followed by more in later writes: the socket is no longer read
            wc2 = await WireClient.open(port)
            w2 = await wc2.join(name="eve2")
            await wait_for(lambda: w2.client_id in room.sessions, 3.0, "the room to seat it")
            await wc2.send([11])
            try:
                await wc2.send([6, "after, later write"])
            except Exception:
                pass  # the server may have closed already
            await wc2.closed()
            await wait_for(lambda: w2.client_id in room.game.left, 3.0, "the second leave")
            assert all(cid != w2.client_id for cid, _ in room.game.messages)


async def _just_after_a_tick(room) -> None:
    """Wait for the room's next tick, so that a join now has most of a period before the next."""
    t = room.tick
    await wait_for(lambda: room.tick > t, 5.0, "a tick")


async def test_a_resume_by_another_player_before_the_first_tick_is_refused_with_4011():
    """The victim was welcomed but has not yet been seated by a tick: its resume token still
    names its seat, and another player's token gets 4011, never a fresh seat."""
    secret = b"k" * 40
    now = time.time()
    victim, thief = (tokens.mint(secret, who, "r", 60, now) for who in ("p-1", "p-2"))
    with trio.fail_after(20):
        async with running_server(token_secret=secret, tick_rate=1.0, **REC) as (server, url):
            port = port_of(url)
            first = await WireClient.open(port)
            await first.send([1, V, "r", "x", None, tokens.mint(secret, "p-0", "r", 60, now)])
            assert isinstance(await first.recv(), p.Welcome)
            room = server.rooms["r"]
            await _just_after_a_tick(room)
            tick = room.tick
            wv = await WireClient.open(port)
            await wv.send([1, V, "r", "x", None, victim])
            w = await wv.recv()
            assert isinstance(w, p.Welcome)
            wt = await WireClient.open(port)
            await wt.send([1, V, "r", "x", None, thief, w.resume_token])
            closed = await wt.closed()
            assert room.tick == tick, "the test's window closed: the victim was seated by a tick first"
            assert closed.code == 4011 and "another player" in closed.reason
            await wait_for(lambda: w.client_id in room.sessions, 3.0, "the victim to be seated")
            assert room.sessions[w.client_id].player == "p-1"


async def test_a_resume_of_a_seat_not_yet_seated_takes_it_over_and_the_game_sees_one_join():
    with trio.fail_after(20):
        async with running_server(tick_rate=1.0, **REC) as (server, url):
            port = port_of(url)
            first = await WireClient.open(port)
            await first.join(name="bystander")
            room = server.rooms["r"]
            await _just_after_a_tick(room)
            tick = room.tick
            old = await WireClient.open(port)
            w = await old.join(name="quick")
            new = await WireClient.open(port)
            await new.send([1, V, "r", "quick", None, None, w.resume_token])
            w2 = await new.recv()
            assert room.tick == tick, "the test's window closed: the first connection was seated by a tick first"
            assert isinstance(w2, p.Welcome) and w2.resumed and w2.client_id == w.client_id
            await old.closed()
            await wait_for(lambda: w.client_id in room.sessions, 3.0, "the seat to be taken")
            assert room.sessions[w.client_id].conn is not None
            assert room.game.joined.count(w.client_id) == 1 and w.client_id not in room.game.left
