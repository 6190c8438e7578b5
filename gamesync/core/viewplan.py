"""Each client's view payload, sans I/O: what it watched at its previous snapshot, what it watches
now, and the shared chunks and cell listings that take it from one to the other.

Per tick the room builds the cell map of the new state once; per distinct (previous snapshot,
the one before) of its clients it builds every cell's chunk once (one ``encode_chunks``); per
(cell, previous snapshot) it builds a cell listing once. A client's payload is then those
shared bytes, sliced and framed, plus its own records of the entities that walked into its
view from cells it did not watch. Nothing about a cell a client does not watch reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgpack
import numpy as np
from numpy.typing import NDArray

from .delta import COMPRESS_MIN, compress_payload
from .protocol import NO_TICK
from .schema import Schema
from .state import State
from .viewcodec import CellMap, ChunkSet, ChunkWriter, encode_chunks, entity_records
from .viewpack import pack_lists
from .viewwire import bin_head, record_dtype, varint

EMPTY_BIN: bytes = msgpack.packb(b"")
EMPTY_ARRAY: bytes = msgpack.packb([])
NO_ENTER: bytes = msgpack.packb([0, b""])
#: a client's enter records are deflated from this size on (ISA-L makes even small ones cheap;
#: below it the 6 bytes of zlib framing eat the gain)
ENTER_MIN = 48
#: packed enter records (version 5) are deflated from this size on: a few packed records do not
#: deflate (measured in bench/viewcost.py: 0.1 % of a view payload's bytes), and skipping them
#: saves a deflate call per client per tick
PACKED_ENTER_MIN = 256


PackLists = Callable[[np.dtype[Any], NDArray[np.uint8], NDArray[np.int64]], list[bytes]]

_NO_RUNS: tuple[NDArray[np.int64], NDArray[np.int64]] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@dataclass
class ClientView:
    """The server's record of one client's view at its newest *written* snapshot."""

    held: list[int] = field(default_factory=list)  # cells watched, ascending
    tick: int = NO_TICK  # its newest snapshot
    prev: int = NO_TICK  # the one before
    entities: int = 0  # entities it holds
    #: held as runs of consecutive ids: first ids, and last ids + 1
    runs: tuple[NDArray[np.int64], NDArray[np.int64]] = field(default_factory=lambda: _NO_RUNS)
    held_set: set[int] = field(default_factory=set)  # held, as a set
    held_arr: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # held, as an array
    #: the room's cache of what it wants the client to watch: (its key, the cells)
    key: Any = None
    want: list[int] = field(default_factory=list)
    #: its listings and enter records come as packed record lists (protocol version 5)
    packed: bool = False

    def commit(self, frame: ViewFrame) -> None:
        """The frame went into the client's stream: the client will hold what it describes."""
        if frame.cells is not self.held:
            self.runs, self.held_set = _runs(frame.cells), set(frame.cells)
            self.held_arr = np.array(frame.cells, dtype=np.int64)
        self.held, self.prev, self.tick = frame.cells, self.tick if frame.base != NO_TICK else NO_TICK, frame.tick
        self.entities = frame.entities


class ViewFrame(NamedTuple):
    """One client's payload for ``tick``, and the view it leaves the client with once sent."""

    tick: int
    base: int
    ref: int
    payload: bytes
    cells: list[int]
    entities: int  # entities the client holds after it


def _squeezed(raw: bytes, least: int = COMPRESS_MIN) -> list[Any]:
    """[flags, records]: deflated (flags 1) when that is worth it, else as they are (flags 0)."""
    return list(compress_payload(raw, least=least, fast=True))


def _enter_item(enter: bytes, packed: bool) -> bytes:
    """A client's ``enter`` item, [flags, records], packed by msgpack."""
    if not enter:
        return NO_ENTER
    packed_item: bytes = msgpack.packb(_squeezed(enter, PACKED_ENTER_MIN if packed else ENTER_MIN))
    return packed_item


