"""View payloads (core.viewplan on the server, core.viewmirror on the client), sans I/O.

The central property: whatever the world does (entities walking across cells, spawning,
dying, slots reused, 32-bit counters wrapping) and whatever each client does (its focus
walking or jumping, its radius changing, snapshots it never got because its socket was full,
a new connection starting afresh), every client's mirror after every snapshot it decodes is
bit for bit the server's world restricted to the cells it watches; and nothing it holds is
farther from its focus than its radius plus a cell's diagonal.
"""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gamesync import native
from gamesync.core.errors import DesyncError, PayloadError
from gamesync.core.interest import Grid, Interest
from gamesync.core.protocol import NO_TICK
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import State
from gamesync.core.viewcodec import CellMap, encode_chunks
from gamesync.core.viewmirror import VIEW_FLAGS, ChunkCache, ViewCounts, ViewMirror, ViewStates
from gamesync.core.viewplan import ClientView, ViewPlanner
from gamesync.core.viewwire import record_dtype
from gamesync.core.world import World
from gamesync.native import packing

SIDE = 2000.0


def schema(side: float = SIDE, step: float = 1 / 64) -> Schema:
    return Schema([
        Float("x", 0, side, step), Float("y", 0, side, step), Angle("heading", 12, predict="hold"),
        Int("hp", "u1", predict="hold"), Int("ack", "u4"), Int("level", "i2"),
    ])


class Client:
    """``packed``: a version 5 client (packed record lists); else version 4."""

    def __init__(self, sch: Schema, focus: np.ndarray, radius: float, cache: ChunkCache | None = None,
                 packed: bool = False) -> None:
        self.packed = packed
        self.view = ClientView(packed=packed)
        self.mirror = ViewMirror(sch, cache, packed=packed)
        self.counts = ViewCounts(sch, cache)
        # the same counts through the native walk over the kept bin (a bot swarm's), where built
        self.native = ChunkCache(count_chunks=packing.chunk_counter())
        self.counts_native = ViewCounts(sch, self.native)
        self.focus = focus
        self.radius = radius

    def reconnect(self, sch: Schema) -> None:
        self.view = ClientView(packed=self.packed)
        self.mirror = ViewMirror(sch, self.mirror.cache, packed=self.packed)
        self.counts = ViewCounts(sch, self.mirror.cache)
        self.counts_native = ViewCounts(sch, self.native)


def held_matches(client: Client, st: State, cells: np.ndarray, watched: list[int]) -> None:
    want = np.flatnonzero(st.alive & np.isin(cells, watched))
    got = client.mirror.state()
    have = np.flatnonzero(got.alive)
    assert np.array_equal(have, want)
    assert np.array_equal(got.ids[have], st.ids[want])
    assert np.array_equal(got.mat[:, have], st.mat[:, want])
    assert client.counts.count == want.size == client.mirror.count
    assert client.counts_native.counts == client.counts.counts


def random_world(sch: Schema, rng: np.random.Generator, n: int) -> World:
    """``n`` entities at random places, their 32-bit ``ack`` about to wrap."""
    w = World(sch)
    w.spawn(n, x=rng.uniform(0, SIDE, n).astype(np.float32), y=rng.uniform(0, SIDE, n).astype(np.float32),
            hp=100, ack=rng.integers(2**32 - 40, 2**32, n).astype(np.uint32), level=rng.integers(-5, 5, n))
    return w


