"""View rooms (interest management) end to end: real server, real WebSockets, the Python client.

Each client must hold exactly what it may see: the entities near its player, and those the
game scopes to it; never anything farther than the radius plus a cell's diagonal (here 2R),
whatever happens on the way (walking, resuming).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from gs_testkit import raw_client, running_server, wait_for

from gamesync.client.connection import open_client
from gamesync.core import protocol as p
from gamesync.core.protocol import NO_TICK
from gamesync.core.state import State
from gamesync.core.viewmirror import ViewMirror
from gamesync.core.viewplan import ClientView
from gamesync.core.world import World
from gamesync.games.bigworld import BigWorld
from gamesync.server.roomstats import RoomStats
from gamesync.server.views import Views
from gamesync.server.viewrules import plain_wants, want_one

R = 500.0
REACH = 2 * R


class PlacedWorld(BigWorld):
    """The big world with 10,000 NPCs (3,162 units a side), players spawned where their name says:
    ``"p@x,y"``."""

    def __init__(self, **options: Any) -> None:
        options["npcs"] = 10_000
        super().__init__(**options)

    def on_join(self, client_id: int, name: str) -> None:
        super().on_join(client_id, name)
        if "@" in name:
            x, y = (float(v) for v in name.split("@")[1].split(","))
            slot = self.players[client_id]
            self.world["x"][slot], self.world["y"][slot] = x, y


def games() -> dict[str, Any]:
    return {"placed": PlacedWorld, "bigworld": BigWorld}


def me(client: Any, st: State) -> tuple[float, float, int]:
    """(x, y, slot) of the client's own player in ``st``, from its ``owner`` field."""
    owner = st.wire(client.schema, "owner").astype(np.int64)
    slots = np.flatnonzero(st.alive & (owner == client.client_id))
    assert slots.size == 1, "a client always holds its own player"
    s = int(slots[0])
    return float(st.column(client.schema, "x")[s]), float(st.column(client.schema, "y")[s]), s


def check_no_leak(client: Any, st: State) -> tuple[float, float, set[int]]:
    """Every entity held is within 2R of the client's player; returns its position and the ids held."""
    x, y, _ = me(client, st)
    live = np.flatnonzero(st.alive)
    xs, ys = st.column(client.schema, "x")[live], st.column(client.schema, "y")[live]
    far = np.hypot(xs - x, ys - y)
    assert (far <= REACH).all(), f"entity {float(far.max()):.0f} units away reached the client"
    return x, y, {int(i) for i in st.ids[live]}


async def test_two_players_far_apart_see_neither_each_other_nor_around_each_other_until_they_meet():
    """One client of version 5 (packed record lists) and one of version 4, in one room."""
    with trio.fail_after(40):
        async with running_server(games=games(), default_game="placed") as (server, url), \
                open_client(url, "big", "p@600,600", "placed") as a, \
                open_client(url, "big", "p@2000,2000", "placed", protocol=p.VIEW_VERSION) as b:
            sa, sb = await a.wait_state(), await b.wait_state()
            assert a.proto is not None and b.proto is not None
            assert (a.proto.version, b.proto.version) == (p.PACKED_VERSION, p.VIEW_VERSION)
            await wait_for(lambda: a.state.tick > sa.tick + 3 and b.state.tick > sb.tick + 3)
            _, _, ids_a = check_no_leak(a, a.state)
            _, _, ids_b = check_no_leak(b, b.state)
            id_a = int(a.state.ids[me(a, a.state)[2]])
            id_b = int(b.state.ids[me(b, b.state)[2]])
            assert id_b not in ids_a and id_a not in ids_b
            assert not ids_a & ids_b, "nothing around one player reaches the other"
            tick = -1
            while True:  # walk towards each other (200 units/s each) until each holds the other
                await a.send_input([1, 1])
                await b.send_input([-1, -1])
                st_a = await a.wait_state(tick)
                tick = st_a.tick
                _, _, seen_a = check_no_leak(a, st_a)
                _, _, seen_b = check_no_leak(b, b.state)
                if id_b in seen_a and id_a in seen_b:
                    break
            xa, ya, _ = me(a, a.state)
            xb, yb, _ = me(b, b.state)
            assert math.hypot(xa - xb, ya - yb) <= REACH
            # a player's ack is private: its own client has it, the other holds 0 in it
            for c, other in ((a, id_b), (b, id_a)):
                st = c.state
                ack = st.wire(c.schema, "ack").astype(np.int64)
                mine = me(c, st)[2]
                assert ack[mine] > 0 and ack[int(np.flatnonzero(st.ids == other)[0])] == 0


