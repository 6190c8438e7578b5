"""Client side of view payloads: the entities a client may see, cell by cell, kept bit-exact.

A ``ViewMirror`` holds, for every cell the client watches, the cell's members (ascending
slots) with their quantised values at the client's newest snapshot and at the one before it
(the reference for prediction). ``apply`` turns it into the next snapshot's
(docs/protocol.md section 18). Cell states are immutable, so a swarm of clients watching the
same cells can share them (``ChunkCache``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from numpy.typing import NDArray

from .delta import decompress_payload, predict_values
from .errors import DesyncError, PayloadError
from .protocol import NO_TICK
from .schema import Schema
from .state import State
from .viewpack import unpack_list
from .viewwire import (
    CODE_BYTES,
    EMPTY,
    F_ARRIVED,
    MASK_VARINT,
    ChunkReader,
    ChunkSplitter,
    mask_codes,
    private_dtype,
    read_varint,
    record_dtype,
    width_for,
)

MAX_CELLS = 1 << 24
VIEW_FLAGS = 2  # snapshot flags of a view payload: bit 1 set, never compressed as a whole
MAX_RECORD_BYTES = 64 << 20  # a compressed cell listing inflates to at most this


@dataclass(frozen=True, eq=False)
class CellState:
    """One watched cell: members by ascending slot, values now (``val``) and at the previous
    snapshot (``ref``, meaningful where ``has_ref``), one row per field."""

    slots: NDArray[np.int64]
    ids: NDArray[np.uint32]
    val: NDArray[np.int32]
    ref: NDArray[np.int32]
    has_ref: NDArray[np.bool_]

    @property
    def k(self) -> int:
        return int(self.slots.size)


class Records:
    """Entity records (docs/protocol.md 18.3) read into columns."""

    def __init__(self, schema: Schema, dtype: np.dtype[Any], data: bytes) -> None:
        if len(data) % dtype.itemsize:
            raise PayloadError("records do not fill whole entries")
        rec = np.frombuffer(data, dtype=dtype)
        self.slots = rec["slot"].astype(np.int64)
        if self.slots.size > 1 and not (self.slots[1:] > self.slots[:-1]).all():
            raise PayloadError("record slots must ascend")
        self.ids = rec["id"].astype(np.uint32)
        if rec.size and rec["ref"].max() > 1:
            raise PayloadError("a record's reference flag is 0 or 1")
        nf = len(schema)
        self.val = np.zeros((nf, rec.size), dtype=np.int32)
        self.ref = np.zeros((nf, rec.size), dtype=np.int32)
        self.has_ref = rec["ref"] != 0
        for i, f in enumerate(schema):
            v = rec["v_" + f.name]
            self.val[i] = v.astype(np.int64).astype(np.int32) if v.dtype.itemsize < 4 else v.view(np.int32)
            if f.predict == "linear":
                back = rec["d_" + f.name].astype(np.int64)
                r = (v.astype(np.int64) - back).astype(v.dtype)  # wraps like the wire dtype
                self.ref[i] = r.astype(np.int64).astype(np.int32) if r.dtype.itemsize < 4 else r.view(np.int32)
            else:
                self.ref[i] = self.val[i]
        self.ref[:, ~self.has_ref] = self.val[:, ~self.has_ref]

    def state(self, sel: NDArray[np.intp] | slice = slice(None)) -> CellState:
        return CellState(self.slots[sel], self.ids[sel], self.val[:, sel], self.ref[:, sel], self.has_ref[sel])


def _to_wire_rows(schema: Schema, vals: NDArray[np.int64]) -> NDArray[np.int32]:
    """Sums reduced into each field's wire dtype (wrapping), back as int32 bit patterns."""
    out = np.empty(vals.shape, dtype=np.int32)
    for i, f in enumerate(schema):
        w = vals[i].astype(f.wire_dtype)
        out[i] = w.view(np.int32) if w.dtype.itemsize == 4 else w
    return out


