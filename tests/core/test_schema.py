"""Field quantisation, wire dtypes and schema descriptions (gamesync.core.schema)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.core.schema import TAU, Angle, Field, Float, Int, Schema

FAST = settings(max_examples=200, deadline=None)


def _f32_slack(x: np.ndarray) -> np.ndarray:
    """Rounding the dequantised value to float32 may add up to half a float32 ulp on top."""
    return np.spacing(np.abs(x).astype(np.float32)).astype(np.float64)


# ---- float fields ---------------------------------------------------------------------------

float_specs = st.sampled_from([
    (0.0, 1000.0, 1 / 64),
    (-50.0, 50.0, 0.01),
    (-1.0, 1.0, 1 / 1024),
    (0.0, 1.0, 0.3),  # range not a multiple of the step
    (-1e6, 1e6, 0.5),
    (10.0, 20.0, 2.5),
])


@FAST
@given(spec=float_specs, frac=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_float_quantise_error_is_at_most_half_a_step_inside_the_range(spec, frac):
    lo, hi, step = spec
    f = Float("x", lo, hi, step)
    v = (lo + (hi - lo) * np.asarray(frac)).astype(np.float32)
    v = np.clip(v, np.float32(lo), np.float32(hi))
    q = f.quantise(v)
    assert q.dtype == f.wire_dtype
    assert int(q.min()) >= 0 and int(q.max()) <= f.levels
    back = f.dequantise(q)
    assert back.dtype == np.float32
    err = np.abs(back.astype(np.float64) - v.astype(np.float64))
    assert np.all(err <= step / 2 + _f32_slack(v) + 1e-9), (v, back, err)


@FAST
@given(spec=float_specs, frac=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_float_quantise_is_idempotent_on_dequantised_values(spec, frac):
    lo, hi, step = spec
    f = Float("x", lo, hi, step)
    v = (lo + (hi - lo) * np.asarray(frac)).astype(np.float32)
    q = f.quantise(v)
    assert np.array_equal(f.quantise(f.dequantise(q)), q)


@FAST
@given(spec=float_specs, over=st.floats(1e-3, 1e12), below=st.booleans())
def test_float_values_outside_the_range_clip_to_the_end_levels(spec, over, below):
    lo, hi, step = spec
    f = Float("x", lo, hi, step)
    v = np.array([lo - over if below else hi + over + step], dtype=np.float64)
    q = int(f.quantise(v)[0])
    assert q == (0 if below else f.levels)


def test_float_clipping_extremes_and_infinities():
    f = Float("x", 0, 1000, 1 / 64)
    q = f.quantise(np.array([-1.0, -1e30, -np.inf, 1000.0, 1001.0, 1e30, np.inf], dtype=np.float32))
    assert q.tolist() == [0, 0, 0, 64000, 64000, 64000, 64000]
    assert f.dequantise(q).tolist() == [0.0, 0.0, 0.0, 1000.0, 1000.0, 1000.0, 1000.0]


def test_float_levels_round_up_when_the_range_is_not_a_multiple_of_the_step():
    f = Float("x", 0.0, 1.0, 0.3)
    assert f.levels == 4  # 0, .3, .6, .9, 1.2: 1.0 is within half a step of 0.9 or 1.2
    assert int(f.quantise(np.array([1.0]))[0]) == 3


@pytest.mark.parametrize(("lo", "hi", "step", "wire"), [
    (0, 1000, 1 / 64, "<u2"),  # 64000 levels
    (0, 255, 1, "<u1"),
    (0, 256, 1, "<u2"),
    (0, 65535, 1, "<u2"),
    (0, 65536, 1, "<u4"),
    (-1, 1, 1 / 64, "<u1"),  # 128 levels
    (-1e6, 1e6, 1 / 1024, "<u4"),
])
def test_float_wire_dtype_is_the_smallest_unsigned_holding_all_levels(lo, hi, step, wire):
    assert Float("x", lo, hi, step).wire_dtype == np.dtype(wire)


def test_float_with_more_than_32_bits_of_levels_is_rejected():
    with pytest.raises(ValueError):
        Float("x", 0, 1e10, 1e-3).wire_dtype


# ---- angle fields -----------------------------------------------------------------------------

def test_angle_full_turn_and_zero_quantise_to_zero():
    a = Angle("a", 12)
    assert a.quantise(np.array([0.0, TAU, 2 * TAU, -TAU])).tolist() == [0, 0, 0, 0]
    assert int(a.quantise(np.array([TAU], dtype=np.float32))[0]) == 0


def test_negative_angles_wrap_into_the_upper_part_of_the_turn():
    a = Angle("a", 12)
    q = a.quantise(np.array([-math.pi / 2, -math.pi, -TAU / 4096, 3 * math.pi / 2]))
    assert q.tolist() == [3072, 2048, 4095, 3072]
    assert np.allclose(a.dequantise(q[:1]), 3 * math.pi / 2, atol=1e-6)


@pytest.mark.parametrize(("bits", "wire"), [(2, "<u1"), (8, "<u1"), (9, "<u2"), (12, "<u2"), (16, "<u2"),
                                            (17, "<u4"), (32, "<u4")])
def test_angle_wire_dtype_and_modulus(bits, wire):
    a = Angle("a", bits)
    assert a.wire_dtype == np.dtype(wire)
    assert a.modulus == 1 << bits
    q = a.quantise(np.linspace(-20, 20, 101))
    assert int(q.min()) >= 0 and int(q.max()) < (1 << bits)


@FAST
@given(bits=st.sampled_from([4, 8, 12, 16, 24, 32]), turns=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=30))
def test_angle_error_is_at_most_half_a_step_modulo_a_turn(bits, turns):
    a = Angle("a", bits)
    v = np.asarray(turns) * TAU
    back = a.dequantise(a.quantise(v)).astype(np.float64)
    diff = np.abs(np.remainder(back - v + math.pi, TAU) - math.pi)
    step = TAU / (1 << bits)
    assert np.all(diff <= step / 2 + 1e-6), diff


@FAST
@given(bits=st.sampled_from([8, 12, 16]), q=st.integers(0, 1 << 16), k=st.integers(-5, 5))
def test_angle_whole_turns_do_not_change_the_quantised_value(bits, q, k):
    a = Angle("a", bits)
    q %= 1 << bits
    v = q * (TAU / (1 << bits))
    assert int(a.quantise(np.array([v + k * TAU]))[0]) == q


def test_angle_bits_must_be_2_to_32():
    for bad in (0, 1, 33):
        with pytest.raises(ValueError):
            Angle("a", bad)


# ---- int fields --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["u1", "u2", "u4", "i1", "i2", "i4"])
def test_int_values_clip_to_the_dtype_range(dtype):
    f = Int("n", dtype)
    info = np.iinfo(dtype)
    v = np.array([int(info.min) - 1000, int(info.min), 0, 7, int(info.max), int(info.max) + 1000], dtype=np.int64)
    q = f.quantise(v)
    assert q.dtype == np.dtype("<" + dtype) == f.wire_dtype
    assert q.tolist() == [info.min, info.min, 0, 7, info.max, info.max]
    assert f.column_dtype == np.dtype(dtype)
    assert f.dequantise(q).tolist() == q.tolist()


@FAST
@given(dtype=st.sampled_from(["u1", "u2", "u4", "i1", "i2", "i4"]), vals=st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1))
def test_int_quantise_equals_clip(dtype, vals):
    info = np.iinfo(dtype)
    q = Int("n", dtype).quantise(np.array(vals, dtype=np.int64))
    assert q.tolist() == [min(max(v, int(info.min)), int(info.max)) for v in vals]


def test_bad_int_dtype_rejected():
    for bad in ("i8", "u8", "f4", "<i4"):
        with pytest.raises(ValueError):
            Int("n", bad)


# ---- field and schema validation ----------------------------------------------------------------

def test_bad_field_specs_rejected():
    with pytest.raises(ValueError):
        Float("x", 1, 1, 0.1)
    with pytest.raises(ValueError):
        Float("x", 0, 1, 0)
    with pytest.raises(ValueError):
        Float("x", 0, 1, -1)
    with pytest.raises(ValueError):
        Field("x", "vector")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Int("not an identifier")
    with pytest.raises(ValueError):
        Int("1x")


@pytest.mark.parametrize("name", ["id", "alive"])
def test_reserved_field_names_rejected(name):
    with pytest.raises(ValueError):
        Schema([Int(name)])
    with pytest.raises(ValueError):
        Schema([Float("x", 0, 1, 0.1), Int(name)])


def test_duplicate_field_names_rejected():
    with pytest.raises(ValueError):
        Schema([Int("x"), Float("x", 0, 1, 0.1)])


def _schema() -> Schema:
    return Schema([
        Float("x", 0, 1000, 1 / 64),
        Float("y", -50.0, 50.0, 0.01),
        Angle("a", 12),
        Angle("spin", 32),
        Int("hp", "u1"),
        Int("score", "i4"),
        Int("big", "u4"),
        Int("t", "i1"),
        Int("u", "u2"),
        Int("s", "i2"),
    ])


def test_schema_order_index_and_wrap_info():
    s = _schema()
    assert [f.name for f in s] == ["x", "y", "a", "spin", "hp", "score", "big", "t", "u", "s"]
    assert len(s) == 10
    assert s.index("hp") == 4
    assert s.by_name["a"].bits == 12
    assert s.wrap_info == ((2, 4095, 2048),)  # the 32-bit angle wraps as int32 arithmetic does


def test_schema_to_wire_describes_every_field():
    w = _schema().to_wire()
    assert w[0] == {"name": "x", "kind": "float", "wire": "<u2", "lo": 0, "hi": 1000, "step": 1 / 64,
                    "predict": "linear"}
    assert w[2] == {"name": "a", "kind": "angle", "wire": "<u2", "bits": 12, "predict": "linear"}
    assert w[3] == {"name": "spin", "kind": "angle", "wire": "<u4", "bits": 32, "predict": "linear"}
    assert w[4] == {"name": "hp", "kind": "int", "wire": "<u1", "predict": "linear"}
    assert w[5] == {"name": "score", "kind": "int", "wire": "<i4", "predict": "linear"}
    held = Schema([Int("hp", "u1", predict="hold")]).to_wire()[0]
    assert held["predict"] == "hold"
    assert Schema.from_wire([held]).fields[0].predict == "hold"
    with pytest.raises(ValueError, match="predict"):
        Int("hp", predict="quadratic")  # type: ignore[arg-type]


def test_schema_wire_round_trip_rebuilds_identical_fields():
    s = _schema()
    back = Schema.from_wire(s.to_wire())
    assert back.fields == s.fields
    assert back.to_wire() == s.to_wire()
    assert back.wrap_info == s.wrap_info
    assert [f.wire_dtype for f in back] == [f.wire_dtype for f in s]


def test_schema_wire_round_trip_through_msgpack():
    import msgpack

    s = _schema()
    back = Schema.from_wire(msgpack.unpackb(msgpack.packb(s.to_wire()), raw=False))
    assert back.fields == s.fields


def test_schema_from_wire_rejects_garbage():
    with pytest.raises(ValueError):
        Schema.from_wire({"name": "x"})
    with pytest.raises(ValueError):
        Schema.from_wire([{"name": "x", "kind": "vector"}])
    with pytest.raises(ValueError):
        Schema.from_wire([{"name": "id", "kind": "int", "wire": "<i4"}])


@FAST
@given(st.lists(st.floats(-10.0, 110.0, allow_nan=False), min_size=1, max_size=50))
def test_snap_lands_on_a_value_the_field_sends_exactly(xs):
    f = Float("x", 0.0, 100.0, 1 / 64)
    v = np.asarray(xs)
    s = f.snap(v)
    assert np.all(np.abs(s - v) <= f.step / 2 + 1e-12)
    inside = (s >= 0) & (s <= 100)
    # on the grid: quantise then dequantise gives the snapped value back, bit for bit
    assert np.array_equal(f.dequantise(f.quantise(s[inside])).astype(np.float64), s[inside])


def test_snap_of_an_angle_is_a_whole_number_of_steps_and_ints_pass_through():
    a = Angle("h", bits=8)
    s = a.snap(np.array([0.01, 1.0, -0.5]))
    steps = s / (TAU / 256)
    assert np.allclose(steps, np.rint(steps))
    assert np.array_equal(a.quantise(s.astype(np.float32)), a.quantise(np.float32(s)))
    ints = np.array([3, -2])
    assert Int("n").snap(ints) is ints