async def test_a_protocol_3_join_to_a_view_room_is_refused_and_says_which_version_it_needs():
    with trio.fail_after(10):
        async with running_server(games=games(), default_game="placed") as (server, url), raw_client(url) as c:
            await c.send([1, 3, "big", "old", "placed"])
            closed = await c.closed()
            assert closed.code == 4001 and "needs protocol 4" in closed.reason


async def test_a_view_rooms_welcome_describes_its_grid_and_its_snapshots_are_view_payloads():
    with trio.fail_after(10):
        async with running_server(games=games(), default_game="placed") as (server, url), raw_client(url) as c:
            w = await c.join("big", "p@100,100", "placed")
            assert w.version == p.PROTOCOL_VERSION == 5 and w.view is not None
            assert w.view["cell"] == 250.0 and w.view["cols"] == w.view["rows"] == 13
            assert w.view["everyone"] == 169 and w.view["radius"] == R
            s = await c.snapshot()
            assert s.flags == 2 and s.base == NO_TICK


async def test_a_resumed_seat_starts_again_from_a_full_view_snapshot():
    with trio.fail_after(20):
        async with running_server(games=games(), default_game="placed") as (server, url), \
                open_client(url, "big", "p@900,900", "placed") as a:
            await a.wait_state()
            first = a.proto
            a._ws._stream.socket.close()  # the network goes away under the client: it resumes its seat
            await wait_for(lambda: a.proto is not first and a.state is not None, 10)
            assert a.resumes == 1
            check_no_leak(a, a.state)


async def test_a_room_without_interest_sends_everyone_everything():
    with trio.fail_after(15):
        async with running_server(games=games(), default_game="bigworld",
                                  game_options={"npcs": 2000, "interest": False}) as (server, url), \
                open_client(url, "big", "p", "bigworld") as a:
            st = await a.wait_state()
            assert a.proto.welcome.view is None
            assert int(st.alive.sum()) == 2001


# ---- who sees what: scopes and exceptions (room.views), without sockets ----------------------------

class FakeSession:
    def __init__(self, cid: int) -> None:
        self.id = cid
        self.view = ClientView()


class ViewsRig:
    """A bigworld room's Views driven by hand: one mirror per client."""

    def __init__(self, clients: int) -> None:
        self.game = BigWorld(npcs=100_000)  # a 10,000-unit side; setup (which spawns them) is not called
        self.world = World(self.game.schema)
        self.views = Views(self.world, self.game.schema, self.game.interest, 32)
        self.sessions = [FakeSession(i + 1) for i in range(clients)]
        self.mirrors = {s.id: ViewMirror(self.game.schema, private=["ack"]) for s in self.sessions}
        self.tick = 0

    def spawn(self, x: float, y: float) -> int:
        return int(self.world.spawn(1, x=x, y=y, hp=1)[0])

    def step(self) -> dict[int, set[int]]:
        st = State.capture(self.world, self.tick)
        self.views.push(st)
        seen = {}
        for s, out in self.views.encode(self.sessions, RoomStats()):
            s.view.commit(out.view)
            m = self.mirrors[s.id]
            m.apply(out.tick, out.base, out.ref, out.payload)
            got = m.state()
            seen[s.id] = {int(i) for i in got.ids[got.alive]}
        self.tick += 1
        return seen

    def eid(self, slot: int) -> int:
        return int(self.world.ids[slot])


