"""A bot's WebSocket over a raw non-blocking socket: connect, the handshake, messages in and out.

Reading goes through the same engine as the server's (``wsstream.WsStream``: the fast path for
plain data frames, wsproto for anything else), one socket at a time or batched by the swarm;
sending never blocks (a bot's input is a few bytes; a socket that cannot take them is broken).
What goes wrong is reported to the bot through ``on_fail`` and ``on_close``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request
from wsproto.utilities import LocalProtocolError

from ..core.errors import GamesyncError
from ..sockio import read_error, recv_some, send_all
from ..wsframe import header_end, masked_binary_frame
from ..wsstream import WsStream

RECV_CHUNK = 256 * 1024
MAX_SNAPSHOT = 64 << 20  # largest snapshot message a bot accepts


class BotSocket:
    """One WebSocket connection of a bot to ``host:port`` at ``path``."""

    def __init__(self, host: str, port: int, path: str, on_fail: Callable[[str], None],
                 on_close: Callable[[int, str | None], None]) -> None:
        self.host, self.port, self.path = host, port, path
        self.on_fail = on_fail  # the connection is broken: why
        self.on_close = on_close  # the server closed it: code, reason (answered, then hung up)
        self.stream = WsStream(WSConnection(ConnectionType.CLIENT), masked=False, max_message=MAX_SNAPSHOT)
        self.sock: socket.socket | None = None

    @property
    def ws(self) -> WSConnection:
        """wsproto's state of the connection (handshake, closes)."""
        return self.stream.ws

    async def open(self) -> None:
        """Connect and complete the WebSocket handshake."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        err = sock.connect_ex((self.host, self.port))
        if err not in (0, 115, 36):  # EINPROGRESS (Linux 115, BSD 36)
            raise OSError(err, "connect failed")
        await trio.lowlevel.wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, "connect failed")
        await self.send_all(self.ws.send(Request(host=f"{self.host}:{self.port}", target=self.path)))
        head = b""
        while True:
            for ev in self.ws.events():
                if isinstance(ev, AcceptConnection):
                    break
                if isinstance(ev, RejectConnection):
                    raise OSError("handshake rejected")
            else:
                data = await self.recv_some()
                head += data
                self.ws.receive_data(data)
                continue
            break
        if header_end(head) == len(head):  # wsproto holds no bytes: the fast path takes over
            self.stream.start_fast()

    async def recv_some(self) -> bytes:
        """Bytes from the socket, waiting for them (while joining)."""
        assert self.sock is not None
        data = await recv_some(self.sock, RECV_CHUNK)
        if not data:
            raise OSError("connection closed during join")
        return data

    async def send_all(self, data: bytes) -> None:
        assert self.sock is not None
        await send_all(self.sock, data)

    def receive(self) -> list[bytes]:
        """Complete messages from what the socket has now (none if it has nothing)."""
        assert self.sock is not None
        try:
            data = self.sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return []
        except OSError as e:
            self.on_fail(f"recv failed: {e}")
            return []
        if not data:
            self.on_fail("connection closed by server")
            return []
        try:
            return self.ingest(data)
        except GamesyncError as e:
            self.on_fail(f"{e.code}: {e.reason}")
            return []

    def absorb(self, result: tuple[int, list[bytes], bytes | None]) -> list[bytes]:
        """The messages of this socket's ``gamesync.native.recv_frames`` result (fast path only)."""
        n, msgs, rest = result
        r = self.stream.reader
        if n > 0 and rest is None and r is not None and not r.too_big and not r.controls:
            return msgs  # the usual read: whole data frames only (no limit, control frame or hand-over to note)
        if n <= 0:
            err = read_error(n) if n else OSError("connection closed by server")
            if err is not None:
                self.on_fail("connection closed by server" if n == 0 else f"recv failed: {err}")
            return []
        try:
            return self._answered(self.stream.absorb(msgs, rest))
        except GamesyncError as e:
            self.on_fail(f"{e.code}: {e.reason}")
            return []

    @property
    def batchable(self) -> bool:
        """Whether the swarm may read it with ``gamesync.native.recv_frames``."""
        r = self.stream.reader
        return r is not None and not r.done and self.sock is not None

    def ingest(self, data: bytes) -> list[bytes]:
        """Complete messages in ``data``: fast path first, wsproto for anything else."""
        if self.stream.peer_close is not None:
            return []  # closed: what still comes is of no interest
        return self._answered(self.stream.receive(data))

    def _answered(self, msgs: list[bytes]) -> list[bytes]:
        """``msgs``, once a due pong is sent and a close from the server answered."""
        st = self.stream
        st.controls = 0  # (a bot sets no rate limit on the server)
        pong = st.take_pong()
        if pong is not None:
            self.send_nowait(pong)
        if st.peer_close is not None:
            code, reason = st.peer_close
            self.on_close(code, reason)
            try:  # answer the close, as a WebSocket peer must, then hang up
                self.send_nowait(self.ws.send(CloseConnection(code=code, reason=reason)))
            except LocalProtocolError:
                pass
            self.hang_up()
        return msgs

    def send_message(self, msg: bytes) -> bool:
        """Send ``msg`` as one binary frame if the socket takes it now."""
        return self.send_nowait(masked_binary_frame(msg))

    def send_nowait(self, data: bytes) -> bool:
        assert self.sock is not None
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            self.on_fail(f"send failed: {e}")
            return False
        if n != len(data):
            self.on_fail("socket buffer full mid-frame")  # a bot that cannot send 20 bytes is broken
            return False
        return True

    def hang_up(self) -> None:
        """Close the socket after the close handshake (it stays registered until then)."""
        if self.sock is not None and self.sock.fileno() != -1:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self) -> None:
        """Close the socket at once (a redirect, a reconnect)."""
        if self.sock is not None:
            self.sock.close()

    def close(self) -> None:
        """Say goodbye (close code 1000) if the socket still takes it, and close it."""
        if self.sock is not None:
            try:
                self.sock.send(self.ws.send(CloseConnection(code=1000, reason="done")))
            except Exception:
                pass
            self.sock.close()
