"""Which path the per-tick socket work takes: the native extension (``_wire``, Cython) or Python.

Both paths offer the same things with the same results, byte for byte:
``frame_reader`` (the fast frame splitter behind ``wsstream.WsStream``), ``recv_frames``
(one non-blocking read from each of many sockets, split into frames, in one call) and
``send_parts`` (one scatter-gather ``sendmsg`` per socket, many sockets in one call),
``input_fields`` (the common input message recognised in its msgpack bytes) and
``token_bucket``, ``ack_tracker`` and ``input_queue`` (``core.ratelimit.TokenBucket``,
``core.acks.AckTracker`` and ``core.inputs.InputQueue``, their numbers kept in C). The
room's two per-session passes of the tick, ``read_pass`` and ``send_pass``, are native only:
on the Python path the room runs ``server.inbox.Inbox.read`` and ``server.outbound.send_frames``,
which they repeat for the usual session (handing it any other one). The
native path is used when the extension was built (``pip install`` compiles it when a C
compiler is present) and ``GAMESYNC_PURE`` is unset or ``0``; ``use_native`` switches at run
time (the tests run both paths in one process).

The bot swarm's per-bot work (its mirror, decode cache, poll set, and the per-state and
per-input calls) has a native twin of its own, ``_bots``, which ``gamesync.native.bots``
offers on the same switch (``gamesync.client.botcore.kit`` picks it or the Python twins).
Rooms poll their sockets with its ``ReadySet`` too (``ready_set``). For games with an
``input_spec``, ``take_batch`` takes a tick's inputs as one table, and ``plan_pass`` plans
the usual tick's snapshots natively.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .. import sockio
from ..core.acks import AckTracker
from ..core.inputs import DRAIN_TICKS, INPUT_BACKLOG, InputQueue
from ..core.inputspec import HEAD, InputBatch, IntInputs
from ..core.inputspec import take_batch as _py_take_batch
from ..core.protocol import InputFields
from ..core.protocol import input_fields as _py_input_fields
from ..core.ratelimit import TokenBucket
from ..core.state import History
from ..wsframe import FrameReader

logger = logging.getLogger(__name__)

#: set to 1 to force the pure-Python path even where the extension is built
PURE_ENV = "GAMESYNC_PURE"

_ext: ModuleType | None
try:
    _ext = importlib.import_module(f"{__name__}._wire")
    _import_error = ""
except ImportError as e:  # no compiler at install time, or a source checkout never built
    _ext = None
    _import_error = str(e)

_bots_ext: ModuleType | None  # the bots' extension (gamesync.native.bots offers it; rooms use its ReadySet)
try:
    _bots_ext = importlib.import_module(f"{__name__}._bots")
except ImportError:
    _bots_ext = None

_native = _ext is not None and os.environ.get(PURE_ENV, "") in ("", "0")
_logged = False


def available() -> bool:
    """Whether the native extension is built and importable."""
    return _ext is not None


def active() -> bool:
    """Whether the native path is the one in use."""
    return _native


def use_native(on: bool) -> bool:
    """Switch paths (False: pure Python); returns the previous setting. The native path is
    only taken when it is ``available``; readers made before the switch keep their path."""
    global _native
    was, _native = _native, on and _ext is not None
    return was


def describe() -> str:
    """One line naming the path in use, and why when it is the Python one."""
    if _native:
        return "native wire path (gamesync.native._wire)"
    if _ext is None:
        return f"pure-Python wire path (the native extension is not built: {_import_error})"
    return f"pure-Python wire path ({PURE_ENV} is set)"


def log_path_once() -> None:
    """Log which path runs, once per process (``gamesync serve`` and the bots call it)."""
    global _logged
    if not _logged:
        _logged = True
        logger.info("%s", describe())


def frame_reader(masked: bool, max_size: int) -> FrameReader:
    """A fast frame reader (``wsframe.FrameReader``'s interface) on the path in use."""
    if _native:
        assert _ext is not None
        reader: FrameReader = _ext.FrameReader(masked, max_size)
        return reader
    return FrameReader(masked, max_size)


def recv_frames(socks: Sequence[Any], readers: Sequence[Any], max_bytes: int) -> list[Any]:
    """For each socket: one non-blocking read of up to ``max_bytes``, fed to its reader.

    Each result is ``(n, messages, rest)`` with ``n`` the bytes read (0: end of stream,
    negative: minus the errno; then the messages are empty and rest None), ``messages`` the
    complete binary messages and ``rest`` what the reader handed over (see
    ``FrameReader.feed``). A frame over the reader's limit stops it and sets its ``too_big``.
    Native readers go with the native path, Python readers with the Python path.
    """
    if _native and readers and type(readers[0]) is not FrameReader:
        assert _ext is not None
        out: list[Any] = _ext.recv_frames(socks, readers, max_bytes)
        return out
    return sockio.recv_frames(socks, readers, max_bytes)


def send_parts(socks: Sequence[Any], parts: Sequence[Sequence[bytes]]) -> list[int]:
    """For each socket, one non-blocking ``sendmsg`` of its byte strings, in order: bytes
    written (0 when the socket is full), or minus the errno of a failed send."""
    if _native:
        assert _ext is not None
        out: list[int] = _ext.send_parts(socks, parts)
        return out
    return sockio.send_parts(socks, parts)


def send_masked(socks: Sequence[Any], msgs: Sequence[bytes], keys: bytes) -> list[int]:
    """For each socket, its message as one masked binary frame (masking key ``keys[4i:4i+4]``),
    one non-blocking send each: the results as for ``send_parts``."""
    if _native:
        assert _ext is not None
        out: list[int] = _ext.send_masked(socks, msgs, keys)
        return out
    return sockio.send_masked(socks, msgs, keys)


def token_bucket(rate: float, burst: float, now: float = 0.0) -> TokenBucket:
    """A ``core.ratelimit.TokenBucket`` on the path in use: the native twin keeps its numbers
    as C doubles (the server charges three buckets per client per tick)."""
    if _native:
        assert _ext is not None
        bucket: TokenBucket = _ext.TokenBucket(rate, burst, now)
        return bucket
    return TokenBucket(rate, burst, now)


def ack_tracker(keep: int, lag: int, stream: bool = False) -> AckTracker:
    """A ``core.acks.AckTracker`` on the path in use: the native twin keeps its ring of sent
    ticks in C arrays (the server asks every client's tracker twice per tick)."""
    if _native:
        assert _ext is not None
        tracker: AckTracker = _ext.AckTracker(keep, lag, stream)
        return tracker
    return AckTracker(keep, lag, stream)


def input_queue(max_per_tick: int = 32, backlog: int = INPUT_BACKLOG, drain_ticks: int = DRAIN_TICKS,
                max_waiting: int | None = None) -> InputQueue:
    """A ``core.inputs.InputQueue`` on the path in use (the native twin keeps its counters in C)."""
    if _native:
        assert _ext is not None
        queue: InputQueue = _ext.InputQueue(max_per_tick, backlog, drain_ticks, max_waiting)
        return queue
    return InputQueue(max_per_tick, backlog, drain_ticks, max_waiting)


def read_pass(ready: list[Any], now: float, take: Any, handle: Any, fail: Any, validate: Any,
              playing: Any, stats: Any) -> None:
    """A room's reads of the tick on the native path (``_wire.read_pass``; the caller checks
    ``active`` and keeps the Python path, ``server.inbox.Inbox.read``, for the rest)."""
    assert _ext is not None
    _ext.read_pass(ready, now, take, handle, fail, validate, playing, stats)


def send_pass(plan: list[Any], now: float, slow: Any, stats: Any) -> None:
    """A room's writes of the tick on the native path (``_wire.send_pass``; the Python path is
    ``server.outbound.send_frames``)."""
    assert _ext is not None
    _ext.send_pass(plan, now, slow, stats)


def ready_set() -> sockio.ReadySet:
    """A ``sockio.ReadySet`` on the path in use: natively, the bots' twin (``_bots.ReadySet``,
    which keeps the owners in a list by descriptor and makes no (fd, events) pair per socket)."""
    if _native and _bots_ext is not None:
        found: sockio.ReadySet = _bots_ext.ReadySet()
        return found
    return sockio.ReadySet()


def plan_pass(sessions: Iterable[Any], tick: int, history: History, cap: int,
              build: Callable[[tuple[int, int]], Any]) -> tuple[list[tuple[Any, Any]], int] | None:
    """A room's snapshot plan of the tick on the native path (``_wire.plan_pass``: the usual
    tick of ``server.payloads.encode_payloads``), or None for the Python plan to make."""
    assert _ext is not None
    out: tuple[list[tuple[Any, Any]], int] | None = _ext.plan_pass(sessions, tick, history, cap, build)
    return out


def take_batch(sessions: Mapping[int, Any], spec: IntInputs, arrived: list[int], applied: list[int]) -> InputBatch:
    """A room's inputs of the tick for a game with an ``input_spec``: every session's
    ``proto.inputs`` taken into one ``InputBatch`` (``core.inputspec.take_batch``; natively,
    the queues' C rows are copied into the table with no Python object per input)."""
    if _native:
        assert _ext is not None
        table = np.frombuffer(_ext.take_batch(sessions, len(spec), arrived, applied), dtype=np.int64)
        return InputBatch(spec, table.reshape(-1, len(HEAD) + len(spec)))
    return _py_take_batch(((cid, s.proto.inputs) for cid, s in sessions.items()), spec, arrived, applied)


def input_fields(data: bytes) -> InputFields | None:
    """``core.protocol.input_fields``: the common input message's fields, or None."""
    if _native:
        assert _ext is not None
        out: InputFields | None = _ext.input_fields(data)
        return out
    return _py_input_fields(data)