class ViewMirror:
    """What one client holds of a view room, applied snapshot by snapshot."""

    def __init__(self, schema: Schema, cache: ChunkCache | None = None, private: list[str] | None = None,
                 packed: bool = False) -> None:
        self.schema = schema
        self.dtype = record_dtype(schema)
        self.packed = packed  # listings and enter records come as packed record lists (version 5)
        #: a room with private fields sends the client's own values of them (docs/protocol.md 18.4)
        self.private_dtype = private_dtype(schema, private) if private else None
        self.private: NDArray[Any] = np.zeros(0, dtype=self.private_dtype or np.dtype([("slot", "<u4")]))
        self.reader = ChunkReader(schema, self.dtype)
        self.splitter = ChunkSplitter(schema)
        self.cells: dict[int, CellState] = {}
        self._no_records = Records(schema, self.dtype, b"")
        self.tick = NO_TICK
        self.prev = NO_TICK
        self.cache = cache

    @property
    def count(self) -> int:
        """Entities held."""
        return sum(c.k for c in self.cells.values())

    def apply(self, tick: int, base: int, ref: int, payload: bytes) -> None:
        """Decode one view payload (uncompressed) into the state at ``tick``; PayloadError if it
        does not fit what this mirror holds."""
        try:
            self._apply(tick, base, ref, payload)
        except (IndexError, TypeError, ValueError, KeyError, OverflowError) as e:
            if isinstance(e, PayloadError):
                raise
            raise PayloadError(f"malformed view payload: {type(e).__name__}: {e}") from None

    def _apply(self, tick: int, base: int, ref: int, payload: bytes) -> None:
        top = msgpack.unpackb(payload, raw=False, use_list=True, max_map_len=0, max_ext_len=0, max_str_len=0)
        want = 5 if self.private_dtype is not None else 4
        if not isinstance(top, list) or len(top) != want:
            raise PayloadError(f"a view payload of this room is an array of {want}")
        dropped_b, kept, added, enter_b = top[:4]
        if base == NO_TICK:
            self.cells, self.tick, self.prev = {}, NO_TICK, NO_TICK
        elif base != self.tick or tick <= base:
            raise PayloadError(f"snapshot {tick} is built on {base}, but the newest held is {self.tick}")
        elif ref not in (NO_TICK, self.prev):
            raise PayloadError(f"reference {ref} is not the snapshot before {base}")
        steps = (tick - base, base - ref) if ref != NO_TICK else (0, 0)
        dropped = _cells(dropped_b)
        if any(c not in self.cells for c in dropped.tolist()):
            raise PayloadError("dropped a cell not held")
        gone = set(dropped.tolist())
        kept_ids = sorted(c for c in self.cells if c not in gone)
        kept = split_chunks(self.splitter, _bin(kept), [(c, self.cells[c].k) for c in kept_ids])
        enter = self._enter(enter_b)
        new = self._kept(kept_ids, kept, gone, enter, steps)
        self._added(new, added)
        held = [c.slots for c in new.values() if c.k]
        if len(held) > 1 and np.unique(np.concatenate(held)).size != sum(h.size for h in held):
            raise PayloadError("a slot is held in two cells")
        private = self._own(top[4], new) if self.private_dtype is not None else self.private
        self.cells, self.prev, self.tick = new, (base if base != NO_TICK else NO_TICK), tick
        self.private = private

    def _own(self, data: Any, cells: dict[int, CellState]) -> NDArray[Any]:
        """This client's private field values of entities it owns, each one it holds."""
        assert self.private_dtype is not None
        raw = _bin(data)
        if len(raw) % self.private_dtype.itemsize:
            raise PayloadError("private rows do not fill whole entries")
        rows = np.frombuffer(raw, dtype=self.private_dtype)
        slots = rows["slot"].astype(np.int64)
        if slots.size > 1 and not (slots[1:] > slots[:-1]).all():
            raise PayloadError("private rows must ascend by slot")
        held = np.concatenate([c.slots for c in cells.values()]) if cells else np.zeros(0, dtype=np.int64)
        if not np.isin(slots, held).all():
            raise PayloadError("private values for an entity not held")
        return rows

    def _enter(self, item: Any) -> Records:
        """The enter records: [flags, records], deflated when flags is 1."""
        if not isinstance(item, list) or len(item) != 2 or item[0] not in (0, 1):
            raise PayloadError("enter records are [flags, records]")
        raw = _bin(item[1])
        if not raw:
            return self._no_records
        data = decompress_payload(item[0], raw, MAX_RECORD_BYTES)
        if self.packed:  # a count, then a packed list of that many records
            n, at = read_varint(data, 0)
            if n == 0:
                raise PayloadError("enter records name no record")
            data = _unpacked(self.dtype, data, at, n)
        return Records(self.schema, self.dtype, data)

    def _kept(self, kept_ids: list[int], chunks: list[Any], gone: set[int], enter: Records,
              steps: tuple[int, int]) -> dict[int, CellState]:
        out: dict[int, CellState] = {}
        misses: list[tuple[int, CellState, Any, Any]] = []
        cache = self.cache
        for c, chunk in zip(kept_ids, chunks, strict=True):
            st = self.cells[c]
            # a cell's next state depends on its state, its chunk and the steps, except for the
            # entities arriving in it: their values come from other cells or the enter records
            key = (c, st, chunk, steps) if cache is not None and not (chunk and chunk[0] & F_ARRIVED) else None
            hit = cache.get(key) if key is not None and cache is not None else None
            if hit is None:
                misses.append((c, st, chunk, key))
            else:
                out[c] = hit
        if not misses:
            return out
        parsed = {c: self.reader.read(chunk, self.cells[c].k) for c, chunk in zip(kept_ids, chunks, strict=True)
                  if chunk is not None}
        pool = self._pool(parsed, gone)
        for c, st, chunk, key in misses:
            got = (parsed[c], chunk) if chunk is not None else None
            new = self._cell(st, got, pool, enter, steps)
            if cache is not None and key is not None:
                cache.put(key, new)
            out[c] = new
        return out

    def _pool(self, parsed: dict[int, Any], gone: set[int]) -> dict[int, tuple[CellState, int]]:
        """slot -> where a departed entity was held: the left entries of the kept cells, and every
        member of the dropped cells."""
        pool: dict[int, tuple[CellState, int]] = {}
        for c, got in parsed.items():
            st, left = self.cells[c], got[0]
            if left.size and (left.max() >= st.k or (left.size > 1 and not (left[1:] > left[:-1]).all())):
                raise PayloadError("left positions must ascend within the cell")
            for pos in left.tolist():
                pool[int(st.slots[pos])] = (st, pos)
        for c in gone:
            st = self.cells[c]
            for pos, s in enumerate(st.slots.tolist()):
                pool[s] = (st, pos)
        return pool

    def _cell(self, st: CellState, got: Any, pool: dict[int, tuple[CellState, int]], enter: Records,
              steps: tuple[int, int]) -> CellState:
        """A kept cell after its chunk (None: nothing but prediction)."""
        if got is None:
            return self._advance(st, steps)
        (left, arrived, spawned_b, ch_at, _end), data = got
        keep = np.ones(st.k, dtype=bool)
        keep[left] = False
        held = CellState(st.slots[keep], st.ids[keep], st.val[:, keep], st.ref[:, keep], st.has_ref[keep])
        fresh: list[CellState] = []
        came = _arrivals(arrived, pool, enter, fresh)
        if spawned_b:
            fresh.append(Records(self.schema, self.dtype, spawned_b).state())
        merged = _join([self._advance(_join([held, *came]), steps), *fresh])
        if len(np.unique(merged.slots)) != merged.k:
            raise PayloadError("a slot appears twice in one cell")
        if ch_at >= 0:
            merged = self._residuals(merged, set(fresh_slots(fresh)), data, ch_at)
        return merged

    def _advance(self, st: CellState, steps: tuple[int, int]) -> CellState:
        """Predicted values at the new snapshot; the old values become the reference."""
        dt_tb, dt_br = steps
        if dt_br <= 0 or st.k == 0 or not st.has_ref.any():
            val = st.val
        else:
            val = predict_values(self.schema, st.val, st.ref, None if st.has_ref.all() else st.has_ref, dt_tb, dt_br)
        return CellState(st.slots, st.ids, val, st.val, np.ones(st.k, dtype=bool))

    def _residuals(self, st: CellState, skip: set[int], data: bytes, at: int) -> CellState:
        m, at = read_varint(data, at)
        w = width_for(st.k)
        if at + m * w > len(data):
            raise PayloadError("chunk ends inside its positions")
        pos = np.frombuffer(data, dtype=f"<u{w}", count=m, offset=at).astype(np.intp)
        at += m * w
        if m and (pos.max() >= st.k or (m > 1 and not (pos[1:] > pos[:-1]).all())):
            raise PayloadError("changed positions must ascend within the cell")
        mask, at = read_varint(data, at, MASK_VARINT)
        val = st.val.astype(np.int64)
        for (i, f), code in zip(enumerate(self.schema), mask_codes(mask, len(self.schema)), strict=True):
            if not code:
                continue
            size = int(CODE_BYTES[code])
            if size > f.wire_dtype.itemsize:
                raise PayloadError(f"field {f.name}: residuals wider than its wire type")
            if at + m * size > len(data):
                raise PayloadError("chunk ends inside its residuals")
            res = np.frombuffer(data, dtype=f"<i{size}", count=m, offset=at)
            at += m * size
            val[i, pos] += res
        if at != len(data):
            raise PayloadError("chunk has trailing bytes")
        for i, mask_m, _ in self.schema.wrap_info:  # an angle wraps at 2**bits, not at its wire width
            val[i] &= mask_m
        newval = _to_wire_rows(self.schema, val)
        if skip:  # entities whose record carries their values: residuals do not apply
            fix = np.isin(st.slots, np.fromiter(skip, dtype=np.int64))
            newval[:, fix] = st.val[:, fix]
        return CellState(st.slots, st.ids, newval, st.ref, st.has_ref)

    def _added(self, new: dict[int, CellState], added: Any) -> None:
        if not isinstance(added, list):
            raise PayloadError("added cells must be an array")
        last = -1
        for item in added:
            if (not isinstance(item, list) or len(item) != 4
                    or not all(type(v) is int and v >= 0 for v in item[:3])):
                raise PayloadError("an added cell is [cell, count, flags, records]")
            c, count, flags, data = item
            if not last < c < MAX_CELLS or c in new or c in self.cells:  # neither kept nor dropped
                raise PayloadError("added cells must ascend and be new")
            last = c
            raw = _bin(data)
            if flags & ~1:
                raise PayloadError(f"bad added-cell flags {flags}")
            key = (c, flags, raw, self.packed)
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is None:
                data = decompress_payload(flags, raw, MAX_RECORD_BYTES)
                if self.packed:
                    data = _unpacked(self.dtype, data, 0, count)
                hit = Records(self.schema, self.dtype, data).state()
                if self.cache is not None:
                    self.cache.put(key, hit)
            if hit.k != count:
                raise PayloadError(f"cell {c} lists {hit.k} entities, not {count}")
            new[c] = hit

    def state(self, tick: int | None = None) -> State:
        """Everything held, as one State over the slots (dead slots: the ones not held)."""
        cells = list(self.cells.values())
        if not cells:
            return State.empty(self.schema, self.tick)
        all_ = _join(cells)
        order = np.argsort(all_.slots)
        slots = all_.slots[order]
        n = int(slots[-1]) + 1 if slots.size else 0
        alive = np.zeros(n, dtype=bool)
        ids = np.zeros(n, dtype="<u4")
        mat = np.zeros((len(self.schema), n), dtype=np.int32)
        alive[slots] = True
        ids[slots] = all_.ids[order]
        mat[:, slots] = all_.val[:, order]
        if self.private_dtype is not None and self.private.size:
            mine = self.private["slot"].astype(np.int64)
            for i, f in enumerate(self.schema):
                name = "v_" + f.name
                if name in (self.private_dtype.names or ()):
                    v = self.private[name]
                    mat[i, mine] = v.view(np.int32) if v.dtype.itemsize == 4 else v
        return State(self.tick if tick is None else tick, n, alive, ids, mat)


