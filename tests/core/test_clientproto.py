"""The sans-I/O client protocol (gamesync.core.clientproto): welcome, snapshots, acks, events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.core.delta import compress_payload, encode_delta
from gamesync.core.errors import DesyncError, ProtocolViolation
from gamesync.core.mirror import DecodeCache
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.world import World

SCHEMA = Schema([Float("x", 0, 1000, 1 / 64), Angle("a", 12), Int("hp", "u1"), Int("score", "i4")])
WELCOME = p.Welcome(p.PROTOCOL_VERSION, 7, "lobby", "arena", 30.0, 0, SCHEMA.to_wire(), 60)


class Server:
    def __init__(self, n: int = 25) -> None:
        self.w = World(SCHEMA)
        self.w.spawn(n, x=np.arange(n) * 10.0, hp=100, score=np.arange(n) * 1000)
        self.states: dict[int, State] = {}
        self.tick = -1

    def step(self) -> State:
        n = self.w.n
        self.w["x"][:n] += 0.5
        self.w["a"][:n] += 0.1
        self.tick += 1
        if self.tick % 3 == 2:
            self.w.despawn([self.tick % n])
            self.w.spawn(1, x=1.0)
        s = State.capture(self.w, self.tick, self.states.get(self.tick - 1))
        self.states[self.tick] = s
        return s

    def run(self, ticks: int) -> "Server":
        for _ in range(ticks):
            self.step()
        return self

    def frame(self, tick: int, base: int = p.NO_TICK, ref: int = p.NO_TICK, input_ack: int = 0,
              events: list | None = None) -> bytes:
        raw = encode_delta(SCHEMA, self.states[tick], self.states.get(base), self.states.get(ref) if base >= 0 else None)
        flags, payload = compress_payload(raw)
        return p.pack_snapshot(tick, base, ref, input_ack, flags, payload, events or [])


def welcomed(**kw) -> cp.ClientProtocol:
    c = cp.ClientProtocol("lobby", "alice", "arena", **kw)
    w = dataclasses.replace(WELCOME, version=c.version)
    assert c.receive(p.pack_welcome(w), 0.0) == [cp.Welcomed(w)]
    return c


def acks(c: cp.ClientProtocol) -> list:
    out = [p.parse_client(m) for m in c.outbox]
    c.outbox.clear()
    return out


def test_join_message():
    c = cp.ClientProtocol("lobby", "alice", "arena")
    assert p.parse_client(c.join()) == p.Join(p.PROTOCOL_VERSION, "lobby", "alice", "arena")
    assert p.parse_client(cp.ClientProtocol("lobby", "bob").join()) == p.Join(p.PROTOCOL_VERSION, "lobby", "bob", None)


def test_welcome_builds_schema_and_mirror():
    c = welcomed()
    assert c.welcome == WELCOME
    assert c.schema is not None and c.schema.fields == SCHEMA.fields
    assert c.mirror is not None and c.mirror.history == 60
    assert c.tick == p.NO_TICK and c.outbox == []


def test_second_welcome_is_a_protocol_violation():
    c = welcomed()
    with pytest.raises(ProtocolViolation):
        c.receive(p.pack_welcome(WELCOME), 0.0)


def test_snapshot_before_welcome_is_a_protocol_violation():
    srv = Server().run(1)
    with pytest.raises(ProtocolViolation):
        cp.ClientProtocol("lobby", "alice").receive(srv.frame(0), 0.0)


def test_protocol_2_snapshots_yield_state_updates_with_input_ack_and_queue_acks():
    srv = Server().run(6)
    c = welcomed(version=2)  # protocol 2: acks say what is held
    f0 = srv.frame(0, input_ack=3)
    [ev] = c.receive(f0, 1.0)
    assert isinstance(ev, cp.StateUpdated)
    assert ev.state.same_as(srv.states[0]) and ev.state.tick == 0
    assert (ev.input_ack, ev.base, ev.size) == (3, p.NO_TICK, len(f0))
    assert c.tick == 0 and c.input_ack == 3
    assert acks(c) == [p.SnapshotAck(0, 0)]

    [ev] = c.receive(srv.frame(1, 0, input_ack=5), 1.1)
    assert ev.state.same_as(srv.states[1]) and ev.base == 0 and ev.input_ack == 5
    assert acks(c) == [p.SnapshotAck(1, 0b1)]  # holds tick 0

    [ev] = c.receive(srv.frame(3, 1, 0, input_ack=4), 1.2)  # tick 2 lost; an older input ack
    assert ev.state.same_as(srv.states[3]) and ev.input_ack == 4
    assert c.input_ack == 5  # the newest input ack never moves back
    assert acks(c) == [p.SnapshotAck(3, 0b110)]  # holds 1 and 0, not 2

    [ev] = c.receive(srv.frame(5, 3, 1, input_ack=9), 1.3)
    assert ev.state.same_as(srv.states[5])
    assert acks(c) == [p.SnapshotAck(5, 0b1010)]  # 3 and its baseline 1 (base - 1 = 2 was never held)


def test_stale_snapshot_is_not_acked_but_its_events_are_delivered():
    srv = Server().run(4)
    c = welcomed()
    c.receive(srv.frame(0), 0.0)
    c.receive(srv.frame(3, 0), 0.0)
    acks(c)
    out = c.receive(srv.frame(2, 0, events=[[p.Ev.EVENT, "boom"], [p.Ev.JOINED, 4, "bob"]]), 0.0)
    assert out == [cp.GameEvent("boom"), cp.PlayerJoined(4, "bob")]
    assert c.tick == 3 and c.outbox == []


def test_a_short_backlog_read_together_is_decoded_whole():
    srv = Server().run(4)
    c = welcomed()
    c.receive(srv.frame(0), 0.0)
    out = c.receive_many([srv.frame(t, t - 1, input_ack=t) for t in (1, 2, 3)], 1.0)  # cp.BACKLOG = 3
    assert [type(e) for e in out] == [cp.StateUpdated] * 3
    assert [e.state.tick for e in out] == [1, 2, 3] and all(e.state.same_as(srv.states[e.state.tick]) for e in out)
    assert c.mirror is not None and all(c.mirror.get(t) is not None for t in (2, 3))


def test_protocol_2_of_a_long_backlog_read_together_only_the_newest_is_decoded_and_every_event_still_comes_out():
    srv = Server().run(5)
    c = welcomed(version=2)  # protocol 2: acks say what is held
    c.receive(srv.frame(0), 0.0)
    acks(c)
    batch = [srv.frame(1, 0, input_ack=2, events=[[p.Ev.EVENT, "a"]]),
             srv.frame(2, 0, input_ack=3, events=[[p.Ev.EVENT, "b"]]),
             p.pack_error(ProtocolViolation("just words")),
             srv.frame(3, 0, input_ack=4, events=[[p.Ev.EVENT, "c"]])]
    out = c.receive_many(batch, 1.0, backlog=2)  # three snapshots: past the backlog
    assert out[:5] == [cp.StateSkipped(1, 2, len(batch[0])), cp.GameEvent("a"),
                       cp.StateSkipped(2, 3, len(batch[1])), cp.GameEvent("b"),
                       cp.ErrorReceived("protocol", "just words")]
    assert isinstance(out[5], cp.StateUpdated) and out[5].state.same_as(srv.states[3]) and out[5].input_ack == 4
    assert out[6:] == [cp.GameEvent("c")]
    assert c.tick == 3 and c.input_ack == 4
    assert c.mirror is not None and c.mirror.get(1) is None and c.mirror.get(2) is None  # never decoded ...
    assert acks(c) == [p.SnapshotAck(3, 0b100)]  # ... so never acknowledged: only 3, and 0 it was built on
    [ev] = c.receive_many([srv.frame(4, 3, input_ack=4)], 1.1)  # a batch of one decodes as receive does
    assert isinstance(ev, cp.StateUpdated) and ev.state.same_as(srv.states[4])


def test_a_batch_whose_newest_snapshot_came_first_skips_the_late_older_one():
    srv = Server().run(3)
    c = welcomed()
    c.receive(srv.frame(0), 0.0)
    out = c.receive_many([srv.frame(2, 0, input_ack=7), srv.frame(1, 0, input_ack=5)], 1.0, backlog=1)
    assert isinstance(out[0], cp.StateUpdated) and out[0].state.tick == 2
    assert out[1:] == []  # tick 1 is older than what the mirror holds by then: nothing to report
    assert c.tick == 2 and c.input_ack == 7


def test_without_auto_ack_no_snapshot_acks_are_queued():
    srv = Server().run(3)
    c = welcomed(auto_ack=False)
    c.receive(srv.frame(0), 0.0)
    c.receive(srv.frame(1, 0), 0.0)
    assert c.outbox == []
    c.receive(srv.frame(2, 1, events=[[p.Ev.RELIABLE, {"k": 1}, 11]]), 0.0)
    assert acks(c) == [p.MessageAck(11)]  # reliable messages are still acknowledged


def test_protocol_2_inputs_carry_the_newest_tick_and_ack_bits():
    srv = Server().run(4)
    c = welcomed(version=2)  # protocol 2: acks say what is held
    assert p.parse_client(c.send_input({"move": 1})) == p.InputFrame(1, {"move": 1}, None, 0)
    c.receive(srv.frame(0), 0.0)
    c.receive(srv.frame(2, 0), 0.0)
    assert p.parse_client(c.send_input([1, 2])) == p.InputFrame(2, [1, 2], 2, 0b10)
    c.receive(srv.frame(3, 2, 0), 0.0)
    assert p.parse_client(c.send_input(None)) == p.InputFrame(3, None, 3, 0b101)
    assert c.input_seq == 3


def test_reliable_messages_get_increasing_ack_ids():
    c = cp.ClientProtocol("lobby", "alice")
    data, ack_id = c.send_message({"chat": "hi"}, reliable=True)
    assert ack_id == 1 and p.parse_client(data) == p.ClientMessage({"chat": "hi"}, 1)
    assert c.send_message("x", reliable=True)[1] == 2
    data, ack_id = c.send_message("y")
    assert ack_id is None and p.parse_client(data) == p.ClientMessage("y", None)
    assert c.send_message("z", reliable=True)[1] == 3


def test_events_are_decoded_and_reliable_ones_acked_via_outbox():
    srv = Server().run(1)
    c = welcomed(auto_ack=False)
    events = [
        [p.Ev.EVENT, {"hit": 3}],
        [p.Ev.RELIABLE, "score", 41],
        [p.Ev.JOINED, 9, "carol"],
        [p.Ev.LEFT, 8],
        [p.Ev.MESSAGE_ACK, 2],
        [p.Ev.RELIABLE, [1, 2], 42],
    ]
    out = c.receive(srv.frame(0, events=events), 5.0)
    assert isinstance(out[0], cp.StateUpdated)
    assert out[1:] == [cp.GameEvent({"hit": 3}), cp.ReliableMessage("score", 41), cp.PlayerJoined(9, "carol"),
                       cp.PlayerLeft(8), cp.MessageAcked(2), cp.ReliableMessage([1, 2], 42)]
    assert acks(c) == [p.MessageAck(41), p.MessageAck(42)]


def test_pong_reports_round_trip_time():
    srv = Server().run(2)
    c = welcomed()
    assert p.parse_client(c.ping(10.0)) == p.Ping(10.0)
    out = c.receive(srv.frame(0, events=[[p.Ev.PONG, 10.0]]), 10.25)
    assert out[-1] == cp.Pong(0.25)
    out = c.receive(srv.frame(1, 0, events=[[p.Ev.PONG, 12]]), 11.0)  # from the future: clamped to 0
    assert out[-1] == cp.Pong(0.0)


def test_server_error_is_reported():
    c = cp.ClientProtocol("lobby", "alice")
    assert c.receive(p.pack_error(p.ProtocolViolation("nope")), 0.0) == [cp.ErrorReceived("protocol", "nope")]
    from gamesync.core.errors import RoomFull

    assert c.receive(p.pack_error(RoomFull()), 0.0) == [cp.ErrorReceived("room_full", "room_full")]


def test_malformed_server_bytes_are_a_protocol_violation():
    c = welcomed()
    with pytest.raises(ProtocolViolation):
        c.receive(b"\xc1", 0.0)
    with pytest.raises(ProtocolViolation):
        c.receive(p.pack_join("r", "n"), 0.0)


def test_snapshot_on_a_baseline_not_held_raises_desync():
    srv = Server().run(4)
    c = welcomed()
    c.receive(srv.frame(0), 0.0)
    with pytest.raises(DesyncError):
        c.receive(srv.frame(2, 1), 0.0)
    c.receive(srv.frame(2, 0), 0.0)
    with pytest.raises(DesyncError):
        c.receive(srv.frame(3, 2, 1), 0.0)  # reference not held
    assert c.tick == 2


@pytest.mark.parametrize("ev", [5, "event", [], None, {"k": 1}, [99, "x"], [-1], ["EVENT", 1]], ids=repr)
def test_bad_event_entries_are_a_protocol_violation(ev):
    srv = Server().run(1)
    c = welcomed()
    with pytest.raises(ProtocolViolation):
        c.receive(srv.frame(0, events=[ev]), 0.0)


@pytest.mark.parametrize("ev", [
    [p.Ev.EVENT],
    [p.Ev.RELIABLE, "data"],
    [p.Ev.RELIABLE],
    [p.Ev.JOINED, 4],
    [p.Ev.LEFT],
    [p.Ev.MESSAGE_ACK],
    [p.Ev.PONG],
    [p.Ev.PONG, "soon"],
    [p.Ev.PONG, None],
    [p.Ev.RELIABLE, "data", "not an id"],
    [p.Ev.RELIABLE, "data", -1],
], ids=repr)
def test_event_entries_with_missing_or_wrong_fields_are_a_protocol_violation(ev):
    srv = Server().run(1)
    c = welcomed()
    with pytest.raises(ProtocolViolation):
        c.receive(srv.frame(0, events=[ev]), 0.0)
    assert all(p.parse_client(m) is not None for m in c.outbox)  # never queue a message the server rejects


def test_clients_sharing_a_decode_cache_share_states():
    srv = Server().run(3)
    cache = DecodeCache()
    a, b = welcomed(cache=cache), welcomed(cache=cache)
    frames = [srv.frame(0), srv.frame(1, 0), srv.frame(2, 1, 0)]
    for f in frames:
        [ua] = a.receive(f, 0.0)
        [ub] = b.receive(f, 0.0)
        assert ua.state is ub.state
    assert cache.hits == 3 and cache.misses == 3


@settings(max_examples=60, deadline=None)
@given(plan=st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.booleans()), min_size=1, max_size=30))
def test_protocol_2_acks_always_name_the_newest_tick_and_only_held_ticks(plan):
    """Whatever is lost, every queued ack names the newest tick and flags only ticks the mirror holds."""
    srv = Server()
    c = welcomed(version=2)  # protocol 2: acks say what is held
    acked = p.NO_TICK
    for tick, (delivered, back, use_ref) in enumerate(plan):
        srv.step()
        if acked == p.NO_TICK:
            base = ref = p.NO_TICK
        else:
            base = max(acked - back, 0) if c.mirror.get(max(acked - back, 0)) is not None else acked
            ref = base - 1 if use_ref and c.mirror.get(base - 1) is not None else p.NO_TICK
        if not delivered:
            continue
        out = c.receive(srv.frame(tick, base, ref, input_ack=tick), 0.0)
        assert out[0].state.same_as(srv.states[tick])
        [ack] = acks(c)
        assert ack.tick == tick == c.tick
        for i in range(p.ACK_BITS):
            assert bool(ack.bits >> i & 1) == (c.mirror.get(tick - 1 - i) is not None)
        acked = tick


def test_protocol_3_decodes_every_snapshot_of_a_backlog_and_acknowledges_none():
    """Each snapshot may be built on the one before it: a backlog is decoded whole, and
    neither acks nor ack fields on inputs are sent (the server knows what it wrote)."""
    srv = Server().run(8)
    c = welcomed()
    assert c.version >= 3 and c.stream
    c.receive(srv.frame(0), 0.0)
    frames = [srv.frame(t, t - 1, t - 2 if t >= 2 else p.NO_TICK, events=[[p.Ev.EVENT, t]]) for t in range(1, 8)]
    evs = c.receive_many(frames, 1.0, backlog=3)
    updates = [e for e in evs if isinstance(e, cp.StateUpdated)]
    assert [e.state.tick for e in updates] == list(range(1, 8))
    assert all(e.state.same_as(srv.states[e.state.tick]) for e in updates)
    assert not any(isinstance(e, cp.StateSkipped) for e in evs)
    assert [e.data for e in evs if isinstance(e, cp.GameEvent)] == list(range(1, 8))
    assert acks(c) == []
    assert p.parse_client(c.send_input([1, 0])) == p.InputFrame(1, [1, 0], None, 0)


def test_a_welcome_in_another_version_than_the_join_is_a_protocol_violation():
    c = cp.ClientProtocol("lobby", "alice", version=3)
    with pytest.raises(ProtocolViolation):
        c.receive(p.pack_welcome(dataclasses.replace(WELCOME, version=2)), 0.0)
    with pytest.raises(ValueError):
        cp.ClientProtocol("lobby", "alice", version=1)


def test_a_successor_keeps_settings_version_and_input_numbering():
    c = welcomed(version=2, auto_ack=False, token="t")
    c.send_input([1, 0])
    nxt = c.successor("seat")
    assert (nxt.room, nxt.name, nxt.game, nxt.token, nxt.auto_ack, nxt.version, nxt.resume) == (
        "lobby", "alice", "arena", "t", False, 2, "seat")
    assert nxt.input_seq == 1 and list(nxt.unacked) == [(1, [1, 0])]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_take_snapshot_does_what_receive_does_with_a_snapshot_without_events(version):
    srv = Server().run(6)
    a, b = welcomed(version=version), welcomed(version=version)
    for c in (a, b):
        c.send_input([1, 0])
        c.send_input([0, 1])
    frames = [srv.frame(0), srv.frame(1, 0, input_ack=1), srv.frame(3, 1, 0, input_ack=2),
              srv.frame(2, 1, 0, input_ack=2), srv.frame(4, 3, 1, input_ack=2)]
    for f in frames:
        got = [e for e in a.receive(f, 0.0) if isinstance(e, cp.StateUpdated)]
        st = b.take_snapshot(p.snapshot_fields(f))
        assert (st is None) == (not got) and (st is None or st.same_as(got[0].state))
        assert (a.tick, a.input_ack, list(a.unacked), a.outbox) == (b.tick, b.input_ack, list(b.unacked), b.outbox)
    assert a.tick == 4 and not a.unacked  # tick 2 came late: not newer, nothing applied


def test_take_snapshot_before_the_welcome_is_a_protocol_violation():
    srv = Server().run(1)
    with pytest.raises(ProtocolViolation):
        cp.ClientProtocol("lobby", "alice").take_snapshot(p.snapshot_fields(srv.frame(0)))
