"""Encode a state against a baseline (and a reference before it) and decode it back, exactly.

A payload lists the slots removed and created since the baseline ``B``, the created
entities in full, the kept entities whose value differs from its prediction anywhere
(``changed``), and for those, field by field, the residual between the value at ``T`` and
the prediction from ``B`` and the reference ``R`` (the baseline that ``B`` itself was
decoded from): ``pred = b + ((b - r) * (T - B)) // (B - R)`` in integers for ``linear``
fields, ``b`` for ``hold`` fields, so an entity moving at constant velocity costs nothing.
Without a reference the prediction is ``b``. The whole layout is in docs/protocol.md.

States hold int32 rows (the wire value's bit pattern), and all arithmetic on a field whose
wire type is 32 bits wide is modulo 2**32, as int32 arithmetic is: a residual always fits
in 32 bits, and the matrices are half the size of int64 ones (these passes are bound by
memory traffic: an int32 subtraction of 100k x 6 values runs about 4x faster here).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

from .errors import PayloadError  # raised here, so importable from here too
from .schema import Field, Schema
from .state import State

MODE_SAME = 0  # every residual is zero: [0]
MODE_DENSE = 1  # [1, dtype, residual per kept entity]
MODE_SPARSE = 2  # [2, index dtype, positions in the kept list, dtype, residuals]
MODE_ABSOLUTE = 3  # [3, value in wire dtype per kept entity], when residuals exceed int32
MODE_DENSE_OUTLIERS = 4  # [4, int8 residual per kept entity, index dtype, outlier positions, int32 outliers]

FLAG_DEFLATE = 1  # the payload is zlib-compressed (DecompressionStream("deflate"))
COMPRESS_MIN = 96  # payloads shorter than this are sent raw
COMPRESS_LEVEL = 6
SPARSE_RATIO = 4  # sparse must be this many times smaller than dense before compression
OUTLIER_RATIO = 8  # int8 + outliers when at most 1 residual in this many needs more than a byte
COMPRESS_FAST_ABOVE = 16 * 1024  # larger payloads get the fastest deflate level
_EMPTY = np.zeros(0, dtype=np.intp)
ALL_CHANGED_RATIO = 2  # list the changed entities only when at most 1 in this many changed
MAX_SLOTS = 1 << 24  # entity slots a decoder accepts (bounds a client's memory)

_SIGNED = (("<i1", 1 << 7), ("<i2", 1 << 15), ("<i4", 1 << 31))
_UNSIGNED = (("<u1", 1 << 8), ("<u2", 1 << 16), ("<u4", 1 << 32))


def _kept_and_changes(cur: State, base: State) -> tuple[slice | NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """(kept, removed, created) slots between base and cur; kept is a slice when contiguous."""
    if base.alive is cur.alive and base.ids is cur.ids:  # no spawn or despawn in between
        return base.live, _EMPTY, _EMPTY
    nb = base.n
    if nb <= cur.n and base.dense and (cur.dense or cur.alive[:nb].all()) and (
            base.ids is cur.ids or np.array_equal(base.ids, cur.ids[:nb])):
        created = np.flatnonzero(cur.alive[nb:]) + nb
        return slice(0, nb), np.zeros(0, dtype=np.intp), created
    m = min(nb, cur.n)
    same = np.zeros(nb, dtype=bool)
    same[:m] = base.alive[:m] & cur.alive[:m] & (base.ids[:m] == cur.ids[:m])
    removed = np.flatnonzero(base.alive & ~same)
    kept_t = np.zeros(cur.n, dtype=bool)
    kept_t[:m] = same[:m]
    created = np.flatnonzero(cur.alive & ~kept_t)
    return np.flatnonzero(same), removed, created


def _count(kept: slice | NDArray[np.intp]) -> int:
    return kept.stop if isinstance(kept, slice) else int(kept.size)


def _ref_select(kept: slice | NDArray[np.intp], base: State,
                ref: State | None) -> tuple[slice | NDArray[np.intp], NDArray[np.bool_] | None] | None:
    """Where the kept entities sit in ``ref``, and a mask of those that are the same entity there
    (None: all of them). None when the reference gives no prediction at all."""
    k = _count(kept)
    if ref is None or ref.n == 0 or k == 0:
        return None
    if ref.alive is base.alive and ref.ids is base.ids:  # same layout: same slots, same entities
        return kept, None
    if isinstance(kept, slice):
        if ref.n >= k and (ref.dense or ref.alive[:k].all()) and (
                ref.ids is base.ids or np.array_equal(ref.ids[:k], base.ids[:k])):
            return slice(0, k), None
        kept = np.arange(k)
    inside = kept < ref.n
    idx = np.where(inside, kept, 0)
    ok = inside & ref.alive[idx] & (ref.ids[idx] == base.ids[kept])
    if not ok.any():
        return None
    return idx, ok


def _wrap(schema: Schema, m: NDArray[np.int32]) -> None:
    """Map the wrapping rows of a difference matrix into [-M/2, M/2), in place (M = 2**bits)."""
    for i, mask, half in schema.wrap_info:
        row = m[i]
        row += half
        row &= mask
        row -= half


def _mod(schema: Schema, m: NDArray[np.int32]) -> None:
    """Reduce the wrapping rows of a value matrix into [0, M), in place."""
    for i, mask, _ in schema.wrap_info:
        m[i] &= mask


def _predict(schema: Schema, base: State, ref: State | None, kept: slice | NDArray[np.intp],
             tick: int) -> NDArray[np.int32]:
    """Predicted values at ``tick`` for the kept entities, one row per field."""
    b = base.mat[:, kept]
    sel = _ref_select(kept, base, ref)
    if sel is None or ref is None:
        return b
    ridx, ok = sel
    return predict_values(schema, b, ref.mat[:, ridx], ok, tick - base.tick, base.tick - ref.tick)


def predict_values(schema: Schema, b: NDArray[np.int32], r: NDArray[np.int32], ok: NDArray[np.bool_] | None,
                   dt_tb: int, dt_br: int) -> NDArray[np.int32]:
    """``b + ((b - r) * dt_tb) // dt_br`` per linear row (``b`` for hold rows, and for the
    columns where ``ok`` is False), with each field's wrap-around (docs/protocol.md 10)."""
    if dt_br <= 0:
        raise PayloadError("the reference must be older than the baseline")
    d = np.subtract(b, r)  # the one allocation: every step below is in place
    for i in schema.hold_rows:
        d[i] = 0
    _wrap(schema, d)
    if dt_tb != dt_br:  # scale in int64 (a wrapped difference times a tick count may not fit)
        d64 = d.astype(np.int64)
        d64 *= dt_tb
        if dt_br != 1:
            np.floor_divide(d64, dt_br, out=d64)
        d[...] = d64  # back to int32, modulo 2**32
    if ok is not None:
        d *= ok
    d += b
    _mod(schema, d)
    return d