def fresh_slots(fresh: list[CellState]) -> list[int]:
    return [int(s) for st in fresh for s in st.slots.tolist()]


def _arrivals(arrived: NDArray[np.uint32], pool: dict[int, tuple[CellState, int]], enter: Records,
              fresh: list[CellState]) -> list[CellState]:
    """The arrivals held before (from the pool), and those whose record came in ``enter``."""
    came: list[CellState] = []
    if arrived.size > 1 and not (arrived[1:] > arrived[:-1]).all():
        raise PayloadError("arrived slots must ascend")
    for s in arrived.tolist():
        src = pool.pop(s, None)
        if src is not None:
            st, i = src
            came.append(CellState(st.slots[i:i + 1], st.ids[i:i + 1], st.val[:, i:i + 1], st.ref[:, i:i + 1],
                                  st.has_ref[i:i + 1]))
            continue
        j = int(np.searchsorted(enter.slots, s))
        if j >= enter.slots.size or enter.slots[j] != s:
            raise PayloadError(f"slot {s} arrived, but it was neither held nor in the enter records")
        fresh.append(enter.state(slice(j, j + 1)))
    return came


def _unpacked(dtype: np.dtype[Any], data: bytes, at: int, n: int) -> bytes:
    """The fixed records of the packed list of ``n`` records at ``at``, which ends ``data``."""
    rec, end = unpack_list(dtype, data, at, n)
    if end != len(data):
        raise PayloadError("record list has trailing bytes")
    return rec


