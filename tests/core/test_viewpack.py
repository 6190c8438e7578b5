"""Packed record lists (docs/protocol.md 18.3.1): what ``pack_lists`` writes, ``unpack_list``
reads back to the same fixed records, for any values the record's columns can hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import on_path

from gamesync import native
from gamesync.core.errors import PayloadError
from gamesync.core.schema import Angle, Float, Int, Schema
from gamesync.core.viewpack import code_bytes, pack_lists, unpack_list
from gamesync.core.viewwire import record_dtype
from gamesync.native import packing

SCHEMA = Schema([Float("x", 0, 10_000, 1 / 64), Float("y", 0, 10_000, 1 / 64), Angle("heading", 12, predict="hold"),
                 Int("hp", "u1", predict="hold"), Int("ack", "u4"), Int("level", "i2"), Int("tiny", "i1")])
DT = record_dtype(SCHEMA)


def _column(draw: st.DrawFn, t: np.dtype, n: int) -> list[int]:
    info = np.iinfo(t)
    kind = draw(st.sampled_from(["const", "near", "mid", "any", "edges"]))
    if kind == "const":
        return [draw(st.integers(info.min, info.max))] * n
    if kind == "edges":
        return [draw(st.sampled_from([info.min, info.max, 0])) for _ in range(n)]
    span = min({"near": 255, "mid": 65535, "any": info.max - info.min}[kind], info.max - info.min)
    lo = draw(st.integers(info.min, info.max - span))
    return [draw(st.integers(lo, lo + span)) for _ in range(n)]


@st.composite
def lists(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    counts = draw(st.lists(st.integers(0, 12), min_size=1, max_size=6))
    parts = []
    for n in counts:
        rec = np.zeros(n, dtype=DT)
        slots = sorted(draw(st.sets(st.integers(0, 2**32 - 1), min_size=n, max_size=n)))
        rec["slot"] = slots
        for name in DT.names:
            if name != "slot":
                rec[name] = _column(draw, DT.fields[name][0], n)
        parts.append(rec.tobytes())
    return b"".join(parts), counts


@settings(max_examples=300, deadline=None)
@given(lists())
def test_pack_then_unpack_gives_the_records_back(case: tuple[bytes, list[int]]) -> None:
    raw, counts = case
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, DT.itemsize)
    packed = pack_lists(DT, rows, np.array(counts))
    at = 0
    for data, n in zip(packed, counts, strict=True):
        want = raw[at:at + n * DT.itemsize]
        at += n * DT.itemsize
        got, end = unpack_list(DT, data, 0, n)
        assert got == want and end == len(data)
        assert (n == 0) == (data == b"")


def test_a_cell_of_npcs_packs_narrow() -> None:
    """Constant columns cost their base alone, positions within a cell two bytes, slots the step
    from the one before and ids nothing when id = slot + 1."""
    n = 60
    rec = np.zeros(n, dtype=DT)
    rec["slot"] = np.arange(n) * 1500 + 7
    rec["id"] = rec["slot"] + 1
    rec["ref"] = 1
    rec["v_x"] = 640_000 + np.arange(n) * 200
    rec["v_y"] = 320_000 + np.arange(n) * 100
    rec["v_hp"] = 100
    rec["d_x"] = np.arange(n) % 100 - 50
    data = pack_lists(DT, np.frombuffer(rec.tobytes(), dtype=np.uint8).reshape(n, -1), np.array([n]))[0]
    codes = int.from_bytes(data[:code_bytes(DT)], "little")
    by_name = {name: (codes >> (2 * j)) & 3 for j, name in enumerate(DT.names)}
    assert by_name == {"slot": 2, "id": 0, "ref": 0, "v_x": 2, "v_y": 2, "v_heading": 0, "v_hp": 0, "v_ack": 0,
                       "v_level": 0, "v_tiny": 0, "d_x": 1, "d_y": 0, "d_ack": 0, "d_level": 0, "d_tiny": 0}
    assert len(data) < n * DT.itemsize / 4
    assert unpack_list(DT, data, 0, n)[0] == rec.tobytes()


def test_bad_lists_are_payload_errors() -> None:
    rec = np.zeros(3, dtype=DT)
    rec["slot"] = [1, 5, 9]
    rec["v_x"] = [0, 70_000, 140_000]
    data = pack_lists(DT, np.frombuffer(rec.tobytes(), dtype=np.uint8).reshape(3, -1), np.array([3]))[0]
    for cut in range(len(data)):  # a list cut anywhere ends early
        with pytest.raises(PayloadError):
            unpack_list(DT, data[:cut], 0, 3)
    with pytest.raises(PayloadError, match="column"):  # codes for a column past the last
        unpack_list(DT, b"\x00" * (code_bytes(DT) - 1) + b"\xff" + data[code_bytes(DT):], 0, 3)
    # a u1 column whose base plus offset passes 255, built by hand: every column constant but ref
    nb = code_bytes(DT)
    codes = (1 << 4).to_bytes(nb, "little")  # ref (column 2): base + u1 offsets; the rest constant
    body = bytearray()
    for j, name in enumerate(DT.names):
        w = DT.fields[name][0].itemsize
        body += (250 if name == "ref" else 0).to_bytes(w, "little")
        if name == "ref":
            body += bytes([0, 10, 0])
    with pytest.raises(PayloadError, match="ref"):
        unpack_list(DT, codes + bytes(body), 0, 3)


def test_the_native_packer_is_built_wherever_the_wire_path_is() -> None:
    assert packing.available() == native.available()


@pytest.mark.skipif(not packing.available(), reason="the native extension is not built here")
@settings(max_examples=300, deadline=None)
@given(lists())
def test_the_native_packer_writes_the_same_bytes(case: tuple[bytes, list[int]]) -> None:
    raw, counts = case
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, DT.itemsize)
    with on_path(True):
        fast = packing.pack_lists(DT, rows, np.array(counts))
    assert fast == pack_lists(DT, rows, np.array(counts))


def test_the_packer_follows_the_path_in_use() -> None:
    rec = np.zeros(2, dtype=DT)
    rec["slot"], rec["v_x"] = [3, 8], [5, 70_000]
    rows = np.frombuffer(rec.tobytes(), dtype=np.uint8).reshape(2, -1)
    with on_path(False):
        assert packing.pack_lists(DT, rows, np.array([2])) == pack_lists(DT, rows, np.array([2]))