def test_scopes_everyone_team_and_owner_decide_who_holds_an_entity_wherever_it_is():
    rig = ViewsRig(3)
    v = rig.views
    for cid, (x, y) in zip((1, 2, 3), ((100.0, 100.0), (5000.0, 5000.0), (9000.0, 9000.0)), strict=True):
        v.focus(cid, point=(x, y))
    boss, flag, secret, rock = (rig.spawn(7000.0, 200.0) for _ in range(4))
    v.scope([boss], "everyone")
    v.team(1, 7)
    v.team(2, 7)
    v.scope([flag], "team", 7)
    v.scope([secret], "owner", 3)
    seen = rig.step()
    b, f, s, r = (rig.eid(x) for x in (boss, flag, secret, rock))
    assert seen[1] == {b, f} and seen[2] == {b, f} and seen[3] == {b, s}
    v.scope([secret], "spatial")  # back to its place in the world: no one is near it
    v.team(2, None)
    seen = rig.step()
    assert seen[1] == {b, f} and seen[2] == {b} and seen[3] == {b}
    assert r not in set().union(*seen.values())


def test_show_and_hide_are_per_client_exceptions_to_what_it_would_see():
    rig = ViewsRig(2)
    v = rig.views
    v.focus(1, point=(1000.0, 1000.0))
    v.focus(2, point=(1000.0, 1000.0))
    near, far = rig.spawn(1100.0, 1000.0), rig.spawn(8000.0, 8000.0)
    n, f = rig.eid(near), rig.eid(far)
    assert rig.step() == {1: {n}, 2: {n}}
    v.hide(1, [near])  # a stealthy entity: client 1 must not know it is there
    v.show(2, [far])  # client 2 sees this one across the world
    assert rig.step() == {1: set(), 2: {n, f}}
    v.unset(1, [near])
    v.unset(2, [far])
    assert rig.step() == {1: {n}, 2: {n}}


def test_a_focus_on_an_entity_follows_it_and_stays_where_it_was_when_it_dies():
    rig = ViewsRig(1)
    v = rig.views
    walker = rig.spawn(500.0, 500.0)
    v.focus(1, slot=walker)
    there = rig.spawn(5000.0, 500.0)
    assert rig.eid(there) not in rig.step()[1]
    rig.world["x"][walker] = 4900.0
    assert rig.eid(there) in rig.step()[1]
    rig.world.despawn([walker])
    assert rig.step()[1] == {rig.eid(there)}


@pytest.mark.parametrize("r", [0.0, -5.0])
def test_a_view_radius_must_be_positive(r):
    with pytest.raises(ValueError):
        ViewsRig(1).views.radius(1, r)


def test_protocol_version_4_is_what_a_view_room_needs():
    assert p.VIEW_VERSION == 4 and p.VIEW_VERSION in p.SUPPORTED_VERSIONS


def test_private_fields_reach_only_their_owner_not_even_as_bytes_in_anyone_elses_payload():
    rig = ViewsRig(2)
    v = rig.views
    v.focus(1, point=(1000.0, 1000.0))
    v.focus(2, point=(1000.0, 1000.0))
    a, b = rig.spawn(1010.0, 1000.0), rig.spawn(990.0, 1000.0)
    v.own([a], 1)
    v.own([b], 2)
    secret_a, secret_b = 0xDEADBEEF, 0xC0FFEE42
    sent: dict[int, list[bytes]] = {1: [], 2: []}
    for t in range(6):
        rig.world["ack"][a], rig.world["ack"][b] = secret_a + t, secret_b + t  # changes every tick
        st = State.capture(rig.world, rig.tick)
        v.push(st)
        for s, out in v.encode(rig.sessions, RoomStats()):
            s.view.commit(out.view)
            sent[s.id].append(out.payload)
            rig.mirrors[s.id].apply(out.tick, out.base, out.ref, out.payload)
        rig.tick += 1
        for cid, mine, other, secret in ((1, a, b, secret_a), (2, b, a, secret_b)):
            got = rig.mirrors[cid].state()
            ack = got.wire(rig.game.schema, "ack")
            assert int(ack[mine]) == secret + t and int(ack[other]) == 0
    for cid, other_secret in ((1, secret_b), (2, secret_a)):
        for t, payload in enumerate(sent[cid]):
            assert (other_secret + t).to_bytes(4, "little") not in payload


