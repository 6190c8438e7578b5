"""One client's inputs waiting for the game: a jitter buffer that hands them out evenly.

Inputs reach the server unevenly even when a client sends them evenly: a loaded network hop
or machine delivers two in one tick and none in the next. A game like the arena moves a
player once per input applied, so uneven delivery becomes uneven motion, which no client
can predict (every client then pays residual bytes for it). So each tick hands the game the
oldest waiting input, one, and more only past a small backlog:

- inputs go to the game in seq order, each seq at most once (duplicates and seqs at or
  below the newest applied one are dropped on arrival);
- a tick takes one input, plus as many more as leave at most ``backlog`` waiting, and
  never more than ``max_per_tick``; so an input waits at most ``backlog`` ticks longer than
  under "everything at the next tick" (``backlog`` 0 is that rule);
- when inputs were left waiting after ``drain_ticks`` ticks in a row, that last tick
  applies one more: a client whose inputs came in a burst once does not keep the extra
  tick of delay for good;
- more than ``max_waiting`` inputs waiting at once is a flood (``RateLimited``).

The input ack (``last_applied``) is the seq of the newest input handed to the game.

A queue for a game with an ``input_spec`` (core.inputspec.IntInputs) is told so with
``expect_ints``: the native twin then keeps its inputs as C integers and hands them out as
rows of an ``InputBatch`` (``take_batch`` in gamesync.native); this one keeps the validated
tuples as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import RateLimited
from .protocol import InputFrame, input_frame

#: inputs left waiting after a tick before the tick catches up (0: every input at the next tick)
INPUT_BACKLOG = 1
#: ticks a backlog may stand before one of its inputs goes early (a third of a second at 30 Hz)
DRAIN_TICKS = 10
#: integers per input at most, for ``expect_ints`` (the inputs the native read pass recognises
#: are msgpack fixarrays)
MAX_INTS = 15


class InputQueue:
    """A client's waiting inputs and its input ack; ``take`` is called once per tick."""

    __slots__ = ("_waiting", "last_applied", "max_per_tick", "max_waiting", "backlog", "drain_ticks", "_standing",
                 "arrived", "ints")

    def __init__(self, max_per_tick: int = 32, backlog: int = INPUT_BACKLOG, drain_ticks: int = DRAIN_TICKS,
                 max_waiting: int | None = None) -> None:
        if max_per_tick < 1 or backlog < 0 or drain_ticks < 1:
            raise ValueError("max_per_tick >= 1, backlog >= 0 and drain_ticks >= 1")
        self._waiting: list[InputFrame] = []  # arrival order, possibly with duplicates
        self.last_applied = 0  # newest seq handed to the game (the input ack)
        self.max_per_tick = max_per_tick
        self.max_waiting = 4 * max_per_tick if max_waiting is None else max_waiting
        self.backlog = backlog
        self.drain_ticks = drain_ticks
        self._standing = 0  # ticks in a row that ended with inputs still waiting
        self.arrived = 0  # inputs added since the last take (for the room's stats)
        self.ints = -1  # integers per input, once ``expect_ints`` said so (-1: any data)

    def __len__(self) -> int:
        """Inputs waiting (duplicates not yet removed)."""
        return len(self._waiting)

    def add(self, seq: int, data: Any) -> None:
        """An input received; one already applied is dropped. Raises ``RateLimited`` past
        ``max_waiting``."""
        if seq <= self.last_applied:
            return  # already applied: a duplicate or a late resend
        self._waiting.append(input_frame(seq, data))
        self.arrived += 1
        if len(self._waiting) > self.max_waiting:
            raise RateLimited("too many inputs waiting to be applied")

    def expect_ints(self, lo: tuple[int, ...], hi: tuple[int, ...]) -> None:
        """From now on every input is ``len(lo)`` integers within ``lo``..``hi``, checked before
        ``add`` (``IntInputs.validate``, or the native read pass); what waits is dropped."""
        if not 1 <= len(lo) == len(hi) <= MAX_INTS:
            raise ValueError(f"1 to {MAX_INTS} integers per input, a low and a high for each")
        self.clear()
        self.ints = len(lo)

    def clear(self) -> None:
        """Nothing waiting reaches the game any more."""
        self._waiting = []
        self._standing = 0

    def take(self) -> list[InputFrame]:
        """This tick's inputs, in seq order: the oldest one, and more only past the backlog."""
        self.arrived = 0
        waiting = self._waiting
        if len(waiting) <= 1:  # the usual case: one input per tick (already checked newer), or none
            self._standing = 0
            if not waiting:
                return []
            self._waiting = []
            self.last_applied = waiting[0].seq
            return waiting
        in_order = len(waiting) == 2 and self.last_applied < waiting[0].seq < waiting[1].seq  # the usual backlog
        if not in_order:  # duplicates out, seq order
            waiting = sorted({f.seq: f for f in waiting if f.seq > self.last_applied}.values(), key=lambda f: f.seq)
        n = min(self.max_per_tick, max(1, len(waiting) - self.backlog))
        if n >= len(waiting):
            self._standing = 0
        else:
            self._standing += 1
            if self._standing >= self.drain_ticks and n < self.max_per_tick:
                n += 1  # a backlog that stood this long: one input goes early
                self._standing = 0
        now, self._waiting = waiting[:n], waiting[n:]
        if now:
            self.last_applied = now[-1].seq
        return now


def take_all(queues: Iterable[tuple[int, Any]], arrived: list[int],
             applied: list[int]) -> list[tuple[int, list[InputFrame]]]:
    """Every (client id, ``InputQueue``)'s inputs of the tick (``take``), those with none left
    out, counting the inputs added and taken per queue into the room's histograms ``arrived``
    and ``applied`` (the last slot for that many or more)."""
    top = len(arrived) - 1
    taken = []
    for cid, q in queues:
        arrived[min(top, q.arrived)] += 1
        frames = q.take()
        applied[min(top, len(frames))] += 1
        if frames:
            taken.append((cid, frames))
    return taken


__all__ = ["DRAIN_TICKS", "INPUT_BACKLOG", "MAX_INTS", "InputQueue", "take_all"]