def _fit(vals: NDArray[np.int32]) -> str | None:
    """Smallest signed little-endian dtype holding ``vals`` (None beyond int32)."""
    lo, hi = int(vals.min()), int(vals.max())
    return next((dt for dt, lim in _SIGNED if -lim <= lo and hi < lim), None)


def _encode_row(f: Field, res: NDArray[np.int32], cur_row: NDArray[np.int32]) -> list[Any]:
    """One field over the changed entities: residuals ``res``, values ``cur_row``."""
    nnz = int(np.count_nonzero(res))
    if nnz == 0:
        return [MODE_SAME]
    k = res.size
    idx_code = "<u2" if k <= 0xFFFF else "<u4"
    if nnz * (1 + int(idx_code[-1])) * SPARSE_RATIO < k:
        nz = np.flatnonzero(res)
        vals = res[nz]
        code = _fit(vals)
        if code is not None:
            return [MODE_SPARSE, idx_code, nz.astype(idx_code).tobytes(), code, vals.astype(code).tobytes()]
    r8 = res.astype(np.int8)
    out = np.flatnonzero(r8 != res)  # residuals that do not fit a byte
    if out.size == 0:
        return [MODE_DENSE, "<i1", r8.tobytes()]
    if out.size * OUTLIER_RATIO <= k:
        vals = res[out]
        if _fit(vals) is not None:
            r8[out] = 0
            return [MODE_DENSE_OUTLIERS, r8.tobytes(), idx_code, out.astype(idx_code).tobytes(),
                    vals.astype("<i4").tobytes()]
    code = _fit(res)
    if code is None or f.wire_dtype.itemsize < int(code[-1]):  # the values are the smaller
        return [MODE_ABSOLUTE, cur_row.astype(f.wire_dtype).tobytes()]
    return [MODE_DENSE, code, res.astype(code).tobytes()]


