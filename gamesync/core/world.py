"""Entity storage: one preallocated numpy column per field, an alive mask and stable ids."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .schema import Schema

_MIN_CAPACITY = 64


class World:
    """Struct-of-arrays entity store.

    Slots ``0..n-1`` have been used at least once (``n`` is a high-water mark that never
    shrinks); ``alive[slot]`` says whether a slot holds an entity now. Every spawn gets a new
    id (uint32, never reused), so a reused slot is a different entity on the wire.
    Columns are full-capacity arrays: use ``world[name][:world.n]`` or ``world.view(name)``.
    """

    def __init__(self, schema: Schema, capacity: int = _MIN_CAPACITY) -> None:
        self.schema = schema
        cap = max(_MIN_CAPACITY, capacity)
        self.columns: dict[str, NDArray[Any]] = {
            f.name: np.zeros(cap, dtype=f.column_dtype) for f in schema
        }
        self.alive = np.zeros(cap, dtype=bool)
        self.ids = np.zeros(cap, dtype="<u4")
        self.n = 0
        self._free: list[int] = []
        self._next_id = 1
        #: bumped by every spawn and despawn, so unchanged layouts can be shared between states
        self.layout = 0

    @property
    def capacity(self) -> int:
        return int(self.alive.shape[0])

    @property
    def count(self) -> int:
        """Number of live entities."""
        return int(np.count_nonzero(self.alive[: self.n]))

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self.columns[name]

    def view(self, name: str) -> NDArray[Any]:
        """Column ``name`` over slots 0..n-1 (a view: writes go to the world)."""
        return self.columns[name][: self.n]

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while cap < need:
            cap *= 2
        if cap == self.capacity:
            return
        for name, col in self.columns.items():
            new = np.zeros(cap, dtype=col.dtype)
            new[: col.shape[0]] = col
            self.columns[name] = new
        for attr in ("alive", "ids"):
            old = getattr(self, attr)
            new = np.zeros(cap, dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, attr, new)

    def spawn(self, count: int = 1, **values: ArrayLike) -> NDArray[np.intp]:
        """Create ``count`` entities; ``values`` sets their fields (scalars or arrays). Returns slots."""
        if count < 0:
            raise ValueError("count must be >= 0")
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown fields: {sorted(unknown)}")
        reuse = min(count, len(self._free))
        slots = [self._free.pop() for _ in range(reuse)]
        fresh = count - reuse
        if fresh:
            self._grow(self.n + fresh)
            slots.extend(range(self.n, self.n + fresh))
            self.n += fresh
        idx = np.asarray(slots, dtype=np.intp)
        self.layout += 1
        self.alive[idx] = True
        self.ids[idx] = np.arange(self._next_id, self._next_id + count, dtype=np.uint32)
        self._next_id += count
        for name, col in self.columns.items():
            col[idx] = values.get(name, 0)
        return idx

    def despawn(self, slots: ArrayLike) -> None:
        """Remove the entities at ``slots`` (already-dead slots are ignored)."""
        idx = np.unique(np.asarray(slots, dtype=np.intp).ravel())
        idx = idx[(idx >= 0) & (idx < self.n)]
        idx = idx[self.alive[idx]]
        self.layout += 1
        self.alive[idx] = False
        self._free.extend(int(i) for i in idx[::-1])

    def slot_of(self, entity_id: int) -> int:
        """Slot of a live entity id, or -1."""
        hits = np.flatnonzero((self.ids[: self.n] == entity_id) & self.alive[: self.n])
        return int(hits[0]) if hits.size else -1
