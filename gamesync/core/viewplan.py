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
    held_arr: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # held, as an array
    #: the room's cache of what it wants the client to watch: (its key, the cells)
    key: Any = None
    want: list[int] = field(default_factory=list)

    def commit(self, frame: ViewFrame) -> None:
        """The frame went into the client's stream: the client will hold what it describes."""
        if frame.cells is not self.held:
            self.runs, self.held_set = _runs(frame.cells), set(frame.cells)
            self.held_arr = np.array(frame.cells, dtype=np.int64)
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
        return self.frames([view], [cells], None if private is None else [private])[0]

    def frames(self, views: list[ClientView], cells: list[list[int]],
               private: list[bytes] | None = None) -> list[ViewFrame]:
        """``frame`` for many clients at once: the work shared by clients (chunk sets, cell
        listings, who needs which entering entity) is done once for all of them."""
        cur = self.maps[self.tick]
        out: list[ViewFrame | None] = [None] * len(views)
        groups: dict[tuple[int, int], list[int]] = {}
        fresh: list[int] = []
        for i, v in enumerate(views):
            if v.tick in self.maps and v.tick < self.tick:
                groups.setdefault((v.tick, v.prev if v.prev in self.maps else NO_TICK), []).append(i)
            else:
                fresh.append(i)
        self._prepare_listings(cur, [(c, NO_TICK) for i in fresh for c in cells[i]]
                               + [(c, v.tick) for v, cs in zip(views, cells, strict=True)
                                  if cs is not v.held and v.tick in self.maps and v.tick < self.tick
                                  for c in cs if c not in v.held_set])
        counts = self._counts
        for i in fresh:
            cs = cells[i]
            body: list[Any] = [b"", b"", [self._listing(cur, c, NO_TICK) for c in cs], [0, b""]]
            if private is not None:
                body.append(private[i])
            out[i] = ViewFrame(self.tick, NO_TICK, NO_TICK, msgpack.packb(body), cs, sum(map(counts.__getitem__, cs)))
        for (base, ref), idx in groups.items():
            chunkset = self._chunkset(base, ref)
            st, blob = chunkset.starts, chunkset.blob
            enters = self._enters(cur, base, chunkset, [views[i] for i in idx], [cells[i] for i in idx])
            for i, enter in zip(idx, enters, strict=True):
                v, cs = views[i], cells[i]
                if cs is v.held:  # the same cells as before (the usual case): no set arithmetic
                    runs, dropped, added = v.runs, EMPTY_BIN, EMPTY_ARRAY
                else:
                    now = set(cs)
                    gone = [c for c in v.held if c not in now]
                    runs = _runs([c for c in v.held if c in now])
                    dropped = msgpack.packb(np.array(gone, dtype="<u4").tobytes()) if gone else EMPTY_BIN
                    new = [c for c in cs if c not in v.held_set]
                    added = msgpack.packb([self._listing(cur, c, base) for c in new]) if new else EMPTY_ARRAY
                chunks = [blob[st[a]:st[b + 1]] for a, b in runs]
                parts = [b"\x94" if private is None else b"\x95", dropped,
                         _bin_head(sum(map(len, chunks))), *chunks, added,
                         msgpack.packb(_squeezed(enter, ENTER_LEVEL, ENTER_MIN)) if enter else NO_ENTER]
                if private is not None:
                    parts.append(msgpack.packb(private[i]))
                out[i] = ViewFrame(self.tick, base, ref, b"".join(parts), cs, sum(map(counts.__getitem__, cs)))
        return out  # type: ignore[return-value]

    def _chunkset(self, base: int, ref: int) -> ChunkSet:
        cs = self._chunks.get((base, ref))
        if cs is None:
            r = self.maps[ref].state if ref != NO_TICK else None
            cs = encode_chunks(self.schema, self.dtype, self.maps[self.tick], self.maps[base], r, self.ncells)
            self._chunks[(base, ref)] = cs
            self.chunk_sets_built += 1
        return cs

    def _prepare_listings(self, cur: CellMap, want: list[tuple[int, int]]) -> None:
        """Build the listings in ``want`` that are not built yet: the records of each base's
        cells in one pass, then each listing deflated on its own."""
        need: dict[int, list[int]] = {}
        for c, base in want:
            if (c, base) not in self._listings:
                need.setdefault(base, [])
                if c not in need[base]:
                    need[base].append(c)
        size = self.dtype.itemsize
        for base, cs in need.items():
            members = [cur.members(c) for c in cs]
            prev = self.maps[base].state if base != NO_TICK else None
            raw = entity_records(self.schema, self.dtype, cur.state, prev, np.concatenate(members))
            at = 0
            for c, m in zip(cs, members, strict=True):
                end = at + m.size * size
                self._listings[(c, base)] = [c, int(m.size), *_squeezed(raw[at:end])]
                at = end
            self.listings_built += len(cs)

    def _listing(self, cur: CellMap, c: int, base: int) -> list[Any]:
        """[cell, count, flags, records] of cell ``c``'s members, for clients whose previous
        snapshot is ``base``."""
        item = self._listings.get((c, base))
        if item is None:
            self._prepare_listings(cur, [(c, base)])
            item = self._listings[(c, base)]
        return item

    def _enters(self, cur: CellMap, base: int, cs: ChunkSet, views: list[ClientView],
                cells: list[list[int]]) -> list[bytes]:
        """Per client, the records of the entities that moved into a cell it keeps from a cell it
        did not watch; for all the clients of one chunk set in a few array passes."""
        n = len(views)
        if cs.moved_slot.size == 0 or n == 0:
            return [b""] * n
        ncells = self.ncells
        lens = [v.held_arr.size for v in views]
        was = np.zeros((n, ncells + 1), dtype=bool)
        if sum(lens):
            was[np.repeat(np.arange(n), lens), np.concatenate([v.held_arr for v in views])] = True
        kept = was
        moving = [i for i, (v, c) in enumerate(zip(views, cells, strict=True)) if c is not v.held]
        if moving:  # a client that changes cells keeps only those it watches still
            now = np.zeros((len(moving), ncells + 1), dtype=bool)
            now[np.repeat(np.arange(len(moving)), [len(cells[i]) for i in moving]),
                np.concatenate([np.asarray(cells[i], dtype=np.int64) for i in moving])] = True
            kept = was.copy()
            kept[moving] &= now
        who, which = np.nonzero(kept[:, cs.moved_cell] & ~was[:, cs.moved_from])
        if who.size == 0:
            return [b""] * n
        if cs.moved_records is None:  # once per chunk set: every moved entity's record, against the baseline
            raw = entity_records(self.schema, self.dtype, cur.state, self.maps[base].state, cs.moved_slot)
            cs.moved_records = np.frombuffer(raw, dtype=np.uint8).reshape(cs.moved_slot.size, self.dtype.itemsize)
        blob = cs.moved_records[which].tobytes()  # client by client, ascending slots within each
        ends = (np.cumsum(np.bincount(who, minlength=n)) * self.dtype.itemsize).tolist()
        return [blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _runs(cells: list[int]) -> list[tuple[int, int]]:
    """Ascending cell ids as runs of consecutive ids: (first, last) each."""
    out: list[tuple[int, int]] = []
    for c in cells:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out
