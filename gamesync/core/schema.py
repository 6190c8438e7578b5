"""Entity field specs: each field's column dtype, its quantisation and its wire dtype."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Kind = Literal["float", "angle", "int"]
Predict = Literal["linear", "hold"]
PREDICTS = ("linear", "hold")

_INT_WIRE = {"u1", "u2", "u4", "i1", "i2", "i4"}
TAU = 2.0 * math.pi


def _unsigned_for(levels: int) -> str:
    """Smallest little-endian unsigned dtype holding 0..levels."""
    for code, top in (("<u1", 0xFF), ("<u2", 0xFFFF), ("<u4", 0xFFFF_FFFF)):
        if levels <= top:
            return code
    raise ValueError(f"{levels} quantisation levels do not fit in 32 bits")


@dataclass(frozen=True)
class Field:
    """One entity field.

    - ``float``: values in [lo, hi] sent as integers in steps of ``step`` (error <= step/2).
    - ``angle``: radians sent as ``2**bits`` steps per turn, wrapping.
    - ``int``: integers sent as such in ``dtype`` (``u1``..``i4``), clipped to its range.

    ``predict`` is how deltas guess the field's next value: ``linear`` (the default) carries
    on at the rate it changed between the last two states, right for positions and counters;
    ``hold`` keeps the last value, right for fields that jump and then stay (a facing, hit
    points, a kind), which linear would over-shoot after every jump.
    """

    name: str
    kind: Kind
    lo: float = 0.0
    hi: float = 0.0
    step: float = 1.0
    bits: int = 0
    dtype: str = "i4"
    predict: Predict = "linear"

    def __post_init__(self) -> None:
        if self.predict not in PREDICTS:
            raise ValueError(f"field {self.name}: predict must be one of {PREDICTS}")
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} is not an identifier")
        if self.kind == "float":
            if not (self.hi > self.lo and self.step > 0):
                raise ValueError(f"float field {self.name}: need hi > lo and step > 0")
        elif self.kind == "angle":
            if not 2 <= self.bits <= 32:
                raise ValueError(f"angle field {self.name}: bits must be in 2..32")
        elif self.kind == "int":
            if self.dtype not in _INT_WIRE:
                raise ValueError(f"int field {self.name}: dtype must be one of {sorted(_INT_WIRE)}")
        else:
            raise ValueError(f"unknown field kind {self.kind!r}")

    # (cached: these are asked for every field on every tick; a Field is immutable)
    @cached_property
    def wire_dtype(self) -> np.dtype[Any]:
        """Little-endian integer dtype of the quantised value."""
        if self.kind == "float":
            return np.dtype(_unsigned_for(self.levels))
        if self.kind == "angle":
            return np.dtype(_unsigned_for((1 << self.bits) - 1))
        return np.dtype("<" + self.dtype)

    @cached_property
    def column_dtype(self) -> np.dtype:
        """dtype of the world column games write to."""
        if self.kind == "int":
            return np.dtype(self.dtype)
        return np.dtype(np.float32)

    @cached_property
    def levels(self) -> int:
        """Largest quantised value of a float field."""
        return math.ceil((self.hi - self.lo) / self.step - 1e-9)

    @cached_property
    def modulus(self) -> int:
        """Wrap-around modulus of the quantised value (0 when it does not wrap)."""
        return (1 << self.bits) if self.kind == "angle" else 0

    def _steps(self, values: NDArray[Any], scratch: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """A float field's values as whole steps from ``lo``, clipped to its range, in float64
        (in ``scratch`` when given: a float64 array as long as ``values``)."""
        q = np.empty(values.shape, np.float64) if scratch is None else scratch
        if self.lo:
            np.subtract(values, self.lo, out=q, dtype=np.float64)
            q /= self.step
        else:
            np.divide(values, self.step, out=q, dtype=np.float64)
        np.rint(q, out=q)
        np.maximum(q, 0, out=q)  # np.clip, without its Python wrapper (a third of this call)
        np.minimum(q, self.levels, out=q)
        return q

    def quantise_into(self, values: NDArray[Any], out: NDArray[np.int32],
                      scratch: NDArray[np.float64] | None = None) -> None:
        """``quantise`` written into an int32 state row (a ``u4`` value as its bit pattern);
        ``scratch``, a float64 array as long as ``values``, saves allocating one."""
        if self.kind == "float":
            q = self._steps(values, scratch)
            out[:] = q if self.levels < (1 << 31) else q.astype(np.uint32)
        else:
            out[:] = self.quantise(values)

    def quantise(self, values: NDArray[Any]) -> NDArray[Any]:
        """Column values to wire integers (vectorised)."""
        if self.kind == "float":
            return self._steps(values).astype(self.wire_dtype)
        if self.kind == "angle":
            turns = values.astype(np.float64) * ((1 << self.bits) / TAU)
            return (np.rint(turns).astype(np.int64) & ((1 << self.bits) - 1)).astype(self.wire_dtype)
        if values.dtype == self.wire_dtype:  # the field's own column: every value already fits
            return values.astype(self.wire_dtype)
        info = np.iinfo(self.wire_dtype)
        clipped: NDArray[Any] = np.clip(values, info.min, info.max)
        return clipped.astype(self.wire_dtype)

    def snap(self, values: Any) -> Any:
        """``values`` rounded to the nearest value this field can send, in float64 (floats and
        angles; ints unchanged). A game that keeps its state on this grid, and moves things by
        whole steps, makes constant motion exactly linear on the wire: its deltas cost nothing.
        """
        if self.kind == "float":
            return np.rint((np.asarray(values, dtype=np.float64) - self.lo) / self.step) * self.step + self.lo
        if self.kind == "angle":
            unit = TAU / (1 << self.bits)
            return np.rint(np.asarray(values, dtype=np.float64) / unit) * unit
        return values

    def dequantise(self, q: NDArray[Any]) -> NDArray[Any]:
        """Wire integers back to column values (float32 for float/angle fields)."""
        if self.kind == "float":
            return (q.astype(np.float64) * self.step + self.lo).astype(np.float32)
        if self.kind == "angle":
            return (q.astype(np.float64) * (TAU / (1 << self.bits))).astype(np.float32)
        return q.astype(self.column_dtype)

    def to_wire(self) -> dict[str, Any]:
        """Description sent in `welcome` so a client in any language can dequantise."""
        dt = self.wire_dtype
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "wire": f"<{dt.kind}{dt.itemsize}",
                             "predict": self.predict}
        if self.kind == "float":
            d.update(lo=self.lo, hi=self.hi, step=self.step)
        elif self.kind == "angle":
            d["bits"] = self.bits
        return d


def Float(name: str, lo: float, hi: float, step: float, predict: Predict = "linear") -> Field:
    """A float field quantised to ``step`` within [lo, hi]."""
    return Field(name, "float", lo=lo, hi=hi, step=step, predict=predict)


def Angle(name: str, bits: int = 12, predict: Predict = "linear") -> Field:
    """An angle in radians quantised to ``2**bits`` steps per turn."""
    return Field(name, "angle", bits=bits, predict=predict)


def Int(name: str, dtype: str = "i4", predict: Predict = "linear") -> Field:
    """An integer field sent as ``dtype`` (u1, u2, u4, i1, i2, i4)."""
    return Field(name, "int", dtype=dtype, predict=predict)


class Schema:
    """Ordered set of entity fields shared by server and clients."""

    def __init__(self, fields: Iterable[Field]) -> None:
        self.fields: tuple[Field, ...] = tuple(fields)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("duplicate field names")
        if {"id", "alive"} & set(names):
            raise ValueError("'id' and 'alive' are reserved")
        self.by_name = {f.name: f for f in self.fields}
        self._index = {f.name: i for i, f in enumerate(self.fields)}
        #: (row, modulus - 1, modulus // 2) of every wrapping field; moduli are powers of two.
        #: A 32-bit angle is left out: int32 arithmetic wraps modulo 2**32 by itself.
        self.wrap_info: tuple[tuple[int, int, int], ...] = tuple(
            (i, f.modulus - 1, f.modulus >> 1) for i, f in enumerate(self.fields) if 0 < f.modulus < (1 << 32)
        )
        #: rows whose prediction holds the last value instead of extrapolating
        self.hold_rows: tuple[int, ...] = tuple(i for i, f in enumerate(self.fields) if f.predict == "hold")
        #: each field's wire width in bytes (what the native row encoder needs of a field)
        self.wire_widths: list[int] = [f.wire_dtype.itemsize for f in self.fields]

    def index(self, name: str) -> int:
        """Row of field ``name`` in a state matrix."""
        return self._index[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def to_wire(self) -> list[dict[str, Any]]:
        return [f.to_wire() for f in self.fields]

    @classmethod
    def from_wire(cls, data: Any) -> Schema:
        """Rebuild a schema from its `welcome` description."""
        if not isinstance(data, list):
            raise ValueError("schema must be a list")
        out = []
        for d in data:
            kind = d["kind"]
            predict = d.get("predict", "linear")
            if kind == "float":
                out.append(Float(d["name"], d["lo"], d["hi"], d["step"], predict))
            elif kind == "angle":
                out.append(Angle(d["name"], d["bits"], predict))
            elif kind == "int":
                out.append(Int(d["name"], str(d["wire"]).lstrip("<|"), predict))
            else:
                raise ValueError(f"unknown field kind {kind!r}")
        return cls(out)
