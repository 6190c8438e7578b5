"""Reliable messages: sent to one client, resolved when it acknowledges them (or, for a
request, answers them), when they time out, or when the client leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..sends import Outcome


class ReliableSend(Outcome):
    """A message a client must acknowledge: ``result`` is True (acked; with ``expect_reply``:
    answered, the answer in ``reply``), False (timed out or the client left) or None
    (pending). ``acked`` tells a request that timed out waiting for its reply from one that
    never arrived."""

    def __init__(self, ack_id: int, client_id: int, deadline: float, on_result: Callable[[bool], None] | None,
                 expect_reply: bool = False, on_ack: Callable[[], None] | None = None) -> None:
        super().__init__(on_result)
        self.ack_id = ack_id
        self.client_id = client_id
        self.deadline = deadline
        self.expect_reply = expect_reply
        self.acked = False
        self.replied = False
        self.reply: Any = None
        self._on_ack = on_ack

    def acknowledge(self, replied: bool, reply: Any) -> bool:
        """The client acked (``replied``: answered with ``reply``); True once that resolves it."""
        first = not self.acked
        self.acked = True
        if replied or not self.expect_reply:
            self.replied, self.reply = replied, reply
            self.resolve(True)
            return True
        if first and self._on_ack is not None:
            self._on_ack()
        return False


class ReliableBook(dict[int, ReliableSend]):
    """A room's pending reliable messages by ack id."""

    def __init__(self) -> None:
        super().__init__()
        self._next_ack_id = 1

    def open(self, client_id: int, deadline: float, on_result: Callable[[bool], None] | None,
             expect_reply: bool = False, on_ack: Callable[[], None] | None = None) -> ReliableSend:
        """A new handle with the next ack id (not yet pending: see ``add``)."""
        h = ReliableSend(self._next_ack_id, client_id, deadline, on_result, expect_reply, on_ack)
        self._next_ack_id += 1
        return h

    def add(self, h: ReliableSend) -> None:
        self[h.ack_id] = h

    def acked(self, ack_id: int, client_id: int, replied: bool = False, reply: Any = None) -> None:
        """Only its addressee can acknowledge (or answer) a message."""
        h = self.get(ack_id)
        if h is not None and h.client_id == client_id and h.acknowledge(replied, reply):
            del self[ack_id]

    def expire(self, now: float) -> None:
        for h in [h for h in self.values() if h.deadline <= now]:
            del self[h.ack_id]
            h.resolve(False)

    def drop_client(self, client_id: int) -> None:
        """The client left: its pending messages resolve False."""
        for h in [h for h in self.values() if h.client_id == client_id]:
            del self[h.ack_id]
            h.resolve(False)
