"""Quantised world states and the server's ring of recent ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .schema import Schema
from .world import World


def quantise_rows(schema: Schema, columns: Mapping[str, NDArray[Any]], n: int, mat: NDArray[np.int32],
                  blank: tuple[int, ...] = ()) -> None:
    """Row ``i`` of ``mat`` is field ``i``'s column quantised (its first ``n`` values), zeros for
    the rows in ``blank``. ``gamesync.native.packing.quantise_rows`` is the native twin (the
    same rows, one C loop per field)."""
    scratch = np.empty(n, dtype=np.float64)
    for i, f in enumerate(schema):
        if i in blank:
            mat[i] = 0
        else:
            f.quantise_into(columns[f.name][:n], mat[i], scratch)


RowQuantiser = Callable[[Schema, Mapping[str, NDArray[Any]], int, NDArray[np.int32], tuple[int, ...]], None]


@dataclass(frozen=True, eq=False)
class State:
    """The quantised world at one tick: what every client reproduces bit for bit.

    ``alive`` and ``ids`` have length ``n``; ``mat`` is an int32 matrix with one row per
    schema field (in schema order) and one column per slot, holding quantised values (the
    bit pattern of the wire value: a ``u4`` above 2**31 - 1 reads as negative; ``wire`` and
    ``column`` give the real values). Dead
    slots hold id 0 and zeros, so two states are equal exactly when all their arrays are.
    """

    tick: int
    n: int
    alive: NDArray[np.bool_]
    ids: NDArray[np.uint32]
    mat: NDArray[np.int32]
    #: the world's layout version when captured (-1: unknown); equal layouts share alive/ids
    layout: int = -1

    @classmethod
    def empty(cls, schema: Schema, tick: int = -1) -> State:
        return cls(tick, 0, np.zeros(0, dtype=bool), np.zeros(0, dtype="<u4"),
                   np.zeros((len(schema), 0), dtype=np.int32))

    @classmethod
    def capture(cls, world: World, tick: int, prev: State | None = None, blank: tuple[int, ...] = (),
                quantise: RowQuantiser = quantise_rows) -> State:
        """Quantise the world's live entities (``quantise``, by default ``quantise_rows``: one
        vectorised pass per field; the rows in ``blank`` are left at 0).

        When ``prev`` was captured from the same world with no spawn or despawn since, the
        new state shares its (immutable) ``alive`` and ``ids`` arrays.
        """
        n = world.n
        shared = prev is not None and prev.layout == world.layout and prev.n == n
        if prev is not None and shared:
            alive, ids, dense = prev.alive, prev.ids, prev.dense
        else:
            alive = world.alive[:n].copy()
            ids = world.ids[:n].copy()
            dense = bool(alive.all())
            if not dense:
                ids[~alive] = 0
        mat = np.empty((len(world.schema), n), dtype=np.int32)
        quantise(world.schema, world.columns, n, mat, blank)
        if not dense:
            mat[:, ~alive] = 0
        for a in (alive, ids, mat):
            a.flags.writeable = False
        st = cls(tick, n, alive, ids, mat, world.layout)
        st.__dict__["dense"] = dense  # prime the cached property
        return st

    @cached_property
    def dense(self) -> bool:
        """Every slot 0..n-1 holds a live entity (enables slice fast paths in the codec)."""
        return bool(self.alive.all())

    @cached_property
    def live(self) -> slice | NDArray[np.intp]:
        """Slots holding an entity: a slice when dense, else their indices."""
        if self.dense:
            return slice(0, self.n)
        idx = np.flatnonzero(self.alive)
        idx.flags.writeable = False
        return idx

    def same_as(self, other: State) -> bool:
        """Bit-for-bit equality of the quantised content (the tick is not compared)."""
        return (
            self.n == other.n
            and np.array_equal(self.alive, other.alive)
            and np.array_equal(self.ids, other.ids)
            and np.array_equal(self.mat, other.mat)
        )

    def wire(self, schema: Schema, name: str) -> NDArray[Any]:
        """Quantised column ``name`` in its little-endian wire dtype."""
        i = schema.index(name)
        row: NDArray[np.int32] = self.mat[i]
        return row.astype(schema.fields[i].wire_dtype)

    def column(self, schema: Schema, name: str) -> NDArray[Any]:
        """Dequantised column ``name`` (float32 for float and angle fields)."""
        i = schema.index(name)
        f = schema.fields[i]
        return f.dequantise(self.mat[i].astype(f.wire_dtype))


class History:
    """The last ``size`` states by tick (about one second's worth on the server)."""

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("history needs at least 2 states")
        self.size = size
        self._states: dict[int, State] = {}
        self.newest: int = -1

    def push(self, state: State) -> None:
        if state.tick <= self.newest:
            raise ValueError("ticks must increase")
        self._states[state.tick] = state
        self.newest = state.tick
        oldest = state.tick - self.size
        for t in [t for t in self._states if t <= oldest]:
            del self._states[t]

    def get(self, tick: int) -> State | None:
        return self._states.get(tick)

    def __contains__(self, tick: int) -> bool:
        return tick in self._states

    def __len__(self) -> int:
        return len(self._states)

    @property
    def oldest(self) -> int:
        return min(self._states) if self._states else -1
