"""Token bucket; the caller passes ``now`` (seconds, any monotonic origin)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full. Tokens never go negative."""

    __slots__ = ("rate", "burst", "tokens", "_last")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        if rate < 0 or burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self._last = now

    def refill(self, now: float) -> float:
        """Add what accrued since the last call (time going backwards adds nothing)."""
        if now > self._last:
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now
        return self.tokens

    def take(self, n: float, now: float) -> bool:
        """Take ``n`` tokens if there are that many; otherwise take none and return False."""
        if n < 0:
            raise ValueError("cannot take a negative number of tokens")
        if now > self._last:  # refill, inlined: this runs for every client on every tick
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now
        if n <= self.tokens:
            self.tokens -= n
            return True
        return False

    def take_oversize(self, n: float, now: float) -> bool:
        """Like take, but a cost above ``burst`` passes when the bucket is full and empties it.

        For outbound frames larger than the burst (a full snapshot of a big world), which
        would otherwise never be sent.
        """
        if now > self._last:  # refill, inlined: this runs once per client per tick
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now
        t = self.tokens
        if 0 <= n <= t:
            self.tokens = t - n
            return True
        if n > self.burst and t >= self.burst:
            self.tokens = 0.0
            return True
        return False
