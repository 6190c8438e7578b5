"""The WebSocket upgrade: reading the HTTP request, accepting it or refusing it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..core.errors import Forbidden, PeerClosed, ProtocolViolation
from ..wsframe import header_end
from .deflate import Deflating, SharedDeflate
from .wsconn import WsConn

#: handshakes whose CPU work (parsing the request, answering it) runs in one scheduler round:
#: a burst of hundreds is spread over rounds, between which the room's tick gets its turn
HANDSHAKES_AT_ONCE = 8
_turns: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("gamesync_handshake_turns")


def _handshake_turns() -> trio.CapacityLimiter:
    """This trio run's limiter of handshakes at once."""
    try:
        return _turns.get()
    except LookupError:
        limiter = trio.CapacityLimiter(HANDSHAKES_AT_ONCE)
        _turns.set(limiter)
        return limiter


@asynccontextmanager
async def _turn(timeout: trio.CancelScope) -> AsyncIterator[None]:
    """A handshake's turn. The wait for it is the server's own queue, not the peer's slowness,
    so the handshake ``timeout`` (its cancel scope) is lifted while the task waits and moved on
    by the wait once the turn comes: a busy server (ticks of 100 ms and more) lets a burst of
    handshakes queue instead of dropping the last of them."""
    limiter = _handshake_turns()
    deadline, t0 = timeout.deadline, trio.current_time()
    timeout.deadline = math.inf
    try:
        await limiter.acquire()
    finally:
        timeout.deadline = deadline + (trio.current_time() - t0)
    try:
        yield
    finally:
        limiter.release()


async def accept_upgrade(conn: WsConn, check: Callable[[Request], str | None] | None = None,
                         deflate: SharedDeflate | None = None, timeout: trio.CancelScope | None = None) -> Request:
    """Read the HTTP upgrade request and accept it, unless ``check(request)`` returns a
    reason to refuse it: then the client gets ``403 Forbidden`` with that reason and
    Forbidden is raised. With ``deflate``, permessage-deflate if the client offers it.
    ``timeout``: the handshake's deadline, which the wait for a turn does not spend."""
    head = b""
    timeout = timeout or trio.CancelScope()  # (none: a scope with no deadline, which moves nowhere)
    while True:
        data = await conn.recv_some()
        head += data
        bad: RemoteProtocolError | None = None
        async with _turn(timeout):  # the work, in turns; never the waits for the peer
            try:
                request = _request(conn, data)
            except RemoteProtocolError as e:
                bad = e
            else:
                if request is None:
                    continue
                refusal = check(request) if check is not None else None
                if refusal is None:
                    ext = deflate.extension(conn.max_message) if deflate is not None else None
                    await conn.send_all(conn.ws.send(AcceptConnection(extensions=[ext] if ext else [])))
                    if deflate is not None and ext is not None and ext.enabled():
                        conn.deflate = Deflating(deflate, conn.ws, ext)
                    # wsproto's server handshake does not hand bytes that came right
                    # behind the request to its Connection: the fast path takes them
                    conn.stream.start_fast()
                    end = header_end(head)
                    if 0 < end < len(head):
                        conn.pending = conn.ingest(head[end:], trio.current_time())
                    return request
        if bad is not None:
            if isinstance(bad.event_hint, RejectConnection):
                try:
                    await conn.send_all(conn.ws.send(bad.event_hint))
                except Exception:
                    pass
            raise ProtocolViolation(f"bad WebSocket handshake: {bad}") from None
        assert refusal is not None
        await refuse_upgrade(conn, 403, refusal)
        raise Forbidden(refusal)


def _request(conn: WsConn, data: bytes) -> Request | None:
    """The upgrade request, once ``data`` completes it (RemoteProtocolError if it is not one)."""
    conn.ws.receive_data(data)
    for ev in conn.ws.events():
        if isinstance(ev, Request):
            return ev
    return None


async def refuse_upgrade(conn: WsConn, status: int, reason: str) -> None:
    """An HTTP refusal of the upgrade with ``reason`` as its body (best effort, bounded)."""
    body = reason.encode()
    with trio.move_on_after(1.0):
        try:
            await conn.send_all(conn.ws.send(RejectConnection(
                status_code=status, headers=[(b"content-type", b"text/plain; charset=utf-8"),
                                             (b"content-length", str(len(body)).encode())],
                has_body=True)) + conn.ws.send(RejectData(body)))
        except (PeerClosed, LocalProtocolError):
            pass
