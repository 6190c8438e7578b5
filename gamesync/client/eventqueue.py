"""The client's queue of events for its consumer: bounded, the oldest dropped (and counted)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

import trio

from ..core import clientproto as cp


class EventQueue:
    """Events kept for a consumer that may be behind: at most ``size``, the oldest dropped."""

    def __init__(self, size: int) -> None:
        self._events: deque[cp.ClientSideEvent] = deque(maxlen=size)
        self._ready = trio.Event()
        self.dropped = 0  # events dropped for a consumer that was behind

    def push(self, ev: cp.ClientSideEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(ev)
        self._ready.set()

    def wake(self) -> None:
        """Wake the consumer, to see that the queue is closed."""
        self._ready.set()

    async def drain(self, closed: Callable[[], bool]) -> AsyncIterator[cp.ClientSideEvent]:
        """Each event in turn, waiting for more, until ``closed()`` and none are left."""
        while not (closed() and not self._events):
            if self._events:
                yield self._events.popleft()
                continue
            self._ready = trio.Event()
            await self._ready.wait()
