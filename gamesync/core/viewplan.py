"""Each client's view payload, sans I/O: what it watched at its previous snapshot, what it watches
now, and the shared chunks and cell listings that take it from one to the other.

Per tick the room builds the cell map of the new state once; per distinct (previous snapshot,
the one before) of its clients it builds every cell's chunk once (one ``encode_chunks``); per
(cell, previous snapshot) it builds a cell listing once. A client's payload is then those
shared bytes, sliced and framed, plus its own records of the entities that walked into its
view from cells it did not watch. Nothing about a cell a client does not watch reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
from numpy.typing import NDArray

from .delta import COMPRESS_MIN, compress_payload
from .protocol import NO_TICK
from .schema import Schema
from .state import State
from .viewcodec import CellMap, ChunkSet, encode_chunks, entity_records
from .viewwire import record_dtype

LISTING_LEVEL = 3  # deflate level of cell listings (each is built once and shared)
EMPTY_BIN, EMPTY_ARRAY, NO_ENTER = msgpack.packb(b""), msgpack.packb([]), msgpack.packb([0, b""])
ENTER_LEVEL = 1  # deflate level of a client's own enter records (built for that client alone)
ENTER_MIN = 160  # and only from this size on: a deflate per client per tick costs more than it saves below


@dataclass
class ClientView:
    """The server's record of one client's view at its newest *written* snapshot."""

    held: list[int] = field(default_factory=list)  # cells watched, ascending
    tick: int = NO_TICK  # its newest snapshot
    prev: int = NO_TICK  # the one before
    entities: int = 0  # entities it holds
    runs: list[tuple[int, int]] = field(default_factory=list)  # held as runs of consecutive ids
    held_set: set[int] = field(default_factory=set)  # held, as a set
    #: the room's cache of what it wants the client to watch: (its key, the cells)
    key: Any = None
    want: list[int] = field(default_factory=list)

    def commit(self, frame: ViewFrame) -> None:
        """The frame went into the client's stream: the client will hold what it describes."""
        if frame.cells is not self.held:
            self.runs, self.held_set = _runs(frame.cells), set(frame.cells)
        self.held, self.prev, self.tick = frame.cells, self.tick if frame.base != NO_TICK else NO_TICK, frame.tick
        self.entities = frame.entities


@dataclass(frozen=True)
class ViewFrame:
    """One client's payload for ``tick``, and the view it leaves the client with once sent."""

    tick: int
    base: int
    ref: int
    payload: bytes
    cells: list[int]
    entities: int  # entities the client holds after it


def _squeezed(raw: bytes, level: int = LISTING_LEVEL, least: int = COMPRESS_MIN) -> list[Any]:
    """[flags, records]: deflated (flags 1) when that is worth it, else as they are (flags 0)."""
    return list(compress_payload(raw, level, least))


def _bin_head(n: int) -> bytes:
    """msgpack's header of a bin of ``n`` bytes."""
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


class ViewPlanner:
    """A view room's per-tick encoder (one per room)."""

    def __init__(self, schema: Schema, history: int) -> None:
        self.schema = schema
        self.dtype = record_dtype(schema)
        self.history = history
        self.maps: dict[int, CellMap] = {}
        self.ncells = 0
        self.tick = NO_TICK
        self._chunks: dict[tuple[int, int], ChunkSet] = {}
        self._listings: dict[tuple[int, int], list[Any]] = {}
        self._counts: list[int] = []  # members per cell at the newest tick
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
        self._counts = cm.k(self.ncells).tolist()
        self._chunks.clear()
        self._listings.clear()
        return cm

    def frame(self, view: ClientView, cells: list[int], private: bytes | None = None) -> ViewFrame:
        """The payload taking ``view`` to ``cells`` (ascending cell ids) at the newest tick; a room
        with private fields adds the client's own values of them (``private``)."""
        tail = [msgpack.packb(private)] if private is not None else []
        cur = self.maps[self.tick]
        count = sum(map(self._counts.__getitem__, cells))
        base = view.tick if view.tick in self.maps and view.tick < self.tick else NO_TICK
        if base == NO_TICK:
            body: list[Any] = [b"", b"", [self._listing(cur, c, NO_TICK) for c in cells], [0, b""]]
            if private is not None:
                body.append(private)
            return ViewFrame(self.tick, NO_TICK, NO_TICK, msgpack.packb(body), cells, count)
        ref = view.prev if view.prev in self.maps else NO_TICK
        held = view.held
        cs = self._chunkset(base, ref)
        st, blob = cs.starts, cs.blob
        was = view.held_set
        if cells is held:  # the same cells as before (the usual case): no set arithmetic
            kept, dropped, added, runs, kept_set = held, [], [], view.runs, was
        else:
            now = set(cells)
            kept = [c for c in held if c in now]
            dropped = [c for c in held if c not in now]
            added = [c for c in cells if c not in was]
            runs, kept_set = _runs(kept), was & now
        chunks = [blob[st[a]:st[b + 1]] for a, b in runs]
        parts = [b"\x95" if tail else b"\x94",
                 msgpack.packb(np.array(dropped, dtype="<u4").tobytes()) if dropped else EMPTY_BIN,
                 _bin_head(sum(map(len, chunks))), *chunks,
                 msgpack.packb([self._listing(cur, c, base) for c in added]) if added else EMPTY_ARRAY]
        enter = self._enter(cur, base, cs, kept_set, was)
        parts.append(msgpack.packb(_squeezed(enter, ENTER_LEVEL, ENTER_MIN)) if enter else NO_ENTER)
        parts.extend(tail)
        return ViewFrame(self.tick, base, ref, b"".join(parts), cells, count)

    def _chunkset(self, base: int, ref: int) -> ChunkSet:
        cs = self._chunks.get((base, ref))
        if cs is None:
            r = self.maps[ref].state if ref != NO_TICK else None
            cs = encode_chunks(self.schema, self.dtype, self.maps[self.tick], self.maps[base], r, self.ncells)
            self._chunks[(base, ref)] = cs
            self.chunk_sets_built += 1
        return cs

    def _listing(self, cur: CellMap, c: int, base: int) -> list[Any]:
        """[cell, count, flags, records] of cell ``c``'s members, for clients whose previous
        snapshot is ``base``."""
        item = self._listings.get((c, base))
        if item is None:
            prev = self.maps[base].state if base != NO_TICK else None
            members = cur.members(c)
            raw = entity_records(self.schema, self.dtype, cur.state, prev, members)
            item = self._listings[(c, base)] = [c, int(members.size), *_squeezed(raw)]
            self.listings_built += 1
        return item

    def _enter(self, cur: CellMap, base: int, cs: ChunkSet, kept: set[int], was: set[int]) -> bytes:
        """Records of the entities that moved into a kept cell from a cell the client did not watch."""
        by_cell = cs.arrivals()
        if not by_cell:
            return b""
        sel = [i for c in kept if c in by_cell for i, src in by_cell[c] if src not in was]
        if not sel:
            return b""
        rec = cs.moved_records
        if rec is None:  # once per chunk set: every moved entity's record, against the baseline
            raw = entity_records(self.schema, self.dtype, cur.state, self.maps[base].state, cs.moved_slot)
            size = self.dtype.itemsize
            rec = cs.moved_records = [raw[j:j + size] for j in range(0, len(raw), size)]
        sel.sort()  # records ascend by slot, as the moved entities do
        return b"".join([rec[i] for i in sel])


def _runs(cells: list[int]) -> list[tuple[int, int]]:
    """Ascending cell ids as runs of consecutive ids: (first, last) each."""
    out: list[tuple[int, int]] = []
    for c in cells:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out
