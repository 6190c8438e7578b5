"""Server side of view payloads: where every entity sits at a tick, and the chunks of every cell
between two ticks, built once and shared by every client watching the cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .delta import diff_states
from .schema import Schema
from .state import State
from .viewwire import (
    CODE_BYTES,
    EMPTY,
    F_ARRIVED,
    F_CHANGED,
    F_LEFT,
    F_SPAWNED,
    WIDTH_CODE,
    Pieces,
    _widths,
    as_bytes_matrix,
    make_records,
    varint_pieces,
)

# sections of a chunk, in the order their bytes appear
S_FLAGS, S_LEFT_N, S_LEFT, S_ARR_N, S_ARR, S_SPAWN_N, S_SPAWN, S_CH_N, S_CH, S_MASK, S_RES = range(11)


@dataclass(frozen=True)
class CellMap:
    """One state's entities by cell: ``cell[slot]`` (-1: dead), members per cell, the members
    of cell c as ``order[start[c]:start[c + 1]]`` (in slot order), and ``inv[slot]``, a live
    slot's index in ``order``."""

    state: State
    cell: NDArray[np.int32]
    count: NDArray[np.int64]
    order: NDArray[np.intp]
    start: NDArray[np.int64]
    inv: NDArray[np.int32]

    @classmethod
    def build(cls, state: State, cell: NDArray[np.int32], ncells: int) -> CellMap:
        if state.dense:  # every slot is live: no masks
            cell = cell.astype(np.int32, copy=False)
            lc = cell
            live: NDArray[np.intp] | None = None
        else:
            cell = np.where(state.alive, cell, -1).astype(np.int32)
            live = np.flatnonzero(state.alive)
            lc = cell[live]
        order = _cell_order(lc, ncells)
        if live is not None:
            order = live[order]
        count = np.bincount(lc, minlength=ncells).astype(np.int64)
        start = np.zeros(count.size + 1, dtype=np.int64)
        np.cumsum(count, out=start[1:])
        inv = np.zeros(state.n, dtype=np.int32)
        inv[order] = np.arange(order.size, dtype=np.int32)
        return cls(state, cell, count, order, start, inv)

    def rank(self, slots: NDArray[np.intp]) -> NDArray[np.int64]:
        """Positions of live ``slots`` in their cells' member lists."""
        return self.inv[slots].astype(np.int64) - self.start[self.cell[slots]]

    def members(self, c: int) -> NDArray[np.intp]:
        if c >= self.count.size:
            return np.zeros(0, dtype=np.intp)
        return self.order[self.start[c]:self.start[c + 1]]

    def k(self, ncells: int) -> NDArray[np.int64]:
        """Members per cell, padded to ``ncells``."""
        if self.count.size >= ncells:
            return self.count[:ncells]
        return np.concatenate([self.count, np.zeros(ncells - self.count.size, dtype=np.int64)])


#: the native chunk writer's signature (gamesync/native/_pack.pyx ``write_chunks``)
ChunkWriter = Callable[..., bytes]


@dataclass
class ChunkSet:
    """Every cell's chunk between two ticks, laid out cell after cell: cell c's chunk is
    ``blob[start[c]:start[c + 1]]``. Also the
    entities that moved between cells (``moved``: slot, new cell, old cell), for the clients
    that did not watch where they came from."""

    blob: bytes
    start: NDArray[np.int64]
    moved_slot: NDArray[np.intp]
    moved_cell: NDArray[np.int32]
    moved_from: NDArray[np.int32]
    #: their records (one row each), built when a client first needs some
    moved_records: NDArray[np.uint8] | None = None


def entity_records(schema: Schema, dtype: np.dtype[Any], cur: State, prev: State | None,
                   slots: NDArray[np.intp]) -> bytes:
    """Records (docs/protocol.md 18.3) of the entities at ``slots`` of ``cur``, with their
    back-differences to ``prev`` (the client's previous snapshot; None: no reference)."""
    vals = cur.mat[:, slots]
    if prev is None or slots.size == 0 or prev.n == 0:  # no reference for any of them
        return make_records(schema, dtype, slots, cur.ids[slots], vals, None, None)
    inside = slots < prev.n
    at = np.where(inside, slots, 0)
    same = inside & prev.alive[at] & (prev.ids[at] == cur.ids[slots])
    back = vals.astype(np.int64) - prev.mat[:, at]
    back *= same
    return make_records(schema, dtype, slots, cur.ids[slots], vals, back, same)


