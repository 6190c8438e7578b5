"""Client-side copy of the world: applies snapshots against the states it holds."""

from __future__ import annotations

from typing import Any

from .delta import decode_delta, decompress_payload
from .errors import DesyncError, PayloadError
from .protocol import ACK_BITS, NO_TICK
from .schema import Schema
from .state import State


class DecodeCache:
    """Decode results shared by every mirror in one process (a bot swarm).

    Decoding is a pure function of (payload, tick, baseline state, reference state), and the
    state of one room at one tick is unique (decoding is exact), so the key is the payload
    with the three ticks: a payload the server sent to many clients of one room is decoded
    once. Use one cache per room.
    """

    def __init__(self, keep_ticks: int = 64) -> None:
        self.keep_ticks = keep_ticks
        self._d: dict[tuple[Any, ...], State] = {}
        self._newest = -1
        self.hits = 0
        self.misses = 0

    def decode(self, schema: Schema, tick: int, base: State | None, ref: State | None, flags: int,
               payload: bytes) -> State:
        key = (tick, base.tick if base else -1, ref.tick if ref else -1, flags, payload)
        st = self._d.get(key)
        if st is not None:
            self.hits += 1
            return st
        self.misses += 1
        st = decode_delta(schema, decompress_payload(flags, payload), tick, base, ref)
        self._d[key] = st
        if tick > self._newest:
            self._newest = tick
            floor = tick - self.keep_ticks
            for k in [k for k in self._d if k[0] < floor]:
                del self._d[k]
        return st


class Mirror:
    """The states a client holds, by tick, and the newest one.

    The server's baseline for a client only moves forward, and its reference is either the
    tick before the baseline or the baseline's own baseline. So once a snapshot on baseline
    B arrives, the mirror keeps states from B - 1 on, plus the baselines they were decoded
    from. ``ack_bits()`` reports which of the ticks before the newest it holds.
    """

    def __init__(self, schema: Schema, history: int, cache: DecodeCache | None = None) -> None:
        self.schema = schema
        self.history = history
        self.cache = cache
        self._states: dict[int, tuple[State, int]] = {}  # tick -> (state, its baseline tick)
        self.latest: State | None = None

    @property
    def tick(self) -> int:
        """Newest tick held (-1 before the first snapshot)."""
        return self.latest.tick if self.latest is not None else NO_TICK

    def get(self, tick: int) -> State | None:
        hit = self._states.get(tick)
        return hit[0] if hit else None

    def _need(self, tick: int, what: str) -> State | None:
        if tick == NO_TICK:
            return None
        st = self.get(tick)
        if st is None:
            raise DesyncError(f"snapshot needs {what} tick {tick}, which this client does not hold")
        return st

    def apply(self, tick: int, base: int, ref: int, flags: int, payload: bytes) -> State | None:
        """Decode one snapshot; returns the new state, or None if it is not newer than the latest."""
        latest = self.latest
        if latest is not None and tick <= latest.tick:
            return None
        states = self._states
        b = r = None
        if base != NO_TICK:  # (what _need does, inline: every snapshot of every bot comes here)
            hit = states.get(base)
            b = hit[0] if hit is not None else self._need(base, "baseline")
            if ref != NO_TICK:
                hit = states.get(ref)
                r = hit[0] if hit is not None else self._need(ref, "reference")
        try:
            if self.cache is not None:
                st = self.cache.decode(self.schema, tick, b, r, flags, payload)
            else:
                st = decode_delta(self.schema, decompress_payload(flags, payload), tick, b, r)
        except PayloadError as e:
            raise DesyncError(str(e)) from None
        states[tick] = (st, base)
        self.latest = st
        self._prune(base - 1 if base != NO_TICK else tick - self.history)
        return st

    def ack_bits(self) -> int:
        """Bit i set when the mirror holds tick ``self.tick - 1 - i`` (i < ACK_BITS)."""
        top = self.tick
        bits = 0
        for t in self._states:
            d = top - 1 - t
            if 0 <= d < ACK_BITS:
                bits |= 1 << d
        return bits

    def _prune(self, floor: int) -> None:
        states = self._states
        if not states or next(iter(states)) >= floor:  # ticks arrive in order: the first is the oldest
            return
        keep = {t for t in states if t >= floor}
        keep |= {self._states[t][1] for t in keep}
        if len(keep) != len(self._states):
            self._states = {t: v for t, v in self._states.items() if t in keep}

    def __len__(self) -> int:
        return len(self._states)
