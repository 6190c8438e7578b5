"""Packed record lists (docs/protocol.md 18.3.1, version 5): the records of a cell listing or a
client's enter list stored column by column, each column as narrow as its values allow.

A record (18.3) is 41 bytes in the big world, and deflate only took it to about 17: a slot and
an id of four bytes each, positions of four bytes whose high bytes barely change within a
cell, constant columns (``hp``, ``kind``, ``owner``, a reference flag) repeated per entity.
Packed, a list keeps one base per column plus, per record, the offset from it in 0, 1, 2 or
the column's own bytes; a slot is stored as the step from the previous record's slot and an
id as its difference from the slot (the same for every NPC). In bench/viewcost.py's world that
is about 9.4 bytes per record after deflate.

``pack_lists`` packs many lists at once (the listings of one base, or every client's enter
records) with fixed numpy passes per column, none per list; ``unpack_list`` turns one packed
list back into the fixed records, so the rest of a decoder is the same for both versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import PayloadError
from .viewwire import Pieces, as_bytes_matrix

#: a column's code (two bits): 0 every value equals the base, 1 base + u1 offsets, 2 base + <u2
#: offsets, 3 the values themselves in the column's own width
CONST, OFF1, OFF2, FULL = 0, 1, 2, 3
_U32 = 0xFFFFFFFF


def code_bytes(dtype: np.dtype[Any]) -> int:
    """Bytes of a packed list's column codes: two bits per column of the record."""
    return (2 * len(dtype.names or ()) + 7) // 8


def _stored(rec: NDArray[Any], name: str, first: NDArray[np.bool_]) -> NDArray[np.int64]:
    """A column's stored values: a slot as the step from the previous record's (its own value
    for a list's first record), an id as ``id - slot`` modulo 2**32, anything else as it is."""
    if name == "slot":
        s = rec["slot"].astype(np.int64)
        d = s.copy()
        d[1:] -= s[:-1]
        d[first] = s[first]
        return d
    if name == "id":
        return (rec["id"].astype(np.int64) - rec["slot"].astype(np.int64)) & _U32
    return rec[name].astype(np.int64)


def _codes(lo: NDArray[np.int64], hi: NDArray[np.int64], n: NDArray[np.int64], width: int) -> NDArray[np.int64]:
    """Per list, the cheapest code that carries a column whose values span ``lo..hi``."""
    span = hi - lo
    big = np.int64(1) << 62
    cost = np.stack([np.where(span < 0x100, width + n, big), np.where(span < 0x10000, width + 2 * n, big),
                     width * n])
    code: NDArray[np.int64] = np.argmin(cost, axis=0).astype(np.int64) + 1  # ties: the narrower offsets
    code[span == 0] = CONST
    return code


def pack_lists(dtype: np.dtype[Any], rows: NDArray[np.uint8], counts: NDArray[np.int64]) -> list[bytes]:
    """Packed lists of records: ``rows`` (one fixed record per row, ``dtype``) cut into lists of
    ``counts[i]`` consecutive rows, each with ascending slots. A list of no records is ``b""``."""
    counts = np.asarray(counts, dtype=np.int64)
    nl = counts.size
    if rows.shape[0] != int(counts.sum()):
        raise ValueError("counts must add up to the rows")
    full = np.flatnonzero(counts)
    if full.size == 0:
        return [b""] * nl
    rec = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    n = counts[full]
    starts = np.cumsum(n) - n
    owner = np.repeat(full, n)  # the list of each row
    first = np.zeros(rec.size, dtype=bool)
    first[starts] = True
    pieces = Pieces()
    mask = np.zeros(full.size, dtype=np.int64)
    names = dtype.names or ()
    for j, name in enumerate(names):
        width = dtype.fields[name][0].itemsize  # type: ignore[index]
        v = _stored(rec, name, first)
        lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
        code = _codes(lo, hi, n, width)
        mask |= code << (2 * j)
        based = code != FULL
        pieces.add(full[based], 1 + 2 * j, None, as_bytes_matrix(lo[based], width))
        row_code = np.repeat(code, n)
        wide = np.array([0, 1, 2, width], dtype=np.int64)[row_code]
        sel = wide > 0
        out = np.where(row_code == FULL, v, v - np.repeat(lo, n))
        pieces.add(owner[sel], 2 + 2 * j, np.flatnonzero(sel), as_bytes_matrix(out[sel], width), wide[sel])
    pieces.add(full, 0, None, as_bytes_matrix(mask, code_bytes(dtype)))
    blob, start = pieces.layout(nl)
    data = blob.tobytes()
    bounds = start.tolist()
    return [data[bounds[i]:bounds[i + 1]] for i in range(nl)]


def unpack_list(dtype: np.dtype[Any], data: bytes, at: int, n: int) -> tuple[bytes, int]:
    """(the fixed records, offset after the list) of the packed list of ``n`` records at ``at``."""
    if n == 0:
        return b"", at
    names = dtype.names or ()
    nb = code_bytes(dtype)
    if at + nb > len(data):
        raise PayloadError("record list ends inside its column codes")
    mask = int.from_bytes(data[at:at + nb], "little")
    at += nb
    if mask >> (2 * len(names)):
        raise PayloadError("record list codes name a column the records do not have")
    rec = np.zeros(n, dtype=dtype)
    slots = None
    for j, name in enumerate(names):
        t = dtype.fields[name][0]  # type: ignore[index]
        code = (mask >> (2 * j)) & 3
        v, at = _column(data, at, n, code, t)
        if name == "slot":
            v = np.cumsum(v)
            slots = v
        elif name == "id":
            assert slots is not None
            v = (v + slots) & _U32
        info = np.iinfo(t)
        if v.size and (v.min() < info.min or v.max() > info.max):
            raise PayloadError(f"record column {name!r} holds a value its type cannot")
        rec[name] = v
    return rec.tobytes(), at


def _column(data: bytes, at: int, n: int, code: int, t: np.dtype[Any]) -> tuple[NDArray[np.int64], int]:
    """One column's stored values, and the offset after them."""
    w = t.itemsize
    if code == FULL:
        end = at + n * w
        if end > len(data):
            raise PayloadError("record list ends inside a column")
        return np.frombuffer(data, dtype=t.newbyteorder("<"), count=n, offset=at).astype(np.int64), end
    if at + w > len(data):
        raise PayloadError("record list ends inside a column's base")
    base = int(np.frombuffer(data, dtype=t.newbyteorder("<"), count=1, offset=at)[0])
    at += w
    if code == CONST:
        return np.full(n, base, dtype=np.int64), at
    ow = 1 if code == OFF1 else 2
    end = at + n * ow
    if end > len(data):
        raise PayloadError("record list ends inside a column")
    off = np.frombuffer(data, dtype="u1" if ow == 1 else "<u2", count=n, offset=at).astype(np.int64)
    return off + base, end


__all__ = ["code_bytes", "pack_lists", "unpack_list"]