@dataclass(frozen=True)
class Diff:
    """What changed from a baseline to ``cur``: the numbers, before any byte is written."""

    cur: State
    kept: slice | NDArray[np.intp]  # slots of the entities alive in both states (the same ones)
    removed: NDArray[np.intp]
    created: NDArray[np.intp]
    kept_values: NDArray[np.int32]  # one row per field: the values at T of the kept entities
    residuals: NDArray[np.int32]  # one row per field: value at T minus its prediction


def diff_states(schema: Schema, cur: State, base: State | None = None, ref: State | None = None) -> Diff:
    """Vectorised comparison of ``cur`` with ``base`` (None: nothing), predicted through ``ref``."""
    if base is None:
        base, ref = State.empty(schema), None
    kept, removed, created = _kept_and_changes(cur, base)
    c = cur.mat[:, kept]
    res = _residuals_one_step(schema, c, base, ref, kept, cur.tick)
    if res is None:
        pred = _predict(schema, base, ref, kept, cur.tick)
        res = np.subtract(c, pred, out=pred) if pred.flags.writeable else c - pred
    _wrap(schema, res)
    return Diff(cur, kept, removed, created, c, res)


def _residuals_one_step(schema: Schema, c: NDArray[np.int32], base: State, ref: State | None,
                        kept: slice | NDArray[np.intp], tick: int) -> NDArray[np.int32] | None:
    """The residuals before wrapping in a few whole-matrix passes, for the common case (the
    reference is the tick before the baseline, and every kept entity is the same one there):
    ``c - pred = c - b - k (b - r)`` with ``k = T - B`` for linear rows and ``c - b`` for
    hold rows. Equal to what _predict gives: exactly for narrow rows, modulo 2**32 for 32-bit
    rows and modulo 2**bits (wrapped afterwards) for angles. None: use the general path."""
    k = tick - base.tick
    if ref is None or base.tick - ref.tick != 1 or k < 1:
        return None
    sel = _ref_select(kept, base, ref)
    if sel is None or sel[1] is not None:
        return None
    b = base.mat[:, kept]
    res = np.subtract(c, b)
    if k == 1:  # the server's shared (T-1, T-2) pair: c - 2b + r
        res -= b
        res += ref.mat[:, sel[0]]
    else:
        d = np.subtract(b, ref.mat[:, sel[0]])
        d *= k
        res -= d
    for i in schema.hold_rows:
        np.subtract(c[i], b[i], out=res[i])
    return res


def _changed(res: NDArray[np.int32]) -> NDArray[np.intp] | None:
    """Positions in the kept list of the entities with a non-zero residual in some field;
    None when none did (every field is then all zeros) or when so many did that listing
    them costs more than it saves."""
    k = res.shape[1]
    if k == 0 or res.shape[0] == 0:
        return None
    any_nz = res[0] != 0
    for row in res[1:]:
        any_nz |= row != 0
    pos = np.flatnonzero(any_nz)
    return None if pos.size == 0 or pos.size * ALL_CHANGED_RATIO > k else pos


def _gaps(pos: NDArray[np.intp]) -> list[Any]:
    """``changed`` on the wire: the first position, then each one's distance from the last."""
    gaps = np.diff(pos, prepend=0)
    top = int(gaps.max()) if gaps.size else 0
    code = next(c for c, lim in _UNSIGNED if top < lim)
    return [code, gaps.astype(code).tobytes()]


def encode_rows(schema: Schema, res: NDArray[np.int32], vals: NDArray[np.int32]) -> tuple[list[Any], list[Any] | None]:
    """A payload's kept rows and its ``changed`` list (None: every kept entity is listed), from
    the residuals and values of the kept entities. ``gamesync.native.packing.encode_rows`` is
    the native twin (the same lists, in one pass per field instead of numpy passes)."""
    pos = _changed(res)
    if pos is not None:
        res, vals = res[:, pos], vals[:, pos]
    return [_encode_row(f, res[i], vals[i]) for i, f in enumerate(schema)], None if pos is None else _gaps(pos)


