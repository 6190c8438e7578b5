"""One WebSocket's inbound stream, sans I/O: bytes in, binary messages and control state out.

The one engine behind both ends of gamesync's WebSockets: the server's connection
(``server.wsconn.WsConn``) and a bot's (``client.botsocket.BotSocket``). After the handshake
the fast frame reader (``wsframe.FrameReader``, or its native twin from ``gamesync.native``)
splits the stream into the common frames: whole binary messages, pings and pongs. At the
first frame of any other kind (fragmented, text, close, reserved bits, wrong masking) it
hands every byte from that frame on to wsproto, which from then on sees the whole stream:
reassembly, closes and protocol errors are wsproto's. Limits (``max_message``) hold on both
paths. Nothing here reads or writes a socket: the caller feeds ``receive`` and writes what
``take_pong`` returns.
"""

from __future__ import annotations

from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import RemoteProtocolError

from . import native
from .core.errors import MessageTooBig, ProtocolViolation, UnsupportedData
from .wsframe import FrameReader, FrameTooBig


class WsStream:
    """The inbound half of one WebSocket (``ws`` holds wsproto's state for the handshake,
    closes and everything the fast path hands over).

    ``receive(data)`` returns the complete binary messages in ``data`` (plus what came before
    it). Beside them it notes ``controls`` (ping and pong frames read, for rate limits, until
    the caller takes them), ``pong_due`` (the payload of the newest unanswered ping) and
    ``peer_close`` (the peer's close frame: code and reason). It raises MessageTooBig over
    ``max_message``, UnsupportedData for text, ProtocolViolation (with wsproto's close code)
    for a stream wsproto refuses.
    """

    __slots__ = ("ws", "masked", "max_message", "reader", "controls", "pong_due", "peer_close", "_parts",
                 "_size")

    def __init__(self, ws: WSConnection, masked: bool, max_message: int) -> None:
        self.ws = ws
        self.masked = masked  # frames from clients are masked (this is the server end)
        self.max_message = max_message
        self.reader: FrameReader | None = None  # the fast path, once the handshake is done
        self.controls = 0
        self.pong_due: bytes | None = None
        self.peer_close: tuple[int, str | None] | None = None
        self._parts: list[bytes] = []  # a fragmented message so far (wsproto path)
        self._size = 0

    def start_fast(self) -> None:
        """The handshake is done and wsproto holds no bytes: the fast path reads from here on."""
        self.reader = native.frame_reader(self.masked, self.max_message)

    @property
    def fast(self) -> bool:
        """Whether the fast path still reads this stream (False before it starts, after hand-over)."""
        r = self.reader
        return r is not None and not r.done

    def receive(self, data: bytes) -> list[bytes]:
        """The complete messages in ``data`` (with what came before it)."""
        r = self.reader
        if r is None or r.done:
            return self.feed_wsproto(data)
        try:
            msgs, rest = r.feed(data)
        except FrameTooBig as e:
            raise self.too_big(e.size) from None
        self.fast_noted(r)
        if rest is not None:
            msgs += self.feed_wsproto(rest)
        return msgs

    def absorb(self, msgs: list[bytes], rest: bytes | None) -> list[bytes]:
        """The messages of a batched read of this stream (``native.recv_frames``: ``msgs`` and
        ``rest`` as its reader gave them), as ``receive`` gives them: limits and hand-over."""
        r = self.reader
        assert r is not None
        if r.too_big:
            raise self.too_big(r.too_big)
        self.fast_noted(r)
        if rest is not None:
            msgs += self.feed_wsproto(rest)
        return msgs

    def fast_noted(self, r: FrameReader) -> None:
        """Take the control frames the fast reader counted (after each of its feeds)."""
        if r.controls:
            self.controls += r.controls
            r.controls = 0
            ping = r.take_ping()
            if ping is not None:
                self.pong_due = ping

    def too_big(self, size: int) -> MessageTooBig:
        return MessageTooBig(f"message of {size} bytes, over the limit of {self.max_message}")

    def take_controls(self) -> int:
        """Control frames read since the last call."""
        n, self.controls = self.controls, 0
        return n

    def take_pong(self) -> bytes | None:
        """The pong frame answering the newest ping, if one is due (the caller writes it, in
        order with everything else it writes)."""
        if self.pong_due is None:
            return None
        payload, self.pong_due = self.pong_due, None
        if self.ws.state is not ConnectionState.OPEN:  # the peer's close came in the same read: no pong
            return None
        return self.ws.send(Pong(payload))

    def feed_wsproto(self, data: bytes) -> list[bytes]:
        """Messages via wsproto (everything the fast path does not read)."""
        try:
            (self.ws.connection or self.ws).receive_data(data)
        except RemoteProtocolError as e:
            raise ProtocolViolation(f"bad WebSocket data: {e}") from None
        return self._wsproto_messages()

    def _wsproto_messages(self) -> list[bytes]:
        out: list[bytes] = []
        # after the handshake, talk to wsproto's Connection directly (one generator layer less)
        for ev in (self.ws.connection or self.ws).events():
            if isinstance(ev, BytesMessage):
                self._size += len(ev.data)
                if self._size > self.max_message:
                    raise self.too_big(self._size)
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
                self.controls += 1
                self.pong_due = bytes(ev.payload)
            elif isinstance(ev, Pong):
                self.controls += 1
            elif isinstance(ev, CloseConnection):
                if self.ws.state is ConnectionState.OPEN:
                    # not a close frame from the peer: wsproto reports a frame it cannot
                    # parse as a close event with the code to use, leaving the state OPEN
                    err = ProtocolViolation(ev.reason or "bad WebSocket frame")
                    err.close_code = ev.code
                    raise err
                self.peer_close = (ev.code, ev.reason)
                return out
        return out

    def skip(self, data: bytes) -> None:
        """Read and discard everything but the close (after our own close frame went out)."""
        r = self.reader
        if r is not None and not r.done:
            data = r.feed(data)[1] or b""  # whole data frames skipped; a close hands the rest over
        if data:
            self.ws.receive_data(data)
            for _ in self.ws.events():
                pass
