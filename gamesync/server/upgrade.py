"""The WebSocket upgrade: reading the HTTP request, accepting it or refusing it."""

from __future__ import annotations

from collections.abc import Callable

import trio
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..core.errors import Forbidden, PeerClosed, ProtocolViolation
from ..wsframe import header_end
from .deflate import Deflating, SharedDeflate
from .wsconn import WsConn


async def accept_upgrade(conn: WsConn, check: Callable[[Request], str | None] | None = None,
                         deflate: SharedDeflate | None = None) -> Request:
    """Read the HTTP upgrade request and accept it, unless ``check(request)`` returns a
    reason to refuse it: then the client gets ``403 Forbidden`` with that reason and
    Forbidden is raised. With ``deflate``, permessage-deflate if the client offers it."""
    head = b""
    while True:
        data = await conn.recv_some()
        head += data
        try:
            conn.ws.receive_data(data)
            for ev in conn.ws.events():
                if isinstance(ev, Request):
                    refusal = check(ev) if check is not None else None
                    if refusal is not None:
                        await refuse_upgrade(conn, 403, refusal)
                        raise Forbidden(refusal)
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
                    return ev
        except RemoteProtocolError as e:
            if isinstance(e.event_hint, RejectConnection):
                try:
                    await conn.send_all(conn.ws.send(e.event_hint))
                except Exception:
                    pass
            raise ProtocolViolation(f"bad WebSocket handshake: {e}") from None


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