RowEncoder = Callable[[Schema, NDArray[np.int32], NDArray[np.int32]], tuple[list[Any], list[Any] | None]]


def pack_diff(schema: Schema, d: Diff, rows: RowEncoder = encode_rows) -> bytes:
    """The uncompressed msgpack payload of a Diff (layout in docs/protocol.md); ``rows``
    encodes the kept rows (``encode_rows`` or its native twin)."""
    cur, created = d.cur, d.created
    kept_rows, changed = rows(schema, d.residuals, d.kept_values)
    body = [
        cur.n,
        d.removed.astype("<u4").tobytes(),
        created.astype("<u4").tobytes(),
        cur.ids[created].tobytes(),
        [cur.mat[i, created].astype(f.wire_dtype).tobytes() if created.size else b"" for i, f in enumerate(schema)],
        kept_rows,
        changed,
    ]
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def encode_delta(schema: Schema, cur: State, base: State | None = None, ref: State | None = None,
                 rows: RowEncoder = encode_rows) -> bytes:
    """Uncompressed msgpack payload turning ``base`` (None: nothing) into ``cur``."""
    return pack_diff(schema, diff_states(schema, cur, base, ref), rows)


def compress_payload(raw: bytes, level: int | None = None, least: int = COMPRESS_MIN,
                     fast: bool = False) -> tuple[int, bytes]:
    """(flags, bytes): deflate the payload once, from ``least`` bytes on, when that makes it
    smaller; at ``level`` (None: COMPRESS_LEVEL, the fastest level for big payloads).

    ``fast``: for bytes built for one client or a few (a view room's cell listings and enter
    records, about a hundred a tick), the same zlib format through ISA-L at level 1, which
    deflates a 2.5 KB listing about 7x faster than zlib (17 vs 125 us) for 3 % more bytes
    (``level`` is then not used)."""
    if len(raw) >= least:
        if fast:
            z = isal_zlib.compress(raw, 1)
        else:
            if level is None:
                level = COMPRESS_LEVEL if len(raw) <= COMPRESS_FAST_ABOVE else 1
            z = zlib.compress(raw, level)
        if len(z) < len(raw):
            return FLAG_DEFLATE, z
    return 0, raw


def decompress_payload(flags: int, data: bytes, limit: int = 64 << 20) -> bytes:
    """Inverse of compress_payload, refusing to inflate past ``limit`` bytes."""
    if not flags & FLAG_DEFLATE:
        return data
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as e:
        raise PayloadError(f"bad deflate data: {e}") from None
    if d.unconsumed_tail:
        raise PayloadError("payload inflates past the limit")
    return out


def _frombuf(buf: Any, dtype: Any, count: int | None = None) -> NDArray[Any]:
    if not isinstance(buf, (bytes, bytearray)):
        raise PayloadError("expected bytes")
    dt = np.dtype(dtype)
    if len(buf) % dt.itemsize:
        raise PayloadError("buffer length is not a multiple of its dtype")
    a = np.frombuffer(buf, dtype=dt)
    if count is not None and a.size != count:
        raise PayloadError(f"expected {count} values, got {a.size}")
    return a