def encode_chunks(schema: Schema, dtype: np.dtype[Any], cur: CellMap, base: CellMap, ref: State | None,
                  ncells: int, write: ChunkWriter | None = None) -> ChunkSet:
    """The chunk of every cell 0..ncells-1 for a client that holds ``base`` (and ``ref``) and gets
    ``cur``: fixed numpy passes over the entities, none per cell. ``write``: the native twin of
    the byte layout (gamesync.native.packing), which gives the same bytes in one pass."""
    d = diff_states(schema, cur.state, base.state, ref)
    kept = d.kept if not isinstance(d.kept, slice) else np.arange(d.kept.start or 0, d.kept.stop)
    moved = cur.cell[kept] != base.cell[kept]
    mv = kept[moved]
    left = np.sort(np.concatenate([mv, d.removed]))
    if write is not None:
        blob, start = _written(write, schema, dtype, cur, base, kept, d.residuals, mv, left, d.created, ncells)
        return ChunkSet(blob, start, mv, cur.cell[mv], base.cell[mv])
    pieces = Pieces()
    _section(pieces, base.cell[left], S_LEFT_N, S_LEFT, left,
             _positions(base.rank(left), base.k(ncells)[base.cell[left]]))
    _section(pieces, cur.cell[mv], S_ARR_N, S_ARR, mv, as_bytes_matrix(mv, 4))
    cr = d.created
    if cr.size:
        rec = np.frombuffer(entity_records(schema, dtype, cur.state, None, cr), dtype=np.uint8)
        _section(pieces, cur.cell[cr], S_SPAWN_N, S_SPAWN, cr, rec.reshape(cr.size, dtype.itemsize))
    _changes(schema, pieces, cur, kept, d.residuals, ncells)
    blob, start = _finish(pieces, ncells)
    return ChunkSet(blob, start, mv, cur.cell[mv], base.cell[mv])


def _cell_order(cells: NDArray[Any], ncells: int) -> NDArray[np.intp]:
    """The stable order that sorts entries by cell (entries in slot order stay so within a cell):
    a radix sort when cell ids fit 16 bits."""
    return np.argsort(cells.astype(np.uint16) if ncells <= 0x10000 else cells, kind="stable")


def _by_cell(cells: NDArray[Any], ncells: int) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """(cells ascending, the order that sorts them)."""
    order = _cell_order(cells, ncells)
    return cells[order].astype(np.int64), order


def _changed(res: NDArray[np.int32]) -> NDArray[np.intp]:
    """Positions in the kept list of the entities with a residual in any field."""
    return np.flatnonzero((res != 0).any(axis=0))


def _written(write: ChunkWriter, schema: Schema, dtype: np.dtype[Any], cur: CellMap, base: CellMap,
             kept: NDArray[np.intp], res: NDArray[np.int32], mv: NDArray[np.intp], left: NDArray[np.intp],
             created: NDArray[np.intp], ncells: int) -> tuple[bytes, NDArray[np.int64]]:
    """``_finish``'s bytes and starts through the native writer: each section sorted by cell."""
    l_cell, o = _by_cell(base.cell[left], ncells)
    l_pos = base.rank(left[o])
    a_cell, o = _by_cell(cur.cell[mv], ncells)
    a_slot = mv[o].astype(np.int64)
    s_cell, o = _by_cell(cur.cell[created], ncells)
    rec = np.frombuffer(entity_records(schema, dtype, cur.state, None, created[o]), dtype=np.uint8)
    idx = _changed(res)
    c_cell, o = _by_cell(cur.cell[kept[idx]], ncells)
    slots = kept[idx[o]]
    c_res = np.ascontiguousarray(res[:, idx[o]], dtype=np.int64)
    caps = np.array([WIDTH_CODE[f.wire_dtype.itemsize] for f in schema], dtype=np.int64)
    start = np.zeros(ncells + 1, dtype=np.int64)
    blob = write(ncells, base.k(ncells), cur.k(ncells), l_cell, l_pos, a_cell, a_slot, s_cell,
                 rec.reshape(created.size, dtype.itemsize), c_cell, cur.rank(slots), c_res, caps, start)
    return blob, start


