"""Reliable sends to players anywhere in the cluster (gamesync.sends over Redis pub/sub).

The sending node publishes the send on ``ev:all`` with the player named (every node gets
it, itself included) and again every RESEND_S until it is answered or times out; a node
with a client of that player hands it over (``Deliveries``: once per client) and publishes
each ack and reply on the send's ``to`` channel, the sender's control channel (or a
Publisher's ``ans:`` channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import trio

from ..sends import RESEND_S, Deliveries, PlayerSend, PlayerSends, ReliableRoom
from . import keys as k
from .context import NodeContext


class ClusterSends:
    def __init__(self, ctx: NodeContext, publish: Callable[[str, str], None]) -> None:
        self.ctx = ctx
        self._publish = publish  # (channel, message), never blocking
        self.mine = PlayerSends(ctx.id)
        self.deliveries = Deliveries()

    # -- sending ---------------------------------------------------------------------------

    def open(self, player: str, data: Any, timeout: float, expect_reply: bool,
             on_result: Callable[[bool], None] | None) -> PlayerSend:
        h = self.mine.open(player, data, timeout, expect_reply, on_result, trio.current_time())
        self.offer()
        return h

    def offer(self) -> None:
        """Time out this node's pending sends; publish those due."""
        now = trio.current_time()
        to = self.ctx.keys.ctl_channel(self.ctx.id)
        for h in self.mine.due(now):
            send = {"id": h.id, "to": to, "ms": int((h.deadline - now) * 1000), "reply": h.expect_reply}
            self._publish(self.ctx.keys.all_channel, k.encode_event(h.data, room=None, player=h.player, send=send))

    async def loop(self) -> None:
        while True:
            await trio.sleep(RESEND_S / 2)
            if self.mine.pending:
                self.offer()

    def answered(self, raw: str) -> bool:
        """Take an answer from the control channel; False if ``raw`` is not one."""
        a = k.decode_answer(raw)
        if a is None:
            return False
        self.mine.answered(*a)
        return True

    # -- delivering ------------------------------------------------------------------------

    def deliver(self, rooms: Iterable[ReliableRoom], ev: dict[str, Any]) -> None:
        """Hand a published send to the player's clients here; answers go to its ``to``."""
        s = ev["send"]
        answer = partial(self._answer, s["to"], s["id"])
        self.deliveries.deliver(rooms, s["id"], ev["player"], ev["data"], float(s["ms"]) / 1000, s["reply"], answer,
                                trio.current_time())

    def _answer(self, to: str, send_id: str, acked: bool, replied: bool, reply: Any) -> None:
        self._publish(to, k.encode_answer(send_id, acked, replied, reply))