def _join(parts: list[CellState]) -> CellState:
    """Cell states merged, by ascending slot."""
    parts = [p for p in parts if p.k] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    slots = np.concatenate([p.slots for p in parts])
    order = np.argsort(slots, kind="stable")
    return CellState(slots[order], np.concatenate([p.ids for p in parts])[order],
                     np.concatenate([p.val for p in parts], axis=1)[:, order],
                     np.concatenate([p.ref for p in parts], axis=1)[:, order],
                     np.concatenate([p.has_ref for p in parts])[order])


def _bin(v: Any) -> bytes:
    if not isinstance(v, (bytes, bytearray)):
        raise PayloadError("expected a bin")
    return bytes(v)


def _cells(v: Any) -> NDArray[np.int64]:
    b = _bin(v)
    if len(b) % 4:
        raise PayloadError("cell list is not whole <u4 values")
    c = np.frombuffer(b, dtype="<u4").astype(np.int64)
    if c.size > 1 and not (c[1:] > c[:-1]).all():
        raise PayloadError("cell lists must ascend")
    return c


class ChunkCache:
    """Decoded cells shared by many mirrors (a bot swarm): the same cell state and the same
    chunk bytes give the same next cell state; and for ``ViewCounts``, chunk lengths."""

    def __init__(self, limit: int = 1 << 16, tables: int = 8, count_chunks: Any = None) -> None:
        self.limit = limit
        #: the native twin of ``ViewCounts``' walk over a kept-cells bin (gamesync.native.packing
        #: ``chunk_counter``), or None for the Python one: the same counts, the same errors
        self.count_chunks = count_chunks
        self._d: dict[Any, Any] = {}
        self._keep: dict[int, CellState] = {}
        #: ``ViewCounts``' entries, one table per (tick, base, ref), the newest ``tables`` of them
        self._tables: dict[tuple[int, int, int], dict[int, tuple[int, int]]] = {}
        self._max_tables = tables
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        st = self._d.get(key)
        if st is None:
            self.misses += 1
        else:
            self.hits += 1
        return st

    def put(self, key: Any, st: Any) -> None:
        if len(self._d) >= self.limit:
            self._d.clear()
        self._d[key] = st

    def table(self, tick: int, base: int, ref: int) -> dict[int, tuple[int, int]]:
        """The counts table of snapshots (tick, base, ref): cell ``c`` held with ``k`` members is
        entry ``c << 32 | k``, whose value is (chunk length, members after it)."""
        key = (tick, base, ref)
        t = self._tables.get(key)
        if t is None:
            if len(self._tables) >= self._max_tables:
                del self._tables[min(self._tables)]
            t = self._tables[key] = {}
        return t