class ViewPlanner:
    """A view room's per-tick encoder (one per room)."""

    def __init__(self, schema: Schema, history: int, pack: PackLists = pack_lists,
                 writer: Callable[[], ChunkWriter | None] = lambda: None) -> None:
        self.schema = schema
        self.pack = pack  # packs record lists for version 5 clients (the server passes its native twin)
        self.writer = writer  # the native chunk writer in use, if any (the server passes its own)
        self.dtype = record_dtype(schema)
        self.history = history
        self.maps: dict[int, CellMap] = {}
        self.ncells = 0
        self.tick = NO_TICK
        self._chunks: dict[tuple[int, int], ChunkSet] = {}
        self._listings: dict[tuple[int, int, bool], list[Any]] = {}
        self._count_arr = np.zeros(0, dtype=np.int64)  # members per cell at the newest tick
        self.chunk_sets_built = 0
        self.listings_built = 0

    def push(self, state: State, cells: NDArray[np.int32], ncells: int) -> CellMap:
        """The new tick's state with every slot's cell (scopes applied)."""
        if state.mat.flags.writeable or state.alive.flags.writeable:
            raise ValueError("a view room's states must be read-only (the codec computes in place on views)")
        self.ncells = max(self.ncells, ncells)
        cm = CellMap.build(state, cells, self.ncells)
        self.maps[state.tick] = cm
        for t in [t for t in self.maps if t <= state.tick - self.history]:
            del self.maps[t]
        self.tick = state.tick
        self._count_arr = cm.k(self.ncells)
        self._chunks.clear()
        self._listings.clear()
        return cm

    def frame(self, view: ClientView, cells: list[int], private: bytes | None = None) -> ViewFrame:
        """The payload taking ``view`` to ``cells`` (ascending cell ids) at the newest tick; a room
        with private fields adds the client's own values of them (``private``)."""
        return self.frames([view], [cells], None if private is None else [private])[0]

    def frames(self, views: list[ClientView], cells: list[list[int]],
               private: list[bytes] | None = None) -> list[ViewFrame]:
        """``frame`` for many clients at once: the work shared by clients (chunk sets, cell
        listings, who needs which entering entity, what each holds) is done once for all."""
        cur, tick = self.maps[self.tick], self.tick
        n = len(views)
        out: list[Any] = [None] * n
        groups: dict[tuple[int, int], list[int]] = {}
        fresh: list[int] = []
        for i, v in enumerate(views):
            if v.tick in self.maps and v.tick < tick:
                groups.setdefault((v.tick, v.prev if v.prev in self.maps else NO_TICK), []).append(i)
            else:
                fresh.append(i)
        self._prepare_listings(cur, [(c, NO_TICK, views[i].packed) for i in fresh for c in cells[i]]
                               + [(c, v.tick, v.packed) for v, cs in zip(views, cells, strict=True)
                                  if cs is not v.held and v.tick in self.maps and v.tick < tick
                                  for c in cs if c not in v.held_set])
        now = [v.held_arr if cs is v.held else np.asarray(cs, dtype=np.int64)
               for v, cs in zip(views, cells, strict=True)]
        held = _sums(self._count_arr, now)  # entities each client holds after its frame
        for i in fresh:
            cs = cells[i]
            body: list[Any] = [b"", b"", [self._listing(cur, c, NO_TICK, views[i].packed) for c in cs], [0, b""]]
            if private is not None:
                body.append(private[i])
            out[i] = ViewFrame(tick, NO_TICK, NO_TICK, msgpack.packb(body), cs, held[i])
        for (base, ref), idx in groups.items():
            frames = self._on(base, ref, cur, [views[i] for i in idx], [cells[i] for i in idx], [now[i] for i in idx],
                              [held[i] for i in idx], None if private is None else [private[i] for i in idx])
            for i, fr in zip(idx, frames, strict=True):
                out[i] = fr
        return out

    def _on(self, base: int, ref: int, cur: CellMap, views: list[ClientView], cells: list[list[int]],
            now: list[NDArray[np.int64]], held: list[int], private: list[bytes] | None) -> list[ViewFrame]:
        """The frames of clients whose previous snapshot is ``base`` (and the one before ``ref``)."""
        chunkset = self._chunkset(base, ref)
        enters = self._enters(cur, base, chunkset, views, cells, now)
        runs = [v.runs if cs is v.held else _runs(sorted(v.held_set.intersection(cs)))
                for v, cs in zip(views, cells, strict=True)]
        kept = _gather(chunkset.blob, chunkset.start, runs)
        head = b"\x94" if private is None else b"\x95"
        out = []
        for j, (v, cs, enter, k) in enumerate(zip(views, cells, enters, kept, strict=True)):
            if cs is v.held:  # the same cells as before (the usual case): no set arithmetic
                dropped, added = EMPTY_BIN, EMPTY_ARRAY
            else:
                keep = set(cs)
                gone = [c for c in v.held if c not in keep]
                dropped = msgpack.packb(np.array(gone, dtype="<u4").tobytes()) if gone else EMPTY_BIN
                new = [c for c in cs if c not in v.held_set]
                added = msgpack.packb([self._listing(cur, c, base, v.packed) for c in new]) if new else EMPTY_ARRAY
            parts = [head, dropped, bin_head(len(k)), k, added,
                     _enter_item(enter, v.packed)]
            if private is not None:
                parts.append(msgpack.packb(private[j]))
            out.append(ViewFrame(self.tick, base, ref, b"".join(parts), cs, held[j]))
        return out

    def _chunkset(self, base: int, ref: int) -> ChunkSet:
        cs = self._chunks.get((base, ref))
        if cs is None:
            r = self.maps[ref].state if ref != NO_TICK else None
            cs = encode_chunks(self.schema, self.dtype, self.maps[self.tick], self.maps[base], r, self.ncells,
                               self.writer())
            self._chunks[(base, ref)] = cs
            self.chunk_sets_built += 1
        return cs

    def _prepare_listings(self, cur: CellMap, want: list[tuple[int, int, bool]]) -> None:
        """Build the listings in ``want`` (cell, base, packed) that are not built yet: the
        records of each base's cells in one pass (packed in one more), then each listing
        deflated on its own."""
        need: dict[tuple[int, bool], list[int]] = {}
        for c, base, packed in want:
            if (c, base, packed) not in self._listings:
                cs = need.setdefault((base, packed), [])
                if c not in cs:
                    cs.append(c)
        size = self.dtype.itemsize
        for (base, packed), cs in need.items():
            members = [cur.members(c) for c in cs]
            prev = self.maps[base].state if base != NO_TICK else None
            raw = entity_records(self.schema, self.dtype, cur.state, prev, np.concatenate(members))
            counts = np.array([m.size for m in members], dtype=np.int64)
            lists = (self.pack(self.dtype, np.frombuffer(raw, dtype=np.uint8).reshape(-1, size), counts) if packed
                     else _split_rows(raw, size, counts))
            for c, k, rec in zip(cs, counts.tolist(), lists, strict=True):
                self._listings[(c, base, packed)] = [c, k, *_squeezed(rec)]
            self.listings_built += len(cs)

    def _listing(self, cur: CellMap, c: int, base: int, packed: bool) -> list[Any]:
        """[cell, count, flags, records] of cell ``c``'s members, for clients whose previous
        snapshot is ``base`` (``packed``: as a packed record list)."""
        item = self._listings.get((c, base, packed))
        if item is None:
            self._prepare_listings(cur, [(c, base, packed)])
            item = self._listings[(c, base, packed)]
        return item

    def _enters(self, cur: CellMap, base: int, cs: ChunkSet, views: list[ClientView], cells: list[list[int]],
                now: list[NDArray[np.int64]]) -> list[bytes]:
        """Per client, the records of the entities that moved into a cell it keeps from a cell it
        did not watch; for all the clients of one chunk set in a few array passes."""
        n = len(views)
        if cs.moved_slot.size == 0 or n == 0:
            return [b""] * n
        was = _matrix([v.held_arr for v in views], self.ncells + 1)  # cells x clients
        kept = was
        if any(c is not v.held for v, c in zip(views, cells, strict=True)):  # keeps only those it still watches
            kept = was & _matrix(now, self.ncells + 1)
        which, who = np.nonzero(kept[cs.moved_cell] & ~was[cs.moved_from])  # rows of cells: contiguous gathers
        order = np.argsort(who, kind="stable")  # client by client, ascending slots within each
        who, which = who[order], which[order]
        if who.size == 0:
            return [b""] * n
        if cs.moved_records is None:  # once per chunk set: every moved entity's record, against the baseline
            raw = entity_records(self.schema, self.dtype, cur.state, self.maps[base].state, cs.moved_slot)
            cs.moved_records = np.frombuffer(raw, dtype=np.uint8).reshape(cs.moved_slot.size, self.dtype.itemsize)
        rows = cs.moved_records[which]  # client by client, ascending slots within each
        counts = np.bincount(who, minlength=n)
        packed = [v.packed for v in views]
        plain = _split_rows(rows.tobytes(), self.dtype.itemsize, counts) if not all(packed) else [b""] * n
        if not any(packed):
            return plain
        lists = self.pack(self.dtype, rows, counts)  # a client's packed list: its count first
        return [(varint(k) + pk if k else b"") if pack else raw
                for pack, k, pk, raw in zip(packed, counts.tolist(), lists, plain, strict=True)]


