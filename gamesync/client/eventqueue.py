"""The client's queue of events for its consumer: bounded, the oldest dropped (and counted)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

import trio

from .status import ClientEvent


class EventQueue:
    """Events kept for a consumer that may be behind: at most ``size``, the oldest dropped."""

    def __init__(self, size: int) -> None:
        self._events: deque[ClientEvent] = deque(maxlen=size)
        self._ready = trio.Event()
        self.dropped = 0  # events dropped for a consumer that was behind

    def push(self, ev: ClientEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(ev)
        self._ready.set()

    def wake(self) -> None:
        """Wake the consumer, to see that the queue is closed."""
        self._ready.set()

    async def drain(self, closed: Callable[[], bool],
                    failure: Callable[[], BaseException | None] = lambda: None) -> AsyncIterator[ClientEvent]:
        """Each event in turn, waiting for more, until ``closed()`` and none are left; then
        raises ``failure()``, if any (why the client closed, when it did not mean to)."""
        while not (closed() and not self._events):
            if self._events:
                yield self._events.popleft()
                continue
            self._ready = trio.Event()
            await self._ready.wait()
        why = failure()
        if why is not None:
            raise why
