"""Interest management, sans I/O: what a game declares, and the grid of cells the world is cut into.

A game that sets ``Game.interest`` to an ``Interest`` gets a *view room*: each client receives
only the entities in the cells its view touches (plus the entities whose scope is everyone,
its team or itself). The world is cut into square cells of side ``cell``; a client's cells are
those whose square comes within its radius of its focus. Every entity within the radius is
therefore sent, and none farther than radius + ``keep`` + the cell's diagonal (at most
2 x radius when ``cell <= radius / sqrt(2)`` and ``keep`` is left to its default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .schema import Schema
from .viewwire import MAX_VIEW_FIELDS


@dataclass(frozen=True)
class Interest:
    """A game's visibility settings.

    - ``position``: the names of its x and y fields (float fields: their ``lo``/``hi`` bound
      the grid).
    - ``cell``: side of a grid cell in world units.
    - ``radius``: the default view radius (each client's can be changed at run time).
    - ``private``: fields only an entity's owner receives (``room.views.own``); every other
      client holds 0 in them.
    - ``keep``: a watched cell stays watched until its square is farther than radius + keep
      (hysteresis: a client walking back and forth over a border does not get the same cell
      again and again). None: a quarter of a cell, but no more than keeps ``2 x radius`` as the bound.
    """

    position: tuple[str, str] = ("x", "y")
    cell: float = 250.0
    radius: float = 500.0
    private: tuple[str, ...] = ()
    keep: float | None = None

    def __post_init__(self) -> None:
        if not (self.cell > 0 and self.radius > 0):
            raise ValueError("interest: cell and radius must be positive")
        if self.keep is not None and not self.keep >= 0:
            raise ValueError("interest: keep must be >= 0")

    @property
    def margin(self) -> float:
        """How much farther than the radius a watched cell is kept (``keep``, or its default)."""
        if self.keep is not None:
            return float(self.keep)
        return max(0.0, min(self.cell / 4, self.radius - self.cell * math.sqrt(2)))


class Grid:
    """The cells of a view room: ``cols`` x ``rows`` squares from ``(x0, y0)``; cell id
    ``row * cols + col``. Ids from ``cols * rows`` on are the scope cells (everyone, teams,
    owners, single entities), which no position maps to."""

    def __init__(self, schema: Schema, interest: Interest) -> None:
        if len(schema) > MAX_VIEW_FIELDS:
            raise ValueError(f"interest: a view room's schema has at most {MAX_VIEW_FIELDS} fields")
        fx, fy = (schema.by_name[n] for n in interest.position)
        if fx.kind != "float" or fy.kind != "float":
            raise ValueError("interest: the position fields must be float fields")
        self.interest = interest
        self.rows_xy = (schema.index(fx.name), schema.index(fy.name))
        self.step = (fx.step, fy.step)
        self.x0, self.y0 = fx.lo, fy.lo
        self.cell = float(interest.cell)
        self.cols = max(1, math.ceil((fx.hi - fx.lo) / self.cell))
        self.rows = max(1, math.ceil((fy.hi - fy.lo) / self.cell))
        self.count = self.cols * self.rows
        #: cell id of the "everyone" scope
        self.everyone = self.count
        for name in interest.private:
            if name not in schema.by_name or name in interest.position:
                raise ValueError(f"interest: private field {name!r} is not a field, or is a position")
        #: rows of the private fields, in schema order
        self.private_rows = tuple(i for i, f in enumerate(schema) if f.name in interest.private)

    def to_wire(self) -> dict[str, Any]:
        """The grid as `welcome` describes it to clients (docs/protocol.md, section 18)."""
        return {"cell": self.cell, "cols": self.cols, "rows": self.rows, "x0": self.x0, "y0": self.y0,
                "radius": float(self.interest.radius), "everyone": self.everyone,
                "private": [f for f in self.interest.private]}

    def cells_of(self, mat: NDArray[np.int32]) -> NDArray[np.int32]:
        """Cell id of every slot of a state matrix, from its quantised positions."""
        ix, iy = self.rows_xy
        c = self._axis(mat[ix], self.step[0], self.cols)
        r = self._axis(mat[iy], self.step[1], self.rows)
        r *= self.cols
        r += c
        return r

    def _axis(self, q: NDArray[np.int32], step: float, top: int) -> NDArray[np.int32]:
        # quantised value q is at lo + q * step; the cell is floor(q * step / cell)
        v = q.astype(np.uint32).astype(np.float64)  # a <u4 float reads as negative in int32
        v *= step / self.cell
        out = v.astype(np.int32)
        np.clip(out, 0, top - 1, out=out)
        return out

    def spans(self, x: NDArray[np.float64], y: NDArray[np.float64],
              radius: NDArray[np.float64]) -> NDArray[np.int64]:
        """For many views at once: one row per view, ``[r0, c0_0, c1_0, c0_1, c1_1, ...]``, the first
        grid row the view touches and, row after row, the first and last column it touches there
        (``c0 > c1``: none). Equal rows mean equal cell sets (``cells_near`` of the same view)."""
        c = self.cell
        lx, ly = x - self.x0, y - self.y0
        r0 = np.maximum(0, np.floor((ly - radius) / c)).astype(np.int64)
        r1 = np.minimum(self.rows - 1, np.floor((ly + radius) / c)).astype(np.int64)
        k = int((r1 - r0).max()) + 1 if r0.size else 1
        row = r0[:, None] + np.arange(max(k, 1))[None, :]
        top, bottom = row * c, (row + 1) * c
        lyc = ly[:, None]
        dy = np.where((top <= lyc) & (lyc <= bottom), 0.0, np.minimum(np.abs(lyc - top), np.abs(lyc - bottom)))
        rc = radius[:, None]
        ok = (row <= r1[:, None]) & (dy <= rc)
        half = np.sqrt(np.maximum(rc * rc - dy * dy, 0.0))
        lxc = lx[:, None]
        c0 = np.maximum(0, np.floor((lxc - half) / c)).astype(np.int64)
        c1 = np.minimum(self.cols - 1, np.floor((lxc + half) / c)).astype(np.int64)
        c0[~ok], c1[~ok] = 1, 0
        out = np.empty((x.size, 1 + 2 * row.shape[1]), dtype=np.int64)
        out[:, 0] = r0
        out[:, 1::2], out[:, 2::2] = c0, c1
        return out

    def cells_of_span(self, span: NDArray[np.int64]) -> list[int]:
        """The cell ids one row of ``spans`` stands for, ascending."""
        out: list[int] = []
        r0, cols = int(span[0]), self.cols
        pairs = span[1:].tolist()
        for k in range(0, len(pairs), 2):
            c0, c1 = pairs[k], pairs[k + 1]
            if c1 >= c0:
                base = (r0 + k // 2) * cols
                out.extend(range(base + c0, base + c1 + 1))
        return out

    def masks(self, spans: NDArray[np.int64], width: int) -> NDArray[np.bool_]:
        """``spans`` rows as boolean rows of ``width`` (at least ``everyone + 1``): True at the
        cells each stands for (``cells_of_span``) and at the everyone cell."""
        n = spans.shape[0]
        k = (spans.shape[1] - 1) // 2
        rows = spans[:, :1] + np.arange(k)[None, :]  # n x k: the grid row of each pair
        c0, c1 = spans[:, 1::2], spans[:, 2::2]
        col = np.arange(self.cols)
        hit = (col >= c0[:, :, None]) & (col <= c1[:, :, None])  # n x k x cols
        ok = (rows < self.rows) & (c1 >= c0)
        grid = np.zeros((n, self.rows, self.cols), dtype=bool)
        who = np.repeat(np.arange(n), k).reshape(n, k)
        grid[who[ok], rows[ok]] = hit[ok]
        out = np.zeros((n, width), dtype=bool)
        out[:, :self.count] = grid.reshape(n, self.count)
        out[:, self.everyone] = True
        return out

    def cells_near(self, x: float, y: float, radius: float) -> list[int]:
        """Ids of the cells whose square comes within ``radius`` of (x, y), ascending."""
        one = np.array([x], dtype=np.float64), np.array([y], dtype=np.float64), np.array([radius], dtype=np.float64)
        return self.cells_of_span(self.spans(*one)[0])
