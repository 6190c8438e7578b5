"""Packed record lists (docs/protocol.md 18.3.1) on the path in use: the native
``gamesync.native._pack`` where it is built and the native path is on (``native.active``),
else ``core.viewpack.pack_lists``; both give the same bytes (tests/core/test_viewpack.py). Also
the native chunk writer and the swarm's chunk counter, for ``core.viewcodec`` and
``core.viewmirror`` (tests/core/test_views.py compares them with the Python code), and the
snapshot rows' encoder ``encode_rows`` and the state capture's ``quantise_rows`` (twins of
``core.delta.encode_rows`` and ``core.state.quantise_rows``, compared with them by
tests/core/test_delta_rows.py and test_quantise_rows.py)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core import delta
from ..core.schema import TAU, Schema
from ..core.state import quantise_rows as _py_quantise_rows
from ..core.viewpack import pack_lists as _py_pack_lists
from . import active

_ext: ModuleType | None
try:
    _ext = importlib.import_module(f"{__package__}._pack")
except ImportError:  # not built: the Python path
    _ext = None


def available() -> bool:
    """Whether the native packer is built and importable."""
    return _ext is not None


@lru_cache(maxsize=16)
def _columns(dtype: np.dtype[Any]) -> tuple[list[int], list[int], list[bool]]:
    """Each column's offset in a record, width and signedness (the record's fields, in order)."""
    names = dtype.names or ()
    if names[:2] != ("slot", "id"):
        raise ValueError("a record starts with its slot and id")
    fields = [dtype.fields[n] for n in names]  # type: ignore[index]
    return [int(f[1]) for f in fields], [f[0].itemsize for f in fields], [f[0].kind == "i" for f in fields]


def chunk_writer() -> Any:
    """The native chunk writer (``_pack.write_chunks``) when the native path is in use, else None
    (``core.viewcodec.encode_chunks`` then lays the chunks out with numpy)."""
    return _ext.write_chunks if _ext is not None and active() else None


def chunk_counter() -> Any:
    """The native walk of ``ViewCounts`` over a kept-cells bin (``_pack.count_chunks``) when the
    native path is in use, else None (a ``ChunkCache`` then lets ``ViewCounts`` walk in Python)."""
    return _ext.count_chunks if _ext is not None and active() else None


def pack_lists(dtype: np.dtype[Any], rows: NDArray[np.uint8], counts: NDArray[np.int64]) -> list[bytes]:
    """``core.viewpack.pack_lists`` on the path in use."""
    if _ext is not None and active():
        offsets, widths, signs = _columns(dtype)
        out: list[bytes] = _ext.pack_lists(np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, dtype.itemsize),
                                           np.ascontiguousarray(counts, dtype=np.int64), offsets, widths, signs)
        return out
    return _py_pack_lists(dtype, rows, counts)


def encode_rows(schema: Schema, res: NDArray[np.int32], vals: NDArray[np.int32]) -> tuple[list[Any], list[Any] | None]:
    """``core.delta.encode_rows`` on the path in use (natively, one C pass per field instead of
    a dozen numpy calls: the tick's one shared snapshot costs a tenth as much to lay out)."""
    if _ext is not None and active() and res.dtype == np.int32 and vals.dtype == np.int32:
        out: tuple[list[Any], list[Any] | None] = _ext.encode_rows(
            res, vals, schema.wire_widths, delta.SPARSE_RATIO, delta.OUTLIER_RATIO, delta.ALL_CHANGED_RATIO)
        return out
    return delta.encode_rows(schema, res, vals)


@lru_cache(maxsize=64)
def _quantise_spec(schema: Schema, blank: tuple[int, ...]) -> list[tuple[int, float, float, int]]:
    """``_pack.quantise_rows``' spec of each row: the numbers ``Field.quantise_into`` uses."""
    spec: list[tuple[int, float, float, int]] = []
    for i, f in enumerate(schema):
        if i in blank:
            spec.append((0, 0.0, 0.0, 0))
        elif f.kind == "float":
            spec.append((1, float(f.lo), float(f.step), int(f.levels)))
        elif f.kind == "angle":
            spec.append((2, (1 << f.bits) / TAU, 0.0, (1 << f.bits) - 1))
        else:
            spec.append((3, 0.0, 0.0, ord(f.wire_dtype.char)))
    return spec


def quantise_rows(schema: Schema, columns: Mapping[str, NDArray[Any]], n: int, mat: NDArray[np.int32],
                  blank: tuple[int, ...] = ()) -> None:
    """``core.state.quantise_rows`` on the path in use (natively, one C loop per field instead
    of a handful of numpy calls; a row it declines, a NaN say, is written by the Python code)."""
    if _ext is None or not active():
        _py_quantise_rows(schema, columns, n, mat, blank)
        return
    fields, blank = schema.fields, tuple(blank)
    cols = [None if i in blank else columns[f.name] for i, f in enumerate(fields)]  # a blank row's is not read
    left = _ext.quantise_rows(cols, mat, _quantise_spec(schema, blank), n)
    for i in left:
        fields[i].quantise_into(columns[fields[i].name][:n], mat[i])


__all__ = ["available", "chunk_counter", "chunk_writer", "encode_rows", "pack_lists", "quantise_rows"]