def _split_rows(blob: bytes, size: int, counts: NDArray[np.int64]) -> list[bytes]:
    """The bytes of ``counts[i]`` consecutive rows of ``size`` bytes, for each i."""
    ends = (np.cumsum(counts) * size).tolist()
    return [blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _matrix(rows: list[NDArray[np.int64]], width: int) -> NDArray[np.bool_]:
    """One boolean column per list of cell ids (``width`` rows): True at those ids."""
    out = np.zeros((width, len(rows)), dtype=bool)
    lens = [r.size for r in rows]
    if sum(lens):
        out[np.concatenate(rows), np.repeat(np.arange(len(rows)), lens)] = True
    return out


def _sums(values: NDArray[np.int64], rows: list[NDArray[np.int64]]) -> list[int]:
    """For each list of indices, the sum of ``values`` at them."""
    if not rows:
        return []
    lens = np.array([r.size for r in rows], dtype=np.int64)
    flat = values[np.concatenate(rows)] if lens.sum() else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lens)
    total = np.concatenate([[0], np.cumsum(flat)])
    sums: list[int] = (total[ends] - total[ends - lens]).tolist()
    return sums


def _runs(cells: list[int]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Ascending cell ids as runs of consecutive ids: (first ids, last ids + 1)."""
    if not cells:
        return _NO_RUNS
    firsts, ends = [cells[0]], []
    last = cells[0]
    for c in cells:
        if c > last + 1:
            ends.append(last + 1)
            firsts.append(c)
        last = c
    ends.append(last + 1)
    return np.array(firsts, dtype=np.int64), np.array(ends, dtype=np.int64)


Runs = tuple[NDArray[np.int64], NDArray[np.int64]]


def _gather(blob: bytes, start: NDArray[np.int64], runs: list[Runs]) -> list[bytes]:
    """Per client, the bytes of its runs of cells (``blob[start[a]:start[b]]`` for each run a..b),
    joined: one gather for all clients."""
    if not runs:
        return []
    lo = start[np.concatenate([r[0] for r in runs])]
    length = start[np.concatenate([r[1] for r in runs])] - lo
    total = int(length.sum())
    if total == 0:
        return [b""] * len(runs)
    ends = np.cumsum(length)
    idx = np.repeat(lo - (ends - length), length) + np.arange(total)
    data = np.frombuffer(blob, dtype=np.uint8)[idx].tobytes()
    per = np.cumsum([r[0].size for r in runs])  # runs per client, cumulated
    stop = np.concatenate([[0], ends])[per].tolist()
    return [data[a:b] for a, b in zip([0, *stop[:-1]], stop, strict=True)]
