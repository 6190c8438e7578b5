"""The byte layouts of view payloads (docs/protocol.md section 18): entity records, and each
cell's chunk of changes, built for every cell of the world at once.

A *record* is one entity in full: slot, id, a reference flag, its value in every field, and
for every ``linear`` field the difference back to its value at the client's previous
snapshot, so that prediction carries on for an entity a client has just started to see.

A *chunk* is what happened in one cell between a client's previous snapshot ``B`` and this
one ``T``: the entities that left it (positions in its member list at ``B``), arrived in it
(slots), spawned in it (records), and the residuals of its members that did not move as
predicted. A chunk depends only on the cell and on ``(B, R, T)``, so every client watching the
cell shares its bytes. ``encode_chunks`` builds the chunks of all cells in a fixed number of
numpy passes (no loop over cells or entities) into one buffer, cell after cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import PayloadError
from .schema import Schema

F_LEFT, F_ARRIVED, F_SPAWNED, F_CHANGED = 1, 2, 4, 8
EMPTY = 0  # the whole chunk of a cell where nothing happened: a zero flags byte
#: a residual column's width code in a chunk's field mask (2 bits per field): absent, i1, i2, i4
CODE_BYTES = np.array([0, 1, 2, 4], dtype=np.int64)
WIDTH_CODE = {1: 1, 2: 2, 4: 3}  # wire dtype size -> the widest code a field needs


MASK_VARINT = 9  # bytes a field mask's varint may take
MAX_VIEW_FIELDS = 31  # a chunk's field mask is a varint of two bits per field: at most 62 bits


def mask_codes(mask: int, nfields: int) -> list[int]:
    """Each field's residual width code (0 none, 1 i1, 2 i2, 3 i4) from a chunk's field mask."""
    if mask >> (2 * nfields):
        raise PayloadError("field mask names a field the schema does not have")
    return [(mask >> (2 * i)) & 3 for i in range(nfields)]


def bin_head(n: int) -> bytes:
    """msgpack's header of a bin of ``n`` bytes."""
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def record_dtype(schema: Schema) -> np.dtype[Any]:
    """One entity in full: slot, id, has-reference flag, every field in its wire dtype, then
    the back-difference of every linear field in its wire width (signed, wrapping)."""
    parts: list[tuple[str, str]] = [("slot", "<u4"), ("id", "<u4"), ("ref", "u1")]
    for f in schema:
        dt = f.wire_dtype
        parts.append(("v_" + f.name, dt.str))
    for f in schema:
        if f.predict == "linear":
            parts.append(("d_" + f.name, f"<i{f.wire_dtype.itemsize}"))
    return np.dtype(parts)


def private_dtype(schema: Schema, names: tuple[str, ...] | list[str]) -> np.dtype[Any]:
    """One owned entity's private fields: slot, then each private field in its wire dtype
    (schema order)."""
    return np.dtype([("slot", "<u4")] + [("v_" + f.name, f.wire_dtype.str) for f in schema if f.name in names])


def width_for(k: int) -> int:
    """Bytes of a position in a member list of ``k`` entries: 1, 2 or 4."""
    return 1 if k <= 0x100 else 2 if k <= 0x10000 else 4


