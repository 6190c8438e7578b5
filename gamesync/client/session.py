"""One connection of the client, over a trio-websocket connection: the join, the seat, the reads.

Functions over ``(ws, proto)``: the ``Client`` opens the WebSocket, keeps what they return
and routes the events they read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..core import clientproto as cp
from ..core.errors import DEFERRED_CODES, Redirect
from .reconnect import ClientClosed, Deferred

#: seconds the server has to answer a join (and to send the redirect after its error)
JOIN_TIMEOUT_S = 10


async def join(ws: Any, proto: cp.ClientProtocol) -> cp.ClientSideEvent:
    """Send the join; the server's answer (``Welcomed``, or the error that refused it).
    Raises the ``Redirect`` that follows a redirect error, ``Deferred`` for "not now"."""
    await ws.send_message(proto.join())
    with trio.fail_after(JOIN_TIMEOUT_S):
        first = await ws.get_message()
    if isinstance(first, str):
        raise ClientClosed("server sent a text frame")
    answer = proto.receive(first, trio.current_time())[0]
    if isinstance(answer, cp.ErrorReceived) and answer.code == Redirect.code:
        with trio.fail_after(JOIN_TIMEOUT_S):  # the redirect message follows the error
            nxt = await ws.get_message()
        more = proto.receive(nxt, trio.current_time()) if isinstance(nxt, bytes) else []
        if more and isinstance(more[0], Redirect):
            raise more[0]
    if isinstance(answer, cp.ErrorReceived) and answer.code in DEFERRED_CODES:  # "not now"
        raise Deferred(f"join deferred: {answer.code}: {answer.reason}")  # retried with backoff
    return answer


async def take_seat(ws: Any, proto: cp.ClientProtocol, resumed: bool) -> None:
    """The same seat (``resumed``): send what it had not applied yet, once more; a new seat:
    forget the old one's inputs."""
    if resumed:
        for msg in proto.resend_unacked():
            await ws.send_message(msg)
    else:
        proto.unacked.clear()


async def read_messages(ws: Any, proto: cp.ClientProtocol, handle: Callable[[cp.ClientSideEvent], None]) -> None:
    """Feed every message to ``proto`` and its events to ``handle``, send what it queued; until
    the connection ends (raises what ended it, or the ``Redirect`` of a room that moved)."""
    while True:
        data = await ws.get_message()
        if isinstance(data, str):
            raise ClientClosed("server sent a text frame")
        for ev in proto.receive(data, trio.current_time()):
            if isinstance(ev, Redirect):  # the room moved to another node: follow it
                raise ev
            handle(ev)
        while proto.outbox:
            await ws.send_message(proto.outbox.pop(0))


async def ping_every(interval: float, ping: Callable[[], Awaitable[None]]) -> None:
    """Call ``ping`` every ``interval`` seconds, for ever."""
    while True:
        await trio.sleep(interval)
        await ping()
