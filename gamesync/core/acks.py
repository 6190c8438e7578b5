"""What a client holds, from its acks, and what to encode its next snapshot against."""

from __future__ import annotations

from typing import Protocol

from .errors import ProtocolViolation
from .protocol import ACK_BITS, NO_TICK

ACK_MASK = (1 << ACK_BITS) - 1


class _Ticks(Protocol):
    def __contains__(self, tick: int, /) -> bool: ...


class AckTracker:
    """The server's view of one client's snapshots: sent, acknowledged, and the baseline policy.

    ``keep`` is how many sent ticks to remember (the history length); ``lag`` is the shared
    baseline offset: a client that holds tick T - lag gets its tick-T snapshot against it, so
    every client keeping up shares one payload per tick.

    ``stream``: the client decodes every snapshot of its stream, in order (protocol 3). Then
    what it holds follows from what was written to its stream, whatever its round-trip time:
    a snapshot handed to the socket is decoded before anything sent after it, so ``on_sent``
    counts as its acknowledgement and the client's own acks add nothing. Without it
    (protocol 2) only the client's acks say what it holds.
    """

    __slots__ = ("keep", "lag", "stream", "_ring", "_ticks", "_bases", "newest_sent", "acked", "ack_bits", "base",
                 "waits")

    def __init__(self, keep: int, lag: int, stream: bool = False) -> None:
        self.keep = keep
        self.lag = lag
        self.stream = stream
        # the snapshots sent in the last ``keep + 2`` ticks: slot tick % ring holds that
        # tick and the baseline it was encoded against (a fixed ring: no allocation per tick)
        self._ring = keep + 2
        self._ticks = [NO_TICK] * self._ring
        self._bases = [NO_TICK] * self._ring
        self.newest_sent = NO_TICK
        self.acked = NO_TICK
        self.ack_bits = 0
        self.base = NO_TICK  # newest baseline a snapshot was built on; only moves forward
        self.waits = 0  # ticks in a row without a snapshot for want of a payload (core.plan)

    def on_sent(self, tick: int, base: int) -> None:
        """A snapshot for ``tick`` encoded against ``base`` went into the client's stream."""
        i = tick % self._ring
        self._ticks[i] = tick
        self._bases[i] = base
        self.newest_sent = tick
        if self.stream:
            # acknowledge ``tick`` as a client that decodes its whole stream would: it then
            # holds ``tick``, and of the earlier ticks it was sent those its retention rule
            # keeps (protocol 12.2: from ``base - 1`` on, or from ``tick - keep`` on after a
            # full one); bit i is tick - 1 - i, kept while i < span
            bits = 0
            if self.acked != NO_TICK:
                d = tick - self.acked
                if 0 < d <= ACK_BITS:
                    bits = ((self.ack_bits << 1) | 1) << (d - 1)
            span = tick - (base - 1 if base != NO_TICK else tick - self.keep)
            if span < ACK_BITS:
                bits &= (1 << span) - 1
            self.acked, self.ack_bits = tick, bits & ACK_MASK

    def was_sent(self, tick: int) -> bool:
        """A snapshot for ``tick`` went to the client within the remembered window."""
        return tick >= 0 and self._ticks[tick % self._ring] == tick

    def sent_base(self, tick: int) -> int:
        """The baseline the snapshot for ``tick`` was encoded against (NO_TICK: unknown)."""
        i = tick % self._ring
        return self._bases[i] if tick >= 0 and self._ticks[i] == tick else NO_TICK

    def on_ack(self, tick: int, bits: int = 0) -> None:
        """The client holds snapshot ``tick`` (and those flagged in ``bits``)."""
        if self.was_sent(tick):
            if tick > self.acked:
                self.acked, self.ack_bits = tick, bits
            elif tick == self.acked:
                self.ack_bits |= bits
        elif tick > self.newest_sent:
            raise ProtocolViolation(f"ack for tick {tick}, which was never sent")

    def holds(self, tick: int) -> bool:
        """The client said it holds ``tick``, which we did send it."""
        d = self.acked - 1 - tick
        if d == -1:
            return True
        return 0 <= d < ACK_BITS and bool((self.ack_bits >> d) & 1) and self.was_sent(tick)

    def usable(self, key: tuple[int, int], floor: int) -> bool:
        """Whether the client can decode a payload built on ``key`` = (baseline, reference),
        given ``floor``, its baseline before this tick's ``choose`` (the client may have
        dropped anything older): it holds the baseline, and the reference too, or the
        reference is the one that baseline was itself built on."""
        b, r = key
        if b == NO_TICK or b < floor or not self.holds(b):
            return False
        # a reference older than floor - 1 may be gone even if an older ack said it was held
        return r == NO_TICK or (r >= floor - 1 and self.holds(r)) or r == self.sent_base(b)

    def settle(self, key: tuple[int, int]) -> tuple[int, int]:
        """Use ``key`` (one ``usable`` said yes to) instead of what ``choose`` picked."""
        self.base = key[0]
        return key

    def restart(self) -> tuple[int, int]:
        """Send a full snapshot this time. ``base`` stays: a client may still apply a delta
        sent before this full one and drop what is older than that delta's baseline, so no
        later baseline may go below it (acks move past it anyway)."""
        return NO_TICK, NO_TICK

    def choose(self, tick: int, history: _Ticks) -> tuple[int, int]:
        """(baseline, reference) for the client's tick-``tick`` snapshot.

        The baseline is tick - lag when the client holds it, else the newest tick it
        acknowledged; it never moves back. The reference is the tick before the baseline when
        the client holds it, else the baseline's own baseline. A baseline that left the
        history means a full snapshot (NO_TICK, NO_TICK).
        """
        acked = self.acked
        if acked == NO_TICK:
            return NO_TICK, NO_TICK
        target = tick - self.lag
        b = target if target < acked and self.holds(target) else acked
        if b < self.base:
            b = self.base
        if b not in history:
            return self.restart()
        self.base = b
        r = b - 1
        d = acked - b  # holds(r), inlined (this runs for every client on every tick)
        if not (d == -1 or (0 <= d < ACK_BITS and (self.ack_bits >> d) & 1 and r >= 0
                            and self._ticks[r % self._ring] == r)):
            r = self.sent_base(b)
        if r != NO_TICK and r not in history:
            r = NO_TICK
        return b, r
