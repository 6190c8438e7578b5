"""Packed record lists (docs/protocol.md 18.3.1) on the path in use: the native
``gamesync.native._pack`` where it is built and the native path is on (``native.active``),
else ``core.viewpack.pack_lists``; both give the same bytes (tests/core/test_viewpack.py). Also
the native chunk writer and the swarm's chunk counter, for ``core.viewcodec`` and
``core.viewmirror`` (tests/core/test_views.py compares them with the Python code), and the
snapshot rows' encoder ``encode_rows`` (``core.delta.encode_rows``'s twin, compared with it by
tests/core/test_delta.py)."""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core import delta
from ..core.schema import Schema
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


__all__ = ["available", "chunk_counter", "chunk_writer", "encode_rows", "pack_lists"]