def run_world(seed: int, n: int, ticks: int, cell: float, nclients: int, shared: bool) -> None:
    sch = schema()
    rng = np.random.default_rng(seed)
    w = random_world(sch, rng, n)
    grid = Grid(sch, Interest(cell=cell, radius=2 * cell))
    plan = ViewPlanner(sch, 32)
    cache = ChunkCache() if shared else None
    # version 4 and version 5 clients in one room: each gets its own records, the same chunks
    clients = [Client(sch, rng.uniform(0, SIDE, 2), 2 * cell, cache, packed=i % 2 == 0) for i in range(nclients)]
    vel = rng.normal(0, 8, (2, 1 << 12)).astype(np.float32)
    for t in range(ticks):
        step_world(w, rng, vel)
        st = State.capture(w, t)
        cells = grid.cells_of(st.mat)
        plan.push(st, cells, grid.count)
        going: list[tuple[Client, list[int]]] = []
        for i, c in enumerate(clients):
            move_client(c, rng, sch)
            if rng.random() < 0.15 and i:  # its socket was full: this frame never went out
                continue
            going.append((c, grid.cells_near(float(c.focus[0]), float(c.focus[1]), c.radius)))
        frames = plan.frames([c.view for c, _ in going], [w for _, w in going])  # as the room builds them
        for (c, watched), fr in zip(going, frames, strict=True):
            c.view.commit(fr)
            c.mirror.apply(fr.tick, fr.base, fr.ref, fr.payload)
            c.counts.apply(fr.tick, fr.base, fr.ref, fr.payload)
            c.counts_native.apply(fr.tick, fr.base, fr.ref, fr.payload)
            held_matches(c, st, cells, watched)
            assert fr.entities == c.mirror.count
            reach = c.radius + cell * math.sqrt(2) + 1 / 64
            got = c.mirror.state()
            xs, ys = got.column(sch, "x")[got.alive], got.column(sch, "y")[got.alive]
            assert (np.hypot(xs - c.focus[0], ys - c.focus[1]) <= reach).all()


def step_world(w: World, rng: np.random.Generator, vel: np.ndarray) -> None:
    n = w.n
    if n == 0:
        w.spawn(1, x=rng.uniform(0, SIDE), y=rng.uniform(0, SIDE))
        return
    live = w.alive[:n]
    for axis, name in enumerate(("x", "y")):
        col = w[name][:n]
        col += vel[axis, :n] * live
        np.clip(col, 0, SIDE, out=col)
    if rng.random() < 0.3:
        vel[:, rng.integers(0, n, 10)] = rng.normal(0, 8, (2, 10))
    if rng.random() < 0.05:  # a few teleport across the world
        s = rng.integers(0, n, 3)
        w["x"][s], w["y"][s] = rng.uniform(0, SIDE, 3), rng.uniform(0, SIDE, 3)
    if rng.random() < 0.2:
        w.despawn(rng.integers(0, n, 4))
    if rng.random() < 0.2:
        k = int(rng.integers(1, 5))
        w.spawn(k, x=rng.uniform(0, SIDE, k).astype(np.float32), y=rng.uniform(0, SIDE, k).astype(np.float32),
                heading=rng.uniform(0, 6, k).astype(np.float32), ack=rng.integers(0, 2**32, k).astype(np.uint32))
    w["ack"][:n] += 1  # wraps past 2**32
    w["heading"][:n][rng.random(n) < 0.02] = rng.uniform(0, 6.28)


def move_client(c: Client, rng: np.random.Generator, sch: Schema) -> None:
    c.focus += rng.normal(0, 40, 2)
    np.clip(c.focus, 0, SIDE, out=c.focus)
    r = rng.random()
    if r < 0.03:
        c.focus[:] = rng.uniform(0, SIDE, 2)  # a jump: a respawn, a teleport
    elif r < 0.06:
        c.radius = float(rng.choice([200.0, 400.0, 700.0]))  # zoom
    elif r < 0.08:
        c.reconnect(sch)  # a new connection starts from a full snapshot


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), cell=st.sampled_from([125.0, 250.0, 400.0]),
       shared=st.booleans())
# two bots share a decoded empty cell; later one entity walks into it, with the same chunk bytes
# a tick apart: the arrival's values come from outside the cell, so that must not be a cache hit
@example(seed=1566, n=164, cell=125.0, shared=True)
def test_every_client_holds_exactly_the_world_in_its_cells_bit_for_bit(seed, n, cell, shared):
    run_world(seed, n, 60, cell, 4, shared)


def test_a_long_run_with_many_clients_stays_exact():
    run_world(7, 800, 200, 250.0, 8, True)