def _positions(rank: NDArray[np.int64], k: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    return as_bytes_matrix(rank, 4), _widths(k)


def _section(pieces: Pieces, cells: NDArray[np.int32], sec_n: int, sec: int, order: NDArray[Any],
             mat: NDArray[np.uint8] | tuple[NDArray[np.uint8], NDArray[np.int64]]) -> None:
    """A counted section: per cell the number of entries (a varint), then the entries."""
    if cells.size == 0:
        return
    c = cells.astype(np.int64)
    uc, counts = np.unique(c, return_counts=True)
    varint_pieces(pieces, uc, sec_n, counts.astype(np.int64))
    if isinstance(mat, tuple):
        pieces.add(c, sec, order, mat[0], mat[1])
    else:
        pieces.add(c, sec, order, mat)


def _changes(schema: Schema, pieces: Pieces, cur: CellMap, kept: NDArray[np.intp], res: NDArray[np.int32],
             ncells: int) -> None:
    """The changed section of every cell: member positions, the field mask, the residuals."""
    if kept.size == 0:
        return
    idx = _changed(res)
    if idx.size == 0:
        return
    slots = kept[idx]
    cells = cur.cell[slots].astype(np.int64)
    _section(pieces, cur.cell[slots], S_CH_N, S_CH, slots, _positions(cur.rank(slots), cur.k(ncells)[cells]))
    uc = np.unique(cells)
    mask = np.zeros(uc.size, dtype=np.int64)
    where = np.searchsorted(uc, cells)
    for i, f in enumerate(schema):
        r = res[i, idx]
        need = np.where((r >= -0x8000) & (r < 0x8000), 2, 3)
        need[(r >= -0x80) & (r < 0x80)] = 1
        need[r == 0] = 0
        np.minimum(need, WIDTH_CODE[f.wire_dtype.itemsize], out=need)  # a wire-wide residual wraps
        code = np.zeros(uc.size, dtype=np.int64)
        for level in (1, 2, 3):  # per cell, the widest residual's code
            hit = np.zeros(uc.size, dtype=bool)
            hit[where[need >= level]] = True
            code += hit
        if not code.any():
            continue
        mask |= code << (2 * i)
        rows = code[where] > 0
        size = CODE_BYTES[code[where[rows]]]
        pieces.add(cells[rows], S_RES + i, slots[rows], as_bytes_matrix(r[rows], 4), size)
    varint_pieces(pieces, uc, S_MASK, mask)


def _finish(pieces: Pieces, ncells: int) -> tuple[bytes, NDArray[np.int64]]:
    """Add each cell's flags byte (alone, 0, for a cell where nothing happened), lay out."""
    flags = np.zeros(ncells, dtype=np.uint8)
    for key in pieces.keys:
        c = key >> 40
        sec = (key >> 32) & 0xFF
        for s, bit in ((S_LEFT_N, F_LEFT), (S_ARR_N, F_ARRIVED), (S_SPAWN_N, F_SPAWNED), (S_CH_N, F_CHANGED)):
            hit = c[sec == s]
            flags[hit] |= np.uint8(bit)
    busy = np.flatnonzero(flags)
    pieces.add(busy, S_FLAGS, None, flags[busy].reshape(-1, 1))
    idle = np.flatnonzero(flags == 0)
    pieces.add(idle, S_FLAGS, None, np.full((idle.size, 1), EMPTY, dtype=np.uint8))
    blob, start = pieces.layout(ncells)
    return blob.tobytes(), start
