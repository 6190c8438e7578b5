"""One server-side WebSocket over a non-blocking socket, driven by wsproto.

The hot path never awaits here: the room calls ``recv_messages()`` once per tick for the
sockets that are readable, and writes pre-framed bytes with non-blocking ``send``. The
awaiting helpers (handshake, first message, close) run in the connection's own task.
"""

from __future__ import annotations

import logging
import socket
import ssl

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from ..core.errors import (
    GamesyncError,
    GoingAway,
    MessageTooBig,
    PeerClosed,
    ProtocolViolation,
    RateLimited,
    Timeout,
    UnsupportedData,
)
from ..core.protocol import pack_refusal
from ..core.ratelimit import TokenBucket
from ..sockio import recv_some, send_all
from ..wsframe import FrameReader, FrameTooBig, binary_frame
from .tls import TlsLayer

logger = logging.getLogger(__name__)


class WsConn:
    """wsproto state plus the socket it speaks over, optionally through TLS (``start_tls``:
    then ``tls.TlsLayer`` seals and unseals in memory, so the room still never awaits the
    socket; everything the session queues for it, ``Session.outbuf``, is already sealed)."""

    def __init__(self, sock: socket.socket, max_message: int, recv_chunk: int, in_bytes: TokenBucket,
                 in_msgs: TokenBucket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.max_message = max_message
        self.recv_chunk = recv_chunk
        self.in_bytes = in_bytes
        self.in_msgs = in_msgs
        self._parts: list[bytes] = []
        self._size = 0
        self.reader: FrameReader | None = None  # fast path once the handshake is done
        self.pending: list[bytes] = []  # messages received but not yet taken
        self.eof = False
        self.pong_due: bytes | None = None  # payload of the newest ping not yet answered
        self.tls: TlsLayer | None = None
        self._controls = 0  # control frames read via wsproto since the last rate check

    # -- non-blocking core -------------------------------------------------------------------

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
        reader = self.reader
        if reader is not None and not reader.done:
            try:
                msgs, rest = reader.feed(data)
            except FrameTooBig as e:
                raise MessageTooBig(f"message of {e.size} bytes, over the limit of {self.max_message}") from None
            controls = reader.controls
            if controls:
                reader.controls = 0
                ping = reader.take_ping()
                if ping is not None:
                    self.pong_due = ping
            if rest is not None:
                msgs += self.feed(rest)
        else:
            controls = 0
            msgs = self.feed(data)
        controls, self._controls = controls + self._controls, 0
        # every frame counts against the message rate, pings and pongs included
        if (msgs or controls) and not self.in_msgs.take(len(msgs) + controls, now):
            raise RateLimited("inbound message rate over the limit")
        return msgs

    def take_pong(self) -> bytes | None:
        """The pong frame answering the newest ping, if one is due (written by the caller, in
        order with everything else it writes)."""
        if self.pong_due is None:
            return None
        payload, self.pong_due = self.pong_due, None
        return self.ws.send(Pong(payload))

    def feed(self, data: bytes) -> list[bytes]:
        """Messages via wsproto (for everything the fast path does not handle)."""
        try:
            (self.ws.connection or self.ws).receive_data(data)
        except RemoteProtocolError as e:
            raise ProtocolViolation(f"bad WebSocket data: {e}") from None
        return self._messages()

    def buffered(self) -> list[bytes]:
        """Complete messages already received but not yet taken."""
        out, self.pending = self.pending, []
        return out

    def _messages(self) -> list[bytes]:
        """Complete messages from wsproto's buffer."""
        out: list[bytes] = []
        # after the handshake, talk to wsproto's Connection directly (one generator layer less)
        for ev in (self.ws.connection or self.ws).events():
            if isinstance(ev, BytesMessage):
                self._size += len(ev.data)
                if self._size > self.max_message:
                    raise MessageTooBig(f"message over {self.max_message} bytes")
                if not ev.message_finished:
                    self._parts.append(bytes(ev.data))
                    continue
                if self._parts:
                    self._parts.append(bytes(ev.data))
                    msg = b"".join(self._parts)
                    self._parts.clear()
                else:
                    msg = bytes(ev.data)
                self._size = 0
                out.append(msg)
            elif isinstance(ev, TextMessage):
                raise UnsupportedData("text frames are not part of the protocol; send binary msgpack")
            elif isinstance(ev, Ping):
                self._controls += 1
                self.pong_due = bytes(ev.payload)
            elif isinstance(ev, Pong):
                self._controls += 1
            elif isinstance(ev, CloseConnection):
                if self.ws.state is ConnectionState.OPEN:
                    # not a close frame from the peer: wsproto reports a frame it cannot
                    # parse as a close event with the code to use, leaving the state OPEN
                    err = ProtocolViolation(ev.reason or "bad WebSocket frame")
                    err.close_code = ev.code
                    raise err
                raise PeerClosed(f"close frame {ev.code}", clean=True)
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
                    data = await self.recv_some()
                    r = self.reader
                    if r is not None and not r.done:
                        # skip whole data frames; the close frame hands the rest to wsproto
                        data = r.feed(data)[1] or b""
                    if data:
                        self.ws.receive_data(data)
                        for _ in self.ws.events():
                            pass
        except (PeerClosed, RemoteProtocolError, OSError, FrameTooBig):
            pass
        finally:
            try:
                trio.lowlevel.notify_closing(self.sock)
            except Exception:
                pass
            self.sock.close()


__all__ = ["GoingAway", "PeerClosed", "Timeout", "WsConn"]
