"""The snapshot rows' native encoder (gamesync.native._pack.encode_rows, reached through
gamesync.native.packing.encode_rows) against its Python original, core.delta.encode_rows:
the same rows, the same ``changed`` list, the same payload bytes, for residual matrices built
to reach every row mode and both index widths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core import delta
from gamesync.core.delta import MODE_ABSOLUTE, MODE_DENSE, MODE_DENSE_OUTLIERS, MODE_SAME, MODE_SPARSE
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.state import History, State
from gamesync.core.world import World
from gamesync.native import packing
from paths import on_path

native = pytest.mark.skipif(not packing.available(), reason="the native extension is not built here")

WIRE = ("i1", "u1", "i2", "u2", "i4", "u4")
I32 = np.iinfo(np.int32)
# what a field's residuals look like: each reaches a different row mode
SHAPES = ("zero", "sparse", "small", "outliers", "wide", "extreme", "one")


def _row(rng: np.random.Generator, shape: str, k: int) -> np.ndarray:
    if shape == "zero" or k == 0:
        return np.zeros(k, dtype=np.int32)
    if shape == "one":
        r = np.zeros(k, dtype=np.int32)
        r[rng.integers(k)] = rng.integers(-300, 300) or 1
        return r
    if shape == "sparse":
        r = np.zeros(k, dtype=np.int32)
        at = rng.choice(k, size=max(1, k // 40), replace=False)
        r[at] = rng.integers(-40_000, 40_000, size=at.size)
        return r
    if shape == "small":
        return rng.integers(-128, 128, size=k).astype(np.int32)
    if shape == "outliers":
        r = rng.integers(-128, 128, size=k).astype(np.int32)
        at = rng.choice(k, size=max(1, k // rng.choice([5, 9, 20])), replace=False)
        r[at] = rng.integers(-3_000_000, 3_000_000, size=at.size)
        return r
    if shape == "wide":
        return rng.integers(-70_000, 70_000, size=k).astype(np.int32)
    return rng.choice(np.array([I32.min, I32.max, -1, 0, 1, 127, -129], dtype=np.int32), size=k)


def _case(seed: int, nf: int, k: int, shapes: list[str], quiet: float) -> tuple[Schema, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    schema = Schema([Int(f"f{i}", WIRE[int(rng.integers(len(WIRE)))]) for i in range(nf)])
    res = np.stack([_row(rng, shapes[i % len(shapes)], k) for i in range(nf)]) if nf else np.zeros((0, k), np.int32)
    if k and quiet:  # entities with no change in any field: ``changed`` lists the others
        res[:, rng.random(k) < quiet] = 0
    vals = rng.integers(I32.min, I32.max, size=(nf, k), dtype=np.int64).astype(np.int32)
    return schema, res, vals


def _both(schema: Schema, res: np.ndarray, vals: np.ndarray) -> None:
    with on_path(True):
        fast = packing.encode_rows(schema, res, vals)
    assert fast == delta.encode_rows(schema, res, vals)


@native
@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6), st.integers(0, 400),
       st.lists(st.sampled_from(SHAPES), min_size=1, max_size=6), st.sampled_from([0.0, 0.3, 0.6, 0.95]))
def test_the_native_rows_are_the_python_rows(seed: int, nf: int, k: int, shapes: list[str], quiet: float) -> None:
    _both(*_case(seed, nf, k, shapes, quiet))


@native
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 300), st.lists(st.sampled_from(SHAPES), min_size=1))
def test_strided_and_sliced_matrices_give_the_same_rows(seed: int, nf: int, k: int, shapes: list[str]) -> None:
    """The server hands over views (a state matrix's kept columns): not contiguous."""
    schema, res, vals = _case(seed, nf, 2 * k + 1, shapes, 0.5)
    _both(schema, res[:, 1::2], vals[:, 1::2])
    _both(schema, res[:, :k], vals[:, :k])


@native
def test_every_mode_and_both_index_widths_are_reached() -> None:
    """The cases above are not idle: each mode comes out of the native encoder, with 2- and
    4-byte positions (past 65,535 kept entities)."""
    seen: set[tuple[int, str]] = set()
    for k in (300, 70_000):
        for shape in SHAPES:  # field 0 changes everywhere, so every entity is kept in the rows
            schema, res, vals = _case(7, 2, k, ["small", shape], 0.0)
            if shape == "extreme":
                schema = Schema([Int("f0", "i1"), Int("f1", "i1")])  # int32 residuals, 1-byte values: absolute
            _both(schema, res, vals)
            with on_path(True):
                rows, _ = packing.encode_rows(schema, res, vals)
            mode = rows[1][0]
            index = {MODE_SPARSE: 1, MODE_DENSE_OUTLIERS: 2}.get(mode)  # where the row names its index dtype
            seen.add((mode, rows[1][index] if index is not None and k > 0xFFFF else ""))
    modes = {m for m, _ in seen}
    assert {MODE_SAME, MODE_SPARSE, MODE_DENSE, MODE_DENSE_OUTLIERS, MODE_ABSOLUTE} <= modes
    assert (MODE_SPARSE, "<u4") in seen and (MODE_DENSE_OUTLIERS, "<u4") in seen


@native
def test_payloads_built_with_the_native_rows_are_the_same_bytes() -> None:
    """Through ``encode_delta``, as the server builds its payloads (server/payloads.py): a
    world of walkers, some turning, some spawned and despawned, against baselines and
    references near and far."""
    schema = Schema([Float("x", 0, 1000, 1 / 64), Float("y", -50, 50, 0.01), Angle("a", 12), Angle("spin", 32),
                     Int("hp", "u1"), Int("score", "i4"), Int("big", "u4")])
    world = World(schema)
    rng = np.random.default_rng(5)
    world.spawn(300, x=rng.uniform(0, 1000, 300), y=rng.uniform(-50, 50, 300))
    vel = rng.integers(-3, 4, size=(2, 300)) / 64
    hist = History(16)
    for t in range(14):
        live = np.flatnonzero(world.alive)
        world["x"][live] += vel[0][live % 300]
        world["y"][live] += vel[1][live % 300] / 3
        turn = live[rng.random(live.size) < 0.1]
        world["a"][turn] = rng.uniform(0, 6.28, turn.size)
        world["score"][live[: t * 7]] += 1_000_000
        world["big"][live[:3]] = 4e9 if t % 2 else 0
        if t % 4 == 3:
            world.despawn(live[rng.random(live.size) < 0.05])
            world.spawn(5, x=rng.uniform(0, 1000, 5))
        hist.push(State.capture(world, t, hist.get(t - 1)))
        cur = hist.get(t)
        for base, ref in ((t - 1, t - 2), (t - 3, t - 5), (t - 1, -1), (-1, -1)):
            b = hist.get(base) if base >= 0 else None
            r = hist.get(ref) if ref >= 0 and b is not None else None
            with on_path(True):
                fast = delta.encode_delta(schema, cur, b, r, packing.encode_rows)
            assert fast == delta.encode_delta(schema, cur, b, r)


def test_the_python_path_keeps_the_python_rows() -> None:
    schema, res, vals = _case(1, 3, 50, ["small", "sparse"], 0.0)
    with on_path(False):
        assert packing.encode_rows(schema, res, vals) == delta.encode_rows(schema, res, vals)
