"""The server side of a session, sans I/O (gamesync.core.serverproto): the join gate, inputs,
acks, ping, leave and the lifecycle, without sockets or trio."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from gamesync.core import protocol as p
from gamesync.core.errors import ProtocolViolation, RateLimited, VersionMismatch
from gamesync.core.serverproto import (
    _TRANSITIONS,
    Heartbeat,
    IllegalTransition,
    Left,
    MessageReceived,
    ReliableAcked,
    Reply,
    ServerSession,
    SessionState,
)


def same(x: Any) -> Any:
    return x


def playing(**kw: Any) -> ServerSession:
    s = ServerSession(history_ticks=32, baseline_lag=1, max_inputs_per_tick=kw.get("cap", 32), now=0.0,
                      input_backlog=kw.get("backlog", 1))
    s.receive_join(p.pack_join("r", "ann"))
    s.enter()
    return s


def test_the_first_message_must_be_a_join():
    s = ServerSession(32, 1, 32, 0.0)
    with pytest.raises(ProtocolViolation):
        s.receive_join(p.pack_input(1, "x"))
    assert s.state is SessionState.AWAITING_JOIN


def test_a_join_in_another_protocol_version_is_refused():
    s = ServerSession(32, 1, 32, 0.0)
    with pytest.raises(VersionMismatch):
        s.receive_join(p.pack_join("r", "ann", version=p.PROTOCOL_VERSION + 1))


def test_a_join_moves_to_joining_and_enter_to_playing():
    s = ServerSession(32, 1, 32, 0.0)
    join = s.receive_join(p.pack_join("r", "ann", "arena"))
    assert (join.room, join.name, join.game) == ("r", "ann", "arena")
    assert s.state is SessionState.JOINING
    s.enter()
    assert s.state is SessionState.PLAYING


def test_join_after_join_is_a_protocol_violation():
    s = playing()
    with pytest.raises(ProtocolViolation):
        s.receive(p.pack_join("r", "ann"), same)


def test_inputs_are_applied_once_in_seq_order():
    s = playing(backlog=0)  # every waiting input at the next tick
    for seq in (3, 1, 2, 2, 1):
        assert s.receive(p.pack_input(seq, seq), same) is None
    assert [f.seq for f in s.take_inputs()] == [1, 2, 3]
    assert s.last_applied == 3
    s.receive(p.pack_input(2, "late resend"), same)
    assert s.take_inputs() == []


def test_inputs_that_arrive_together_reach_the_game_one_per_tick():
    s = playing()  # the default jitter buffer (core.inputs): a backlog of one may wait
    for seq in (2, 1):
        s.receive(p.pack_input(seq, seq), same)
    assert [f.seq for f in s.take_inputs()] == [1]
    assert s.last_applied == 1  # the input ack says which one was applied
    assert [f.seq for f in s.take_inputs()] == [2]
    assert s.last_applied == 2


def test_inputs_past_the_per_tick_cap_wait_for_the_next_tick():
    s = playing(cap=2)
    for seq in (1, 2, 3):
        s.receive(p.pack_input(seq, None), same)
    assert [f.seq for f in s.take_inputs()] == [1, 2]
    assert [f.seq for f in s.take_inputs()] == [3]


def test_a_flood_of_waiting_inputs_is_rate_limited():
    s = playing(cap=1)
    with pytest.raises(RateLimited):
        for seq in range(1, 10):
            s.receive(p.pack_input(seq, None), same)


def test_inputs_go_through_the_games_validation():
    s = playing()
    s.receive(p.pack_input(1, 5), lambda d: d * 2)
    assert s.take_inputs()[0].data == 10


def test_acks_in_inputs_and_snapshot_acks_reach_the_ack_tracker():
    s = playing()
    s.acks.on_sent(4, p.NO_TICK)
    s.receive(p.pack_ack(4), same)
    assert s.acks.acked == 4
    s.acks.on_sent(5, 4)
    s.receive(p.pack_input(1, None, 5, 0), same)
    assert s.acks.acked == 5


def test_resume_continues_the_seats_input_numbering():
    s = ServerSession(32, 1, 32, 0.0)
    s.receive_join(p.pack_join("r", "ann"))
    s.resume(7)
    s.enter()
    s.receive(p.pack_input(7, "applied before the drop"), same)
    s.receive(p.pack_input(8, "new"), same)
    assert [f.seq for f in s.take_inputs()] == [8]


def test_ping_gets_a_pong_with_the_clients_time():
    assert playing().receive(p.pack_ping(12.5), same) == Reply([p.Ev.PONG, 12.5])


def test_messages_and_reliable_acks_become_events():
    s = playing()
    assert s.receive(p.pack_message({"hi": 1}, 9), same) == MessageReceived({"hi": 1}, 9)
    assert s.receive(p.pack_message_ack(4), same) == ReliableAcked(4)


def test_nothing_after_leave_reaches_the_game():
    s = playing()
    assert s.receive(p.pack_input(1, "before"), same) is None
    assert s.receive(p.pack_leave(), same) == Left()
    assert s.state is SessionState.CLOSING and s.error is None and not s.keep_seat
    seen = []
    for m in (p.pack_input(2, "after"), p.pack_message("after"), p.pack_ping(1.0), p.pack_join("r", "x"),
              b"\xc1 not msgpack"):
        assert s.receive(m, lambda d: seen.append(d)) is None
    assert seen == [] and s.take_inputs() == []


def test_pending_inputs_are_dropped_when_the_session_closes():
    s = playing()
    s.receive(p.pack_input(1, "queued"), same)
    s.close(None, "lost", keep_seat=True)
    assert s.take_inputs() == [] and s.keep_seat


def test_close_is_idempotent_and_keeps_the_first_reason():
    s = playing()
    assert s.close(RateLimited("x"))
    assert not s.close(None, "again", keep_seat=True)
    assert isinstance(s.error, RateLimited) and not s.keep_seat


def test_closed_follows_closing_only():
    s = playing()
    with pytest.raises(IllegalTransition):
        s.closed()
    s.close(None)
    s.closed()
    assert s.state is SessionState.CLOSED and s.closing


def test_every_state_is_in_the_transition_table_and_only_closed_is_final():
    assert set(_TRANSITIONS) == set(SessionState)
    assert [st for st, to in _TRANSITIONS.items() if not to] == [SessionState.CLOSED]


def test_enter_twice_is_illegal():
    s = playing()
    with pytest.raises(IllegalTransition):
        s.enter()


def test_heartbeat_pings_once_per_silence_then_times_out():
    s = playing()
    assert s.heartbeat(1.0, 5.0, 15.0, True) is Heartbeat.NOTHING
    assert s.heartbeat(6.0, 5.0, 15.0, False) is Heartbeat.NOTHING  # a frame half written: not now
    assert s.heartbeat(6.0, 5.0, 15.0, True) is Heartbeat.PING
    assert s.heartbeat(7.0, 5.0, 15.0, True) is Heartbeat.NOTHING
    s.heard(8.0)
    assert s.heartbeat(14.0, 5.0, 15.0, True) is Heartbeat.PING
    assert s.heartbeat(24.0, 5.0, 15.0, True) is Heartbeat.TIMEOUT


def test_malformed_messages_raise_protocol_violation():
    with pytest.raises(ProtocolViolation):
        playing().receive(msgpack.packb([99]), same)