def _widths(k: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.where(k <= 0x100, 1, np.where(k <= 0x10000, 2, 4))


def varint(v: int) -> bytes:
    """LEB128: seven bits per byte, low first, high bit set on every byte but the last."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _varints(v: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """(byte count, bytes padded to 9 columns) of the LEB128 form of each value (< 2**63)."""
    n = np.ones(v.shape, dtype=np.int64)
    for s in range(7, 63, 7):
        n += v >= (1 << s)
    b = np.zeros((v.size, 9), dtype=np.uint8)
    for j in range(9):
        b[:, j] = ((v >> (7 * j)) & 0x7F) | np.where(n > j + 1, 0x80, 0)
    return n, b


def wrap_to(values: NDArray[np.int64] | NDArray[np.int32], itemsize: int) -> NDArray[Any]:
    """Values reduced to signed ``itemsize``-byte integers (two's complement wrap)."""
    return np.asarray(values).astype(f"<i{itemsize}")


def make_records(schema: Schema, dtype: np.dtype[Any], slots: NDArray[np.intp], ids: NDArray[np.uint32],
                 vals: NDArray[np.int32], back: NDArray[np.int32] | None,
                 has_ref: NDArray[np.bool_] | None) -> bytes:
    """Records of the entities at ``slots``: ``vals`` and ``back`` (value minus the value at the
    previous snapshot) have one row per field and one column per entity."""
    rec = np.zeros(slots.size, dtype=dtype)
    rec["slot"] = slots
    rec["id"] = ids
    if has_ref is not None:
        rec["ref"] = has_ref
    for i, f in enumerate(schema):
        rec["v_" + f.name] = vals[i].astype(f.wire_dtype)
        if f.predict == "linear" and back is not None:
            rec["d_" + f.name] = wrap_to(back[i], f.wire_dtype.itemsize)
    return rec.tobytes()


class Pieces:
    """Byte pieces of many chunks, gathered section by section, then laid out cell by cell."""

    def __init__(self) -> None:
        self.keys: list[NDArray[np.int64]] = []
        self.data: list[tuple[NDArray[np.int64], NDArray[np.uint8]]] = []

    def add(self, cells: NDArray[Any], sec: int, order: NDArray[Any] | None, mat: NDArray[np.uint8],
            widths: NDArray[np.int64] | None = None) -> None:
        """Pieces for ``cells``: row i of ``mat`` (its first ``widths[i]`` bytes) goes to cell
        ``cells[i]``, in section ``sec``, after the pieces of that section with a lower ``order``."""
        if cells.size == 0:
            return
        o = np.arange(cells.size) if order is None else order.astype(np.int64)
        self.keys.append((cells.astype(np.int64) << 40) | (np.int64(sec) << 32) | o)
        w = np.full(cells.size, mat.shape[1], dtype=np.int64) if widths is None else widths
        self.data.append((w, mat))

    def layout(self, ncells: int) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        """(bytes, start of each cell's bytes: ncells + 1 offsets)."""
        if not self.keys:
            return np.zeros(0, dtype=np.uint8), np.zeros(ncells + 1, dtype=np.int64)
        keys = np.concatenate(self.keys)
        widths = np.concatenate([w for w, _ in self.data])
        order = np.argsort(keys, kind="stable")
        where = np.empty(order.size, dtype=np.int64)
        ends = np.cumsum(widths[order])
        where[order] = ends - widths[order]
        out = np.zeros(int(ends[-1]), dtype=np.uint8)
        first = 0
        for w, mat in self.data:
            at = where[first:first + w.size]
            first += w.size
            for j in range(mat.shape[1]):
                sel = w > j
                out[at[sel] + j] = mat[sel, j]
        cells = keys >> 40
        per_cell = np.bincount(cells, weights=widths, minlength=ncells)[:ncells]
        starts = np.zeros(ncells + 1, dtype=np.int64)
        np.cumsum(per_cell, out=starts[1:])
        return out, starts


def as_bytes_matrix(values: NDArray[Any], itemsize: int) -> NDArray[np.uint8]:
    """Each value's low ``itemsize`` bytes, little-endian, as rows."""
    if values.size == 0:
        return np.zeros((0, itemsize), dtype=np.uint8)
    v = np.ascontiguousarray(values.astype("<i8") if values.dtype.kind in "iub" else values)
    return v.view(np.uint8).reshape(v.size, -1)[:, :itemsize]


def varint_pieces(pieces: Pieces, cells: NDArray[np.int64], sec: int, counts: NDArray[np.int64]) -> None:
    n, b = _varints(counts)
    pieces.add(cells, sec, None, b, n)


class ChunkReader:
    """Parses one cell's chunk (client side), given the cell's member count at the baseline."""

    def __init__(self, schema: Schema, rec_dtype: np.dtype[Any]) -> None:
        self.rec_dtype = rec_dtype
        self.splitter = ChunkSplitter(schema)

    def read(self, data: bytes, k_base: int) -> tuple[NDArray[np.intp], NDArray[np.uint32], bytes, int, int]:
        """(left positions, arrived slots, spawned records, offset of the changed section or -1,
        end offset of the membership sections)."""
        if not data or data[0] == EMPTY:
            raise PayloadError("empty chunk")
        flags, (left_at, nl), (arr_at, na), (sp_at, ns), at, _ = self.splitter.members(data, 0, k_base)
        if at > len(data):
            raise PayloadError("chunk ends early")
        left = np.frombuffer(data, dtype=f"<u{width_for(k_base)}", count=nl, offset=left_at).astype(np.intp)
        arrived = np.frombuffer(data, dtype="<u4", count=na, offset=arr_at).astype(np.uint32)
        spawned = data[sp_at:sp_at + ns * self.rec_dtype.itemsize]
        return left, arrived, spawned, (at if flags & F_CHANGED else -1), at


def read_varint(data: bytes, at: int, most: int = 5) -> tuple[int, int]:
    """(value, offset after it) of the LEB128 integer at ``at`` (at most ``most`` bytes)."""
    if at < len(data) and data[at] < 0x80:  # one byte: the usual case
        return data[at], at + 1
    v = 0
    for j in range(most):
        if at >= len(data):
            raise PayloadError("chunk ends inside a count")
        b = data[at]
        at += 1
        v |= (b & 0x7F) << (7 * j)
        if not b & 0x80:
            return v, at
    raise PayloadError(f"varint longer than {most} bytes")


class ChunkSplitter:
    """Finds where each chunk ends in a kept-cells bin (plain Python: no value is decoded), and
    how many members its cell has after it."""

    def __init__(self, schema: Schema) -> None:
        self.rec_size = record_dtype(schema).itemsize
        self.nfields = len(schema)
        self._rows: dict[int, int] = {}  # field mask -> bytes of residuals per changed member

    def members(self, data: bytes, at: int, k: int) -> tuple[int, tuple[int, int], tuple[int, int],
                                                             tuple[int, int], int, int]:
        """The membership sections of the chunk at ``at`` for a cell of ``k`` members: (flags,
        then (offset, count) of left, arrived and spawned, the offset after them, members after)."""
        if at >= len(data):
            raise PayloadError("kept-cells bin ends early")
        flags = data[at]
        at += 1
        if flags & ~0xF:
            raise PayloadError(f"bad chunk flags {flags}")
        left = arrived = spawned = (at, 0)
        if flags & F_LEFT:
            n, at = read_varint(data, at)
            left = (at, n)
            at += n * width_for(k)
            k -= n
        if flags & F_ARRIVED:
            n, at = read_varint(data, at)
            arrived = (at, n)
            at += 4 * n
            k += n
        if flags & F_SPAWNED:
            n, at = read_varint(data, at)
            spawned = (at, n)
            at += n * self.rec_size
            k += n
        return flags, left, arrived, spawned, at, k

    def split(self, data: bytes, at: int, k: int) -> tuple[int, int]:
        """(end offset, members after) of the chunk starting at ``at`` for a cell of ``k`` members."""
        if at < len(data) and data[at] == EMPTY:
            return at + 1, k
        flags, _, _, _, at, k = self.members(data, at, k)
        if flags & F_CHANGED:
            m, at = read_varint(data, at)
            at += m * (1 if k <= 0x100 else width_for(k))
            mask, at = read_varint(data, at, MASK_VARINT)
            row = self._rows.get(mask)
            if row is None:
                row = self._rows[mask] = sum(int(CODE_BYTES[c]) for c in mask_codes(mask, self.nfields))
            at += m * row
        if k < 0 or at > len(data):
            raise PayloadError("chunk runs past its bin")
        return at, k
