"""Reliable messages: sent to one client, resolved when it acknowledges them, when they time
out, or when the client leaves."""

from __future__ import annotations

from collections.abc import Callable

import trio


class ReliableSend:
    """A message a client must acknowledge: ``result`` is True (acked), False (timed out or the
    client left) or None (pending)."""

    def __init__(self, ack_id: int, client_id: int, deadline: float,
                 on_result: Callable[[bool], None] | None) -> None:
        self.ack_id = ack_id
        self.client_id = client_id
        self.deadline = deadline
        self.result: bool | None = None
        self._on_result = on_result
        self._done = trio.Event()

    def resolve(self, ok: bool) -> None:
        if self.result is None:
            self.result = ok
            self._done.set()
            if self._on_result is not None:
                self._on_result(ok)

    async def wait(self) -> bool:
        await self._done.wait()
        return bool(self.result)


class ReliableBook(dict[int, ReliableSend]):
    """A room's pending reliable messages by ack id."""

    def __init__(self) -> None:
        super().__init__()
        self._next_ack_id = 1

    def open(self, client_id: int, deadline: float, on_result: Callable[[bool], None] | None) -> ReliableSend:
        """A new handle with the next ack id (not yet pending: see ``add``)."""
        h = ReliableSend(self._next_ack_id, client_id, deadline, on_result)
        self._next_ack_id += 1
        return h

    def add(self, h: ReliableSend) -> None:
        self[h.ack_id] = h

    def acked(self, ack_id: int, client_id: int) -> None:
        """Only its addressee can acknowledge a message."""
        h = self.get(ack_id)
        if h is not None and h.client_id == client_id:
            del self[ack_id]
            h.resolve(True)

    def expire(self, now: float) -> None:
        for h in [h for h in self.values() if h.deadline <= now]:
            del self[h.ack_id]
            h.resolve(False)

    def drop_client(self, client_id: int) -> None:
        """The client left: its pending messages resolve False."""
        for h in [h for h in self.values() if h.client_id == client_id]:
            del self[h.ack_id]
            h.resolve(False)