class ViewCounts:
    """How many entities a client of a view room holds, per cell, read from the payloads'
    membership sections without decoding any value (a bot swarm measuring, not verifying)."""

    def __init__(self, schema: Schema, cache: ChunkCache | None = None) -> None:
        self.splitter = ChunkSplitter(schema)
        self.counts: dict[int, int] = {}
        self.tick = NO_TICK
        #: shared by a swarm's clients: a cell's chunk is the same bytes for every client with
        #: the same (tick, base, ref) that holds the same number of its members, so one parse serves all
        self.cache = cache

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def apply(self, tick: int, base: int, ref: int, payload: bytes) -> None:
        dropped_b, kept, added = msgpack.unpackb(payload, raw=False, use_list=True, max_map_len=0,
                                                 max_ext_len=0, max_str_len=0)[:3]
        counts = {} if base == NO_TICK else self.counts
        for c in _cells(dropped_b).tolist():
            del counts[c]
        at, data, split = 0, _bin(kept), self.splitter.split
        cache = self.cache
        if cache is None:
            for c in sorted(counts):
                at, counts[c] = split(data, at, counts[c])
        else:
            table, sp = cache.table(tick, base, ref), self.splitter
            walk = cache.count_chunks or self._walk
            misses, at = walk(data, counts, sorted(counts), table, sp.nfields, sp.rec_size)
            cache.misses += misses
            cache.hits += len(counts) - misses
        if at != len(data):
            raise PayloadError("kept-cells bin has trailing bytes")
        for item in added:
            counts[item[0]] = item[1]
        self.counts, self.tick = counts, tick

    def _walk(self, data: bytes, counts: dict[int, int], cells: list[int], table: dict[int, tuple[int, int]],
              nfields: int, rec_size: int) -> tuple[int, int]:
        """The walk over a kept-cells bin in Python, with the signature of its native twin
        (``gamesync.native._pack.count_chunks``; ``nfields`` and ``rec_size`` are this splitter's):
        each held cell's chunk length and members after it, from ``table`` or split here and added
        to it; ``counts`` updated in place. Returns (misses, offset after the last chunk)."""
        split, at, misses = self.splitter.split, 0, 0
        for c in cells:
            k = counts[c]
            hit = table.get(c << 32 | k)
            if hit is None:
                misses += 1
                end, counts[c] = split(data, at, k)
                table[c << 32 | k] = (end - at, counts[c])
                at = end
            else:
                at += hit[0]
                counts[c] = hit[1]
        return misses, at