@pytest.mark.skipif(not packing.available(), reason="the native extension is not built here")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), cell=st.sampled_from([125.0, 250.0, 400.0]))
def test_the_native_chunk_writer_lays_out_the_same_bytes_as_numpy(seed, n, cell):
    """Entities walking, teleporting, spawning, dying: every chunk set, against the previous
    tick and against older ones (and without a reference), is the same bytes on both paths."""
    sch = schema()
    rng = np.random.default_rng(seed)
    w = random_world(sch, rng, n)
    grid = Grid(sch, Interest(cell=cell, radius=2 * cell))
    was = native.use_native(True)  # the native writer even under GAMESYNC_PURE=1
    write = packing.chunk_writer()
    native.use_native(was)
    dt, maps = record_dtype(sch), []
    vel = rng.normal(0, 8, (2, 1 << 12)).astype(np.float32)
    for t in range(30):
        step_world(w, rng, vel)
        st = State.capture(w, t)
        maps.append(CellMap.build(st, grid.cells_of(st.mat), grid.count))
        for back, ref_back in ((1, 2), (1, None), (3, 5)):
            if t - back < 0:
                continue
            ref = maps[t - ref_back].state if ref_back is not None and t - ref_back >= 0 else None
            numpy_set = encode_chunks(sch, dt, maps[t], maps[t - back], ref, grid.count)
            native_set = encode_chunks(sch, dt, maps[t], maps[t - back], ref, grid.count, write)
            assert native_set.blob == numpy_set.blob
            assert np.array_equal(native_set.start, numpy_set.start)
            assert np.array_equal(native_set.moved_slot, numpy_set.moved_slot)


# ---- the wire, piece by piece --------------------------------------------------------------------

def small_room(n: int = 50) -> tuple[Schema, World, Grid, ViewPlanner]:
    sch = schema()
    w = World(sch)
    rng = np.random.default_rng(3)
    w.spawn(n, x=rng.uniform(0, SIDE, n).astype(np.float32), y=rng.uniform(0, SIDE, n).astype(np.float32), hp=9)
    return sch, w, Grid(sch, Interest(cell=250.0, radius=500.0)), ViewPlanner(sch, 32)


def push(plan: ViewPlanner, grid: Grid, w: World, t: int) -> State:
    st = State.capture(w, t)
    plan.push(st, grid.cells_of(st.mat), grid.count)
    return st


def test_first_snapshot_is_full_and_lists_every_watched_cell_with_its_count():
    sch, w, grid, plan = small_room()
    st = push(plan, grid, w, 0)
    watched = grid.cells_near(1000.0, 1000.0, 500.0)
    fr = plan.frame(ClientView(), watched)
    assert (fr.base, fr.ref) == (NO_TICK, NO_TICK)
    dropped, kept, added, enter = msgpack.unpackb(fr.payload)
    assert dropped == b"" and kept == b"" and enter == [0, b""]
    assert [a[0] for a in added] == watched
    cells = grid.cells_of(st.mat)
    assert [a[1] for a in added] == [int((cells == c).sum()) for c in watched]


def test_nothing_moving_costs_one_byte_per_kept_cell():
    sch, w, grid, plan = small_room()
    push(plan, grid, w, 0)
    view = ClientView()
    watched = grid.cells_near(1000.0, 1000.0, 500.0)
    view.commit(plan.frame(view, watched))
    push(plan, grid, w, 1)
    fr = plan.frame(view, watched)
    dropped, kept, added, enter = msgpack.unpackb(fr.payload)
    assert (fr.base, fr.ref) == (0, NO_TICK)
    assert kept == bytes(len(watched)) and dropped == b"" and added == [] and enter == [0, b""]