def _check_dtype(code: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(code, str) or code not in allowed:
        raise PayloadError(f"bad dtype {code!r}")
    return code


def _changed_positions(changed: Any, k: int) -> NDArray[np.intp] | None:
    """The ``changed`` list of a payload as positions in the kept list (None: all of them)."""
    if changed is None:
        return None
    if not isinstance(changed, list) or len(changed) != 2:
        raise PayloadError("bad changed list")
    gaps = _frombuf(changed[1], _check_dtype(changed[0], ("<u1", "<u2", "<u4")))
    if gaps.size == 0:
        return _EMPTY
    if gaps.size > k or (gaps.size > 1 and not gaps[1:].all()):
        raise PayloadError("changed positions must increase")
    pos = np.cumsum(gaps, dtype=np.int64)
    if pos[-1] >= k:
        raise PayloadError("changed position out of range")
    return pos.astype(np.intp)


def _decode_row(f: Field, enc: Any, m: int) -> tuple[bool, NDArray[Any]] | None:
    """One field's encoding over ``m`` changed entities: (absolute?, values or residuals),
    or None when every residual is zero."""
    if not isinstance(enc, list) or not enc:
        raise PayloadError("bad field encoding")
    mode = enc[0]
    if mode == MODE_SAME:
        return None
    if mode == MODE_ABSOLUTE:
        return True, _frombuf(enc[1], f.wire_dtype, m)
    if mode == MODE_DENSE:
        return False, _frombuf(enc[2], _check_dtype(enc[1], ("<i1", "<i2", "<i4")), m)
    if mode == MODE_SPARSE:
        pos = _frombuf(enc[2], _check_dtype(enc[1], ("<u2", "<u4")))
        if pos.size and pos.max() >= m:
            raise PayloadError("sparse position out of range")
        if not _ascending(pos):  # a position twice would add its residuals once here, twice elsewhere
            raise PayloadError("sparse positions must ascend")
        row = np.zeros(m, dtype=np.int32)
        row[pos] += _frombuf(enc[4], _check_dtype(enc[3], ("<i1", "<i2", "<i4")), pos.size)
        return False, row
    if mode == MODE_DENSE_OUTLIERS:
        row = _frombuf(enc[1], "<i1", m).astype(np.int32)
        pos = _frombuf(enc[3], _check_dtype(enc[2], ("<u2", "<u4")))
        if pos.size and pos.max() >= m:
            raise PayloadError("outlier position out of range")
        if not _ascending(pos):
            raise PayloadError("outlier positions must ascend")
        row[pos] += _frombuf(enc[4], "<i4", pos.size)
        return False, row
    raise PayloadError(f"unknown field mode {mode!r}")


def decode_delta(schema: Schema, payload: bytes, tick: int, base: State | None = None,
                 ref: State | None = None) -> State:
    """Apply an uncompressed payload to ``base`` (and ``ref``) and return the state at ``tick``.

    Raises PayloadError, and nothing else, for any payload that does not fit.
    """
    try:
        return _decode(schema, payload, tick, base, ref)
    except (IndexError, TypeError, ValueError, KeyError, OverflowError, MemoryError) as e:
        if isinstance(e, PayloadError):
            raise
        raise PayloadError(f"malformed payload: {type(e).__name__}: {e}") from None


def _decode(schema: Schema, payload: bytes, tick: int, base: State | None, ref: State | None) -> State:
    """The steps of decode_delta, each refusing what does not fit with PayloadError."""
    nf = len(schema)
    n, rm_b, cr_b, ids_b, created_vals, fields, changed = _unpack(payload, nf)
    if base is None:
        base, ref = State.empty(schema), None
    if n < base.n:
        raise PayloadError("entity count shrank below the baseline")
    removed, created, cids = _slot_changes(base, n, rm_b, cr_b, ids_b)
    kept, alive, ids = _layout(base, n, removed, created, cids)
    val = _kept_values(schema, fields, changed, base, ref, kept, tick)
    return _finish(schema, tick, n, base, kept, alive, ids, val, created, created_vals)


def _unpack(payload: bytes, nf: int) -> list[Any]:
    """The payload's seven top-level items, header checked (``n``, one entry per field in
    created values and field encodings).

    Refuses anything a payload never holds while unpacking it, before it is built: a payload
    has nf + 4 arrays (the top level, created_values, field_encodings and one per field,
    changed) of at most max(7, nf) items, and no maps, extensions or long strings. Without
    this, a few KiB of deflate inflating to MiBs of 0x90 bytes (empty arrays) unpacked into
    a list object per byte: 4 KiB of snapshot cost over 250 MiB."""
    arrays = 0

    def count_array(items: list[Any]) -> list[Any]:
        nonlocal arrays
        arrays += 1
        if arrays > nf + 4:
            raise PayloadError("more arrays than a payload holds")
        return items

    try:
        top = msgpack.unpackb(
            payload, raw=False, use_list=True, list_hook=count_array, max_array_len=max(7, nf), max_map_len=0,
            max_ext_len=0, max_str_len=16)
        n, _, _, _, created_vals, fields, _ = top
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise PayloadError(f"undecodable payload: {e}") from None
    if (type(n) is not int or not 0 <= n <= MAX_SLOTS or not isinstance(fields, list) or len(fields) != nf
            or not isinstance(created_vals, list) or len(created_vals) != nf):
        raise PayloadError("bad payload header")
    return top  # type: ignore[no-any-return]


def _slot_changes(base: State, n: int, rm_b: Any, cr_b: Any,
                  ids_b: Any) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.uint32]]:
    """(removed, created, ids of the created) slots, each checked against ``base`` and ``n``."""
    # an empty list is an empty bin, like every other (nil, false or an array are refused)
    removed = _EMPTY if rm_b == b"" else _frombuf(rm_b, "<u4").astype(np.intp)
    created = _EMPTY if cr_b == b"" else _frombuf(cr_b, "<u4").astype(np.intp)
    if (removed.size and (removed.max() >= base.n or not base.alive[removed].all())) or (
        created.size and created.max() >= n
    ):
        raise PayloadError("slot out of range")
    cids = _frombuf(ids_b, "<u4", created.size)
    for what, slots in (("removed", removed), ("created", created)):
        if not _ascending(slots):  # so none twice
            raise PayloadError(f"{what} slots must ascend")
    return removed, created, cids