def split_chunks(splitter: ChunkSplitter, data: bytes, cells: list[tuple[int, int]]) -> list[bytes | None]:
    """The kept-cells bin cut into one chunk per (cell, members) given (None: nothing happened)."""
    out: list[bytes | None] = []
    at = 0
    for _, k in cells:
        end, _ = splitter.split(data, at, k)
        out.append(data[at:end] if end - at > 1 or data[at] != EMPTY else None)
        at = end
    if at != len(data):
        raise PayloadError("kept-cells bin has trailing bytes")
    return out


_EMPTY: list[State] = []  # the newest empty State handed out, shared by a swarm's counting mirrors


def _empty_at(schema: Schema, tick: int) -> State:
    """An empty State at ``tick`` (a counting mirror's result): one object per tick and field
    count for all the mirrors of a process, not three fresh arrays per snapshot."""
    if _EMPTY and _EMPTY[0].tick == tick and _EMPTY[0].mat.shape[0] == len(schema):
        return _EMPTY[0]
    st = State.empty(schema, tick)
    _EMPTY[:] = [st]
    return st


class ViewStates:
    """A view room's mirror behind the interface of ``core.mirror.Mirror`` (what
    ``ClientProtocol`` holds): snapshots in, the state at each tick out. ``materialise=False``
    (a bot swarm) decodes no values, only counts what is held (``ViewCounts``); ``apply`` then
    returns an empty State with the tick."""

    def __init__(self, schema: Schema, cache: ChunkCache | None = None, materialise: bool = True,
                 private: list[str] | None = None, packed: bool = False) -> None:
        self.schema = schema
        self.view: ViewMirror | ViewCounts = (ViewMirror(schema, cache, private, packed) if materialise
                                              else ViewCounts(schema, cache))
        self.materialise = materialise
        self.latest: State | None = None

    @property
    def tick(self) -> int:
        return self.view.tick

    def get(self, tick: int) -> State | None:
        return self.latest if self.latest is not None and tick == self.latest.tick else None

    def apply(self, tick: int, base: int, ref: int, flags: int, payload: bytes) -> State | None:
        if tick <= self.tick:
            return None
        if flags != VIEW_FLAGS:
            raise DesyncError(f"a view room's snapshot has flags {VIEW_FLAGS}, not {flags}")
        try:
            self.view.apply(tick, base, ref, payload)
        except (PayloadError, IndexError, KeyError, TypeError, ValueError) as e:
            raise DesyncError(str(e)) from None
        v = self.view
        st = v.state() if isinstance(v, ViewMirror) else _empty_at(self.schema, tick)
        self.latest = st
        return st

    def ack_bits(self) -> int:
        return 0  # a view room's clients decode their whole stream and acknowledge nothing

    def __len__(self) -> int:
        return 1 if self.latest is not None else 0