def test_a_snapshot_not_built_on_the_newest_held_is_a_desync():
    sch, w, grid, plan = small_room()
    push(plan, grid, w, 0)
    view, m = ClientView(), ViewMirror(sch)
    watched = grid.cells_near(500.0, 500.0, 500.0)
    fr = plan.frame(view, watched)
    m.apply(fr.tick, fr.base, fr.ref, fr.payload)
    push(plan, grid, w, 1)
    f1 = plan.frame(view, watched)  # built on tick 0 but never committed: stays on 0
    view.commit(f1)
    push(plan, grid, w, 2)
    f2 = plan.frame(view, watched)  # built on tick 1, which this mirror never got
    with pytest.raises(PayloadError, match="built on 1"):
        m.apply(f2.tick, f2.base, f2.ref, f2.payload)


@pytest.mark.parametrize("cut", [1, 3, 7])
def test_a_truncated_or_padded_kept_bin_is_refused(cut):
    sch, w, grid, plan = small_room(400)
    push(plan, grid, w, 0)
    view, m = ClientView(), ViewMirror(sch)
    watched = grid.cells_near(1000.0, 1000.0, 500.0)
    fr = plan.frame(view, watched)
    view.commit(fr)
    m.apply(fr.tick, fr.base, fr.ref, fr.payload)
    first = fr
    w["x"][: w.n] += 3.0
    w["x"][:5] += 400.0  # some cross cells
    push(plan, grid, w, 1)
    fr = plan.frame(view, watched)
    dropped, kept, added, enter = msgpack.unpackb(fr.payload)
    for bad in (kept[:-cut], kept + bytes(cut)):
        with pytest.raises(PayloadError):
            ViewMirror.apply(_copy(m, sch), fr.tick, fr.base, fr.ref, msgpack.packb([dropped, bad, added, enter]))
        for walk in (None, packing.chunk_counter()):  # a swarm's counting, in Python and native
            counts = ViewStates(sch, ChunkCache(count_chunks=walk), materialise=False)
            counts.apply(first.tick, first.base, first.ref, VIEW_FLAGS, first.payload)
            with pytest.raises(DesyncError):
                counts.apply(fr.tick, fr.base, fr.ref, VIEW_FLAGS, msgpack.packb([dropped, bad, added, enter]))
    m.apply(fr.tick, fr.base, fr.ref, fr.payload)  # the real one still decodes


def _copy(m: ViewMirror, sch: Schema) -> ViewMirror:
    c = ViewMirror(sch)
    c.cells, c.tick, c.prev = dict(m.cells), m.tick, m.prev
    return c


def test_records_carry_back_differences_that_wrap_in_the_wire_width():
    sch = schema()
    dt = record_dtype(sch)
    names = dt.names or ()
    assert names[:3] == ("slot", "id", "ref")
    assert [n for n in names if n.startswith("d_")] == ["d_x", "d_y", "d_ack", "d_level"]
    # x and y are <u4 on a 2000-unit side at 1/64 (128,000 steps), heading <u2, hp <u1, ack <u4, level <i2
    assert dt.itemsize == 9 + (4 + 4 + 2 + 1 + 4 + 2) + (4 + 4 + 4 + 2)


@settings(max_examples=50, deadline=None)
@given(pts=st.lists(st.tuples(st.floats(-100, SIDE + 100), st.floats(-100, SIDE + 100),
                              st.floats(1.0, 1500.0)), min_size=1, max_size=20),
       cell=st.sampled_from([100.0, 250.0, 333.0]))
def test_a_view_watches_exactly_the_cells_within_its_radius_alone_or_many_at_once(pts, cell):
    grid = Grid(schema(), Interest(cell=cell, radius=500.0))
    xs, ys, rs = (np.array(v, dtype=np.float64) for v in zip(*pts, strict=True))
    spans = grid.spans(xs, ys, rs)
    for (x, y, r), span in zip(pts, spans, strict=True):
        want = grid.cells_near(x, y, r)
        assert grid.cells_of_span(span) == want
        chosen = set(want)
        for c in range(grid.count):  # exactly the cells whose square comes within r of the point
            cx, cy = (c % grid.cols) * cell, (c // grid.cols) * cell
            dx = max(cx - x, 0.0, x - cx - cell)
            dy = max(cy - y, 0.0, y - cy - cell)
            d = math.hypot(dx, dy)
            assert (c in chosen) == (d <= r) or abs(d - r) < 1e-6
