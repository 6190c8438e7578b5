"""Inputs as columns, for games whose inputs are a few small integers (a direction, buttons).

A game that sets ``input_spec = IntInputs(dx=(-1, 1), dy=(-1, 1))`` says that every input
is a msgpack array of that many integers, each within its inclusive range. The server then
checks inputs itself (on the native path, in C, as they are read) instead of calling the
game's ``validate_input``, keeps them as plain integers rather than Python objects, and hands
``step`` one ``InputBatch`` per tick: the tick's inputs as numpy columns, ready for
vectorised rules. The wire is the same either way; only the game's side changes.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Sequence
from typing import Any

import numpy as np

from .errors import ProtocolViolation
from .inputs import MAX_INTS, take_all
from .protocol import InputFrame, input_frame

_INT64 = (-(2**63), 2**63 - 1)
_SEQUENCES = (list, tuple)
#: the leading columns of an ``InputBatch``'s table, before the input's integers
HEAD = ("client", "seq", "rank")


class IntInputs:
    """A game's inputs: arrays of ``len(ranges)`` integers, each within its inclusive
    ``(low, high)``, in the order given (``IntInputs(dx=(-1, 1), dy=(-1, 1))`` takes
    ``[dx, dy]``). Anything else closes the sender with a protocol error naming the shape."""

    __slots__ = ("names", "lo", "hi", "reason")

    def __init__(self, **ranges: tuple[int, int]) -> None:
        if not 1 <= len(ranges) <= MAX_INTS:
            raise ValueError(f"an input has 1 to {MAX_INTS} integers")
        for name, r in ranges.items():
            if (len(r) != 2 or any(type(v) is not int for v in r) or not _INT64[0] <= r[0] <= r[1] <= _INT64[1]
                    or name in HEAD):
                raise ValueError(f"{name}: a range is (low, high), 64-bit integers with low <= high, "
                                 f"and no field is called {' or '.join(HEAD)}")
        self.names = tuple(ranges)
        self.lo = tuple(r[0] for r in ranges.values())
        self.hi = tuple(r[1] for r in ranges.values())
        ranges_text = ", ".join(f"{n} in {lo}..{hi}" for n, lo, hi in zip(self.names, self.lo, self.hi, strict=True))
        self.reason = f"input is [{', '.join(self.names)}]: integers, {ranges_text}"

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return "IntInputs(" + ", ".join(f"{n}={(lo, hi)}" for n, lo, hi in zip(self.names, self.lo, self.hi,
                                                                               strict=True)) + ")"

    def validate(self, data: Any) -> tuple[int, ...]:
        """``data`` as the tuple the game gets, or ``ProtocolViolation``: what the server
        checks on the Python path, and where the native read pass hands anything it refuses."""
        if type(data) in _SEQUENCES and len(data) == len(self.lo):
            # (lengths checked just above: zip's strict check would double this call's cost)
            for v, lo, hi in zip(data, self.lo, self.hi):  # noqa: B905
                if type(v) is not int or not lo <= v <= hi:
                    break
            else:
                return tuple(data)
        raise ProtocolViolation(self.reason)


class InputBatch:
    """One tick's inputs for a game with an ``input_spec``, as columns: row ``i`` is one input,
    ``clients[i]`` sent it, ``seqs[i]`` is its seq, ``ranks[i]`` its place among that client's
    inputs this tick (0 first: a game applying several inputs per client applies rank 0 for
    everyone, then rank 1, ...), and ``values[i]`` its integers (one column each:
    ``batch["dx"]``). A client's rows are together and in seq order. Every array is int64."""

    __slots__ = ("spec", "table")

    def __init__(self, spec: IntInputs, table: np.ndarray) -> None:
        self.spec = spec
        #: (inputs, 3 + len(spec)): client, seq, rank, then the input's integers
        self.table = table

    @classmethod
    def of_frames(cls, spec: IntInputs, taken: Iterable[tuple[int, Sequence[InputFrame]]]) -> InputBatch:
        """The batch of (client id, its inputs this tick) pairs, inputs as ``spec.validate`` gave them."""
        flat: list[int] = []  # one flat list: numpy converts it in C, where a list of rows costs twice as much
        for cid, frames in taken:
            for r, f in enumerate(frames):
                flat += (cid, f.seq, r)
                flat += f.data
        return cls(spec, np.array(flat, dtype=np.int64).reshape(-1, len(HEAD) + len(spec)))

    def __len__(self) -> int:
        return len(self.table)

    @property
    def clients(self) -> np.ndarray:
        return self.table[:, 0]

    @property
    def seqs(self) -> np.ndarray:
        return self.table[:, 1]

    @property
    def ranks(self) -> np.ndarray:
        return self.table[:, 2]

    @property
    def values(self) -> np.ndarray:
        return self.table[:, len(HEAD):]

    @property
    def rounds(self) -> int:
        """Inputs of the busiest client this tick (ranks run from 0 to ``rounds - 1``)."""
        return int(self.table[:, 2].max()) + 1 if len(self.table) else 0

    def __getitem__(self, name: str) -> np.ndarray:
        """The column of the input integer ``name``."""
        return self.table[:, len(HEAD) + self.spec.names.index(name)]

    def frames(self) -> dict[int, list[InputFrame]]:
        """The same inputs in the other form ``step`` takes: client id -> its ``InputFrame`` list."""
        out: dict[int, list[InputFrame]] = {}
        for row in self.table.tolist():
            out.setdefault(row[0], []).append(input_frame(row[1], tuple(row[len(HEAD):])))
        return out

    def items(self) -> ItemsView[int, list[InputFrame]]:
        """``frames().items()``: code written for the dict form (``for cid, frames in
        inputs.items()``) reads a batch unchanged, at the cost of an object per input."""
        return self.frames().items()


def take_batch(queues: Iterable[tuple[int, Any]], spec: IntInputs, arrived: list[int],
               applied: list[int]) -> InputBatch:
    """Every (client id, ``InputQueue``)'s inputs of the tick (``take``) as one batch, counting
    the inputs added and taken per queue into the room's histograms ``arrived`` and ``applied``
    (the last slot for that many or more). ``gamesync.native.take_batch`` on the Python path."""
    return InputBatch.of_frames(spec, take_all(queues, arrived, applied))


__all__ = ["MAX_INTS", "InputBatch", "IntInputs", "take_batch"]
