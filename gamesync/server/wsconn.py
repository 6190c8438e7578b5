"""One server-side WebSocket over a non-blocking socket, driven by wsproto.

The hot path never awaits here: once per tick the room reads every readable socket in one
``gamesync.native.recv_frames`` call and hands each connection its result (``absorb``), or
calls ``recv_messages()`` for one that is off the fast path (TLS, or a stream handed over to
wsproto); it writes pre-framed bytes with non-blocking sends. The
awaiting helpers (handshake, first message, close) run in the connection's own task.
"""

from __future__ import annotations

import logging
import socket
import ssl

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Ping
from wsproto.utilities import RemoteProtocolError

from ..core.errors import (
    GamesyncError,
    GoingAway,
    PeerClosed,
    ProtocolViolation,
    RateLimited,
    Timeout,
)
from ..core.protocol import pack_refusal
from ..core.ratelimit import TokenBucket
from ..sockio import read_error, recv_some, send_all
from ..wsframe import FrameTooBig, binary_frame
from ..wsstream import WsStream
from .deflate import Deflating
from .tls import TlsLayer

logger = logging.getLogger(__name__)


class WsConn:
    """A WebSocket stream (``wsstream.WsStream``: wsproto's state plus the fast path) and the
    socket it speaks over, optionally through TLS (``start_tls``: then ``tls.TlsLayer`` seals
    and unseals in memory, so the room still never awaits the socket; everything the session
    queues for it, ``Session.outbuf``, is already sealed)."""

    def __init__(self, sock: socket.socket, max_message: int, recv_chunk: int, in_bytes: TokenBucket,
                 in_msgs: TokenBucket) -> None:
        self.sock = sock
        self.stream = WsStream(WSConnection(ConnectionType.SERVER), masked=True, max_message=max_message)
        self.max_message = max_message
        self.recv_chunk = recv_chunk
        self.in_bytes = in_bytes
        self.in_msgs = in_msgs
        self.pending: list[bytes] = []  # messages received but not yet taken
        self.eof = False
        self.tls: TlsLayer | None = None
        self.deflate: Deflating | None = None  # permessage-deflate, when negotiated (server.deflate)

    @property
    def ws(self) -> WSConnection:
        """wsproto's state of the connection (handshake, closes)."""
        return self.stream.ws

    # -- non-blocking core -------------------------------------------------------------------

    @property
    def batchable(self) -> bool:
        """Whether the room may read it with ``gamesync.native.recv_frames`` (fast path, no TLS)."""
        return self.tls is None and self.stream.fast

    def recv_messages(self, now: float) -> list[bytes]:
        """Read what the socket has (one recv) and return the complete binary messages in it.

        Raises PeerClosed on EOF or a close frame, GamesyncError on a protocol violation or an
        exceeded limit.
        """
        try:
            data = self.sock.recv(self.recv_chunk)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as e:
            raise PeerClosed(str(e)) from None
        if not data:
            self.eof = True
            raise PeerClosed("eof")
        if self.tls is not None:
            data = self.unseal(data)
            if not data:  # only part of a record, or TLS housekeeping
                return []
        return self.ingest(data, now)

    def absorb(self, result: tuple[int, list[bytes], bytes | None], now: float) -> list[bytes]:
        """The messages of one ``recv_frames`` result for this connection (read on the fast
        path), with the same limits and errors as ``recv_messages``."""
        n, msgs, rest = result
        if n <= 0:
            if n == 0:
                self.eof = True
                raise PeerClosed("eof")
            err = read_error(n)
            if err is None:
                return []
            raise PeerClosed(str(err))
        if not self.in_bytes.take(n, now):
            raise RateLimited("inbound byte rate over the limit")
        stream = self.stream
        r = stream.reader
        assert r is not None  # read on the fast path
        if rest is None and not r.controls and not r.too_big and not stream.controls:  # the usual read
            if msgs and not self.in_msgs.take(len(msgs), now):
                raise RateLimited("inbound message rate over the limit")
            return msgs
        return self._checked(stream.absorb(msgs, rest), now)

    # -- TLS -------------------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Run the server side of the TLS handshake; afterwards the socket carries TLS."""
        tls = self.tls = TlsLayer(context)
        while True:
            try:
                done = tls.handshake()
            except ProtocolViolation:
                try:
                    await self.send_raw(tls.outgoing())  # the alert, if any
                except PeerClosed:
                    pass
                raise
            await self.send_raw(tls.outgoing())
            if done:
                return
            tls.incoming(await self._recv_raw())

    def seal(self, data: bytes) -> bytes:
        """Plaintext to what goes on the socket (the same bytes without TLS)."""
        return data if self.tls is None else self.tls.seal(data)

    def unseal(self, data: bytes) -> bytes:
        """What came off the socket to plaintext (possibly empty: a partial record)."""
        assert self.tls is not None
        try:
            return self.tls.unseal(data)
        except ssl.SSLZeroReturnError:  # close_notify without a WebSocket close: it vanished
            self.eof = True
            raise PeerClosed("TLS closed") from None

    def ingest(self, data: bytes, now: float) -> list[bytes]:
        """Complete messages in ``data`` (plus what came before it), limits applied."""
        if not self.in_bytes.take(len(data), now):
            raise RateLimited("inbound byte rate over the limit")
        return self._checked(self.stream.receive(data), now)

    def _checked(self, msgs: list[bytes], now: float) -> list[bytes]:
        """``msgs`` once the message rate allows them and the peer has not closed."""
        stream = self.stream
        if stream.peer_close is not None:
            raise PeerClosed(f"close frame {stream.peer_close[0]}", clean=True)
        # every frame counts against the message rate, pings and pongs included
        controls = stream.take_controls() if stream.controls else 0
        if (msgs or controls) and not self.in_msgs.take(len(msgs) + controls, now):
            raise RateLimited("inbound message rate over the limit")
        return msgs

    def take_pong(self) -> bytes | None:
        """The pong frame answering the newest ping, if one is due (written by the caller, in
        order with everything else it writes)."""
        return self.stream.take_pong()

    def buffered(self) -> list[bytes]:
        """Complete messages already received but not yet taken."""
        out, self.pending = self.pending, []
        return out

    def frame(self, payload: bytes) -> bytes:
        """A binary WebSocket message carrying ``payload`` (see ``binary_frame``)."""
        return binary_frame(payload)

    def ping_frame(self) -> bytes:
        return self.ws.send(Ping(b"hb"))

    # -- awaiting helpers (connection task only) ------------------------------------------------

    async def _recv_raw(self) -> bytes:
        try:
            data = await recv_some(self.sock, self.recv_chunk)
        except OSError as e:
            raise PeerClosed(str(e)) from None
        if not data:
            self.eof = True
            raise PeerClosed("eof")
        return data

    async def recv_some(self) -> bytes:
        """The next plaintext bytes (waiting through partial TLS records)."""
        while True:
            data = await self._recv_raw()
            if self.tls is None:
                return data
            data = self.unseal(data)
            if data:
                return data

    async def send_all(self, data: bytes) -> None:
        """Write plaintext (sealed first when the connection runs TLS)."""
        await self.send_raw(self.seal(data))

    async def send_raw(self, data: bytes | memoryview) -> None:
        """Write bytes that are ready for the socket."""
        if not data:
            return
        try:
            await send_all(self.sock, data)
        except OSError as e:
            raise PeerClosed(str(e)) from None

    async def receive_message(self, now: float) -> bytes:
        """The next complete binary message (used before the room takes over the socket)."""
        while not self.pending:
            self.pending += self.ingest(await self.recv_some(), now)
            pong = self.take_pong()
            if pong is not None:
                await self.send_all(pong)
        return self.pending.pop(0)

    async def close(self, err: GamesyncError | None, timeout: float) -> None:
        """Send an error message (if any) and a close frame, wait briefly for the peer's close,
        then close the socket. Never raises."""
        try:
            with trio.move_on_after(timeout):
                if self.ws.state is ConnectionState.CONNECTING:
                    return  # no WebSocket yet: nothing to say, nothing to wait for
                if self.ws.state is ConnectionState.OPEN:
                    out = b""
                    if err is not None:
                        out += b"".join(self.frame(m) for m in pack_refusal(err))
                        code, reason = err.close_code, err.reason[:120]
                    else:
                        code, reason = 1000, "bye"
                    out += self.ws.send(CloseConnection(code=code, reason=reason))
                    await self.send_all(out)
                elif self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self.send_all(self.ws.send(CloseConnection(code=1000, reason="bye")))
                    return
                while not self.eof and self.ws.state is not ConnectionState.CLOSED:
                    self.stream.skip(await self.recv_some())
        except (PeerClosed, RemoteProtocolError, OSError, FrameTooBig):
            pass
        finally:
            try:
                trio.lowlevel.notify_closing(self.sock)
            except Exception:
                pass
            self.sock.close()


__all__ = ["GoingAway", "PeerClosed", "Timeout", "WsConn"]
