"""The state capture's native quantiser (gamesync.native._pack.quantise_rows, reached through
gamesync.native.packing.quantise_rows) against its Python original, core.state.quantise_rows:
the same int32 rows for every kind of field, every column dtype, values at rounding ties and
past the field's range, NaN and infinities, and blank rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core.schema import TAU, Angle, Float, Int, Schema
from gamesync.core.state import State, quantise_rows
from gamesync.core.world import World
from gamesync.native import packing
from paths import on_path

native = pytest.mark.skipif(not packing.available(), reason="the native extension is not built here")

INTS = ("i1", "u1", "i2", "u2", "i4", "u4")


@st.composite
def fields(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from(["float", "float", "angle", "int"]))
    name = f"f{draw(st.integers(0, 10**6))}"
    if kind == "float":
        lo = draw(st.sampled_from([0.0, -50.0, 3.25, -1e6]))
        step = draw(st.sampled_from([1 / 64, 0.01, 0.5, 1 / 1024, 3.0]))
        span = draw(st.sampled_from([10.0, 1000.0, 2e6, 3e9 * step]))  # the last: levels past 2**31
        return Float(name, lo, lo + span, step)
    if kind == "angle":
        return Angle(name, draw(st.sampled_from([2, 3, 8, 12, 16, 31, 32])))
    return Int(name, draw(st.sampled_from(INTS)))


def _column(rng: np.random.Generator, f: object, n: int, wild: bool) -> np.ndarray:
    """Values for field ``f``: mostly in range, some at half steps (ties for rint), some out
    of range; ``wild`` adds NaN, infinities and values past int64 once scaled."""
    if f.kind == "int":  # type: ignore[attr-defined]
        wire = f.wire_dtype  # type: ignore[attr-defined]
        if rng.random() < 0.7:  # the column has the wire dtype (the usual case, written in C)
            info = np.iinfo(wire)
            return rng.integers(info.min, info.max, size=n, endpoint=True, dtype=np.int64).astype(wire.newbyteorder("="))
        return rng.integers(-(2**40), 2**40, size=n).astype(rng.choice(["i8", "i4", "f4"]))  # the Python path's
    dt = np.float32 if rng.random() < 0.7 else np.float64
    if f.kind == "float":  # type: ignore[attr-defined]
        lo, step, hi = f.lo, f.step, f.hi  # type: ignore[attr-defined]
        v = lo + rng.integers(-20, 2 * int(min((hi - lo) / step, 1e6)) + 20, size=n) * (step / 2)
        far = rng.random(n) < 0.1
        v[far] = rng.uniform(lo - 1e9, hi + 1e9, size=int(far.sum()))
    else:
        v = rng.uniform(-4 * TAU, 4 * TAU, size=n)
        far = rng.random(n) < 0.2
        v[far] = rng.uniform(-1e12, 1e12, size=int(far.sum()))
    if wild and n:
        at = rng.integers(0, n, size=3)
        v[at] = rng.choice([np.nan, np.inf, -np.inf, 1e300, -1e300], size=3)
    with np.errstate(over="ignore"):  # 1e300 as float32 is infinity
        return v.astype(dt)


def _both(schema: Schema, cols: dict[str, np.ndarray], n: int, blank: tuple[int, ...]) -> None:
    want = np.full((len(schema), n), 7, dtype=np.int32)
    got = want.copy()
    with np.errstate(all="ignore"):  # NaN and infinities cast as numpy casts them
        quantise_rows(schema, cols, n, want, blank)
        with on_path(True):
            packing.quantise_rows(schema, cols, n, got, blank)
    np.testing.assert_array_equal(got, want)


@native
@settings(max_examples=300, deadline=None)
@given(st.lists(fields(), min_size=1, max_size=6, unique_by=lambda f: f.name), st.integers(0, 300),
       st.integers(0, 2**32 - 1), st.booleans(), st.data())
def test_the_native_rows_are_the_python_rows(fs: list, n: int, seed: int, wild: bool, data: st.DataObject) -> None:
    schema = Schema(fs)
    rng = np.random.default_rng(seed)
    cols = {f.name: _column(rng, f, n + int(rng.integers(0, 5)), wild) for f in fs}
    blank = tuple(sorted(data.draw(st.sets(st.integers(0, len(fs) - 1), max_size=2))))
    _both(schema, cols, n, blank)


@native
def test_a_strided_column_and_ties_at_half_steps() -> None:
    """Half steps round to even in both; a column that is a strided view is read as such."""
    schema = Schema([Float("x", 0, 100, 0.5), Angle("a", 3), Int("k", "u4")])
    x = np.arange(0, 100, 0.25, dtype=np.float64)[::2]  # 0, 0.5, 1.0, ...: every other a tie at 0.25-steps
    a = (np.arange(200) * (TAU / 16)).astype(np.float32)  # half-turn-steps of a 3-bit angle
    k = np.arange(200, dtype=np.uint32) * np.uint32(21_474_837)  # past 2**31 - 1: bit patterns
    _both(schema, {"x": x, "a": a, "k": k}, 200, ())
    out = np.zeros((3, 200), np.int32)  # and every row was the C loop's, none left to numpy
    assert packing._ext.quantise_rows([x, a, k], out, packing._quantise_spec(schema, ()), 200) == []


@native
def test_captures_through_the_native_quantiser_are_the_same_states() -> None:
    schema = Schema([Float("x", 0, 1000, 1 / 64), Angle("h", 12), Int("hp", "u1"), Int("id2", "u4")])
    w = World(schema)
    rng = np.random.default_rng(3)
    w.spawn(500, x=rng.uniform(-10, 1010, 500), h=rng.uniform(-7, 7, 500), hp=rng.integers(0, 256, 500))
    w.despawn(np.arange(0, 500, 7))
    prev = None
    for t in range(3):
        w["x"][:] += 0.3
        with on_path(True):
            fast = State.capture(w, t, prev, (1,), packing.quantise_rows)
        slow = State.capture(w, t, prev, (1,))
        assert fast.same_as(slow)
        prev = slow


@native
def test_columns_in_the_other_byte_order_or_missing_for_blank_rows_are_quantised_as_in_python() -> None:
    """A big-endian column is left to numpy (C reads the machine's order only); a blank row's
    column is never looked up, as in Python."""
    schema = Schema([Float("x", 0, 100, 0.5), Angle("a", 12), Int("k", "i4"), Int("gone", "u1")])
    cols = {"x": np.array([1.0, 2.26, 99.9], ">f4"), "a": np.array([0.5, -3.0, 7.0], ">f8"),
            "k": np.array([-5, 2**31 - 1, 7], ">i4")}
    _both(schema, cols, 3, (3,))


def test_the_python_path_keeps_the_python_rows() -> None:
    schema = Schema([Float("x", 0, 10, 0.5), Int("k", "i2")])
    cols = {"x": np.linspace(-1, 11, 30).astype(np.float32), "k": np.arange(30, dtype=np.int16)}
    want, got = np.zeros((2, 30), np.int32), np.zeros((2, 30), np.int32)
    quantise_rows(schema, cols, 30, want)
    with on_path(False):
        packing.quantise_rows(schema, cols, 30, got)
    np.testing.assert_array_equal(got, want)
