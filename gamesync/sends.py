"""Reliable sends to a player wherever they are (any room; in a cluster, any node), with an
acknowledgement, a timeout and an optional reply: the sender's side (``PlayerSends``, whose
handles a game awaits) and the delivering side (``Deliveries``), whatever carries them
between (direct calls in one process; Redis pub/sub in a cluster, gamesync.cluster.sends).

The sender offers a send again every RESEND_S until it is answered or times out, and a
delivering process hands it to each of the player's clients at most once while that
delivery is pending or done: so a player who moves (another room, another node, a new
connection) mid-send gets it where they arrive, and one who stays gets it once. The first
answer wins: an ack, or for ``expect_reply`` a reply (an ack alone then only sets
``acked``). A player whose connection drops after acking, before replying, may be asked
again on their next connection: at least once, never lost while it is pending.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import trio

#: a pending send is offered again this often (seconds)
RESEND_S = 0.5

#: (acked, replied, reply): a delivering process's answer
Answer = Callable[[bool, bool, Any], None]


class Outcome:
    """A pending send's outcome: ``result`` True or False once ``resolve``d (the first call
    wins; ``on_result`` hears it), None while pending; ``wait()`` from trio code returns it."""

    def __init__(self, on_result: Callable[[bool], None] | None) -> None:
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


class PlayerSend(Outcome):
    """A reliable send to a player: ``result`` is True (a client of theirs acked it; with
    ``expect_reply``: answered it, the answer in ``reply``), False (timed out: ``acked``
    tells whether it arrived) or None (pending); ``wait()`` from trio code returns it."""

    def __init__(self, send_id: str, player: str, data: Any, deadline: float, expect_reply: bool,
                 on_result: Callable[[bool], None] | None) -> None:
        super().__init__(on_result)
        self.id = send_id
        self.player = player
        self.data = data
        self.deadline = deadline
        self.expect_reply = expect_reply
        self.acked = False
        self.reply: Any = None
        self.next_send = 0.0

    def answer(self, acked: bool, replied: bool, reply: Any) -> None:
        if self.result is not None:
            return
        self.acked = self.acked or acked or replied
        if replied or (acked and not self.expect_reply):
            self.reply = reply if replied else None
            self.resolve(True)


class PlayerSends:
    """A sender's pending sends by id (ids unique to ``origin``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.pending: dict[str, PlayerSend] = {}
        self._ids = itertools.count(1)

    def open(self, player: str, data: Any, timeout: float, expect_reply: bool,
             on_result: Callable[[bool], None] | None, now: float) -> PlayerSend:
        """A new pending send, due at once."""
        h = PlayerSend(f"{self.origin}:{next(self._ids)}", player, data, now + timeout, expect_reply, on_result)
        h.next_send = now
        self.pending[h.id] = h
        return h

    def answered(self, send_id: str, acked: bool, replied: bool, reply: Any) -> None:
        h = self.pending.get(send_id)
        if h is not None:
            h.answer(acked, replied, reply)
            if h.result is not None:
                del self.pending[send_id]

    def due(self, now: float) -> list[PlayerSend]:
        """Time out the sends past their deadline; the others due to be offered (again) now."""
        out = []
        for h in list(self.pending.values()):
            if h.deadline <= now:
                del self.pending[h.id]
                h.resolve(False)
            elif h.next_send <= now:
                h.next_send = now + RESEND_S
                out.append(h)
        return out


class ReliableRoom(Protocol):
    """What ``Deliveries`` needs of a room (gamesync.server.room.Room)."""

    name: str
    closed: bool

    @property
    def players(self) -> list[tuple[int, str, str | None]]: ...

    def send_reliable(self, client_id: int, data: Any, timeout: float = 5.0,
                      on_result: Callable[[bool], None] | None = None, expect_reply: bool = False,
                      on_ack: Callable[[], None] | None = None) -> Any: ...


class Deliveries:
    """The sends this process has handed to its clients: each to each client of the player
    at most once while pending or done; forgotten at their deadline."""

    def __init__(self) -> None:
        self._given: dict[str, tuple[float, set[tuple[str, int]]]] = {}

    def deliver(self, rooms: Iterable[ReliableRoom], send_id: str, player: str, data: Any, timeout: float,
                expect_reply: bool, answer: Answer, now: float) -> int:
        """Hand the send to the clients of ``player`` in ``rooms`` that do not have it yet;
        ``answer`` gets each client's ack and reply. Returns how many got it now."""
        for gone in [k for k, (deadline, _) in self._given.items() if deadline <= now]:
            del self._given[gone]
        if timeout <= 0:
            return 0
        given = self._given.setdefault(send_id, (now + timeout, set()))[1]
        n = 0
        for room in list(rooms):
            if room.closed:
                continue
            for cid, name, who in room.players:
                key = (room.name, cid)
                if (who if who is not None else name) != player or key in given:
                    continue
                given.add(key)
                n += 1
                self._hand(room, key, given, data, timeout, expect_reply, answer)
        return n

    @staticmethod
    def _hand(room: ReliableRoom, key: tuple[str, int], given: set[tuple[str, int]], data: Any, timeout: float,
              expect_reply: bool, answer: Answer) -> None:
        sent: list[Any] = []

        def done(ok: bool) -> None:
            if ok:
                h = sent[0]
                answer(True, bool(h.replied), h.reply)
            else:  # not there (a kept seat), gone, or silent: a later offer may reach its next connection
                given.discard(key)

        sent.append(room.send_reliable(key[1], data, timeout, done, expect_reply, lambda: answer(True, False, None)))