def test_private_fields_follow_a_change_of_owner_at_the_next_tick():
    rig = ViewsRig(2)
    v = rig.views
    for cid in (1, 2):
        v.focus(cid, point=(1000.0, 1000.0))
    a = rig.spawn(1010.0, 1000.0)
    v.own([a], 1)
    for t in range(8):
        if t == 3:
            v.own([a], 2)  # handed over: from this tick on client 2 gets it, client 1 never again
        if t == 6:
            v.own([a], None)  # no one owns it
        rig.world["ack"][a] = 1000 + t
        v.push(State.capture(rig.world, rig.tick))
        for s, out in v.encode(rig.sessions, RoomStats()):
            s.view.commit(out.view)
            rig.mirrors[s.id].apply(out.tick, out.base, out.ref, out.payload)
            owner = 1 if t < 3 else 2 if t < 6 else None
            seen = int(rig.mirrors[s.id].state().wire(rig.game.schema, "ack")[a])
            assert seen == (1000 + t if s.id == owner else 0), (t, s.id, seen)
            if s.id != owner:
                assert (1000 + t).to_bytes(4, "little") not in out.payload
        rig.tick += 1


def test_a_pacing_client_holds_everything_within_r_nothing_beyond_2r_and_keeps_its_cells():
    rig = ViewsRig(1)
    v = rig.views
    xs, ys = np.meshgrid(np.arange(3000.0, 5000.0, 37.0), np.arange(3000.0, 5000.0, 41.0))
    slots = rig.world.spawn(xs.size, x=xs.ravel(), y=ys.ravel(), hp=1)
    listings = []
    for t in range(120):
        x = 4000.0 + (40.0 if t % 2 else -40.0)  # back and forth over x = 4000 (and 3500, 4500): cell borders
        v.focus(1, point=(x, 4100.0))
        built = v.planner.listings_built
        held = rig.step()[1]
        listings.append(v.planner.listings_built - built)
        d = np.hypot(xs.ravel() - x, ys.ravel() - 4100.0)
        ids = rig.world.ids[slots]
        assert {int(i) for i in ids[d <= R]} <= held
        assert not held & {int(i) for i in ids[d > REACH]}
    assert sum(listings[10:]) < 10  # pacing within the margin adds no cell again


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_cells_to_watch_for_all_clients_at_once_are_each_clients_own_rule(data):
    """``plain_wants`` (every moved client of a plain room in a few array passes) gives what
    ``want_one`` gives client by client: the same cells, and the held list itself when unchanged."""
    grid = ViewsRig(1).views.grid
    n = data.draw(st.integers(1, 12))
    xs = np.array(data.draw(st.lists(st.floats(-100.0, 10_100.0), min_size=n, max_size=n)))
    ys = np.array(data.draw(st.lists(st.floats(-100.0, 10_100.0), min_size=n, max_size=n)))
    rs = np.array(data.draw(st.lists(st.floats(1.0, 1500.0), min_size=n, max_size=n)))
    margin = data.draw(st.floats(0.0, 300.0))
    must, may = grid.spans(xs, ys, rs), grid.spans(xs, ys, rs + margin)
    views, twins = [], []
    for i in range(n):
        near = grid.cells_of_span(must[i])
        pool = near + grid.cells_of_span(may[i]) + [grid.everyone, grid.everyone + 3]  # + a left-over scope cell
        held = sorted(set(data.draw(st.lists(st.sampled_from(pool + [0, grid.count - 1]), max_size=40))))
        if data.draw(st.booleans()):  # often: a view that holds exactly what it must
            held = near + [grid.everyone]
        v, w = (ClientView(held=list(held), held_set=set(held), held_arr=np.array(held, dtype=np.int64))
                for _ in range(2))
        views.append(v)
        twins.append((w, near + [grid.everyone], grid.cells_of_span(may[i])))
    plain_wants(grid, views, must, may)
    for v, (w, need, wide) in zip(views, twins, strict=True):
        want_one(w, need, wide)
        assert v.want == w.want
        assert (v.want is v.held) == (w.want is w.held)