def _ascending(a: NDArray[Any]) -> bool:
    """Whether ``a`` strictly increases (so holds no value twice)."""
    return a.size < 2 or bool((a[1:] > a[:-1]).all())


def _layout(base: State, n: int, removed: NDArray[np.intp], created: NDArray[np.intp],
            cids: NDArray[np.uint32]) -> tuple[slice | NDArray[np.intp], NDArray[np.bool_], NDArray[np.uint32]]:
    """(kept slots, alive, ids) at the new tick; alive and ids are the baseline's own arrays
    when nothing spawned or despawned (shared, not copied)."""
    kept: slice | NDArray[np.intp]
    alive: NDArray[np.bool_]
    ids: NDArray[np.uint32]
    if removed.size == 0 and created.size == 0 and n == base.n:
        return base.live, base.alive, base.ids
    if removed.size == 0 and base.dense:
        kept = slice(0, base.n)
    else:
        rm_mask = np.zeros(base.n, dtype=bool)
        rm_mask[removed] = True
        kept = np.flatnonzero(base.alive & ~rm_mask)
    alive = np.zeros(n, dtype=bool)
    ids = np.zeros(n, dtype="<u4")
    alive[kept] = True
    ids[kept] = base.ids[kept]
    if created.size:
        if alive[created].any():
            raise PayloadError("created slot is still alive")
        alive[created] = True
        ids[created] = cids
    return kept, alive, ids


def _kept_values(schema: Schema, fields: list[Any], changed: Any, base: State, ref: State | None,
                 kept: slice | NDArray[np.intp], tick: int) -> NDArray[np.int32]:
    """The kept entities' values at ``tick``, one row per field: the prediction from ``base``
    and ``ref``, plus each field's residuals (or its absolute values) at the changed ones."""
    k = _count(kept)
    at = _changed_positions(changed, k)
    m = k if at is None else at.size
    val = _predict(schema, base, ref, kept, tick)
    if not val.flags.writeable:
        val = val.copy()
    touched = False
    for i, enc in enumerate(fields):
        got = _decode_row(schema.fields[i], enc, m)
        if got is None:
            continue
        absolute, row = got
        if at is None:
            if absolute:
                val[i] = row
            else:
                val[i] += row
        elif absolute:
            val[i, at] = row
        else:
            val[i, at] += row
        touched = touched or not absolute
    if touched:
        _mod(schema, val)
    return val


def _finish(schema: Schema, tick: int, n: int, base: State, kept: slice | NDArray[np.intp],
            alive: NDArray[np.bool_], ids: NDArray[np.uint32], val: NDArray[np.int32],
            created: NDArray[np.intp], created_vals: list[Any]) -> State:
    """The read-only State at ``tick``: the kept values and the created entities' in their slots."""
    if isinstance(kept, slice) and _count(kept) == n:
        mat = val
    else:
        mat = np.zeros((len(schema), n), dtype=np.int32)
        mat[:, kept] = val
        if created.size:
            for i, f in enumerate(schema):
                mat[i, created] = _frombuf(created_vals[i], f.wire_dtype, created.size)
    for a in (alive, ids, mat):
        if a.flags.writeable:
            a.flags.writeable = False
    st = State(tick, n, alive, ids, mat, base.layout if alive is base.alive else -1)
    if alive is base.alive:  # prime the cached layout facts
        st.__dict__["dense"] = base.dense
        st.__dict__["live"] = base.live
    return st
