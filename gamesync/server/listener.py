"""The listening side: accepting sockets, per-address limits, and counting what is open."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import trio

from .. import native
from ..core.ratelimit import TokenBucket
from .config import ServerConfig
from .netaddr import is_loopback

logger = logging.getLogger(__name__)

#: connections beyond max_connections that still get a proper "server full" close;
#: past this, new sockets are closed at once
REJECT_SLACK = 64
#: remote addresses whose connect-rate buckets are kept before idle ones are dropped
MAX_TRACKED_IPS = 10_000


def _http_refusal(status: str, reason: str) -> bytes:
    body = reason.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class Listener:
    """Accepts connections within the server's limits and counts the open ones."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        native.log_path_once()  # which wire path this server runs (native, or pure Python and why)
        self.connections = 0
        self.per_ip: dict[str, int] = {}  # open connections by remote address
        self._ip_rate: dict[str, TokenBucket] = {}  # connect attempts by remote address
        self.refused_at_accept = 0
        self._all_closed = trio.Event()

    def closed(self, ip: str) -> None:
        """A connection from ``ip`` has ended."""
        self.connections -= 1
        left = self.per_ip.get(ip, 1) - 1
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)
        if self.connections == 0:
            self._all_closed.set()

    async def all_closed(self) -> None:
        """Wait until no connection is open."""
        if self.connections:
            await self._all_closed.wait()

    async def accept(self, lsock: socket.socket, nursery: trio.Nursery,
                     handle: Callable[[socket.socket, str], Awaitable[None]], stopping: Callable[[], bool]) -> None:
        """Accept until cancelled; each admitted socket gets ``handle(sock, ip)`` in ``nursery``."""
        while True:
            await trio.lowlevel.wait_readable(lsock)
            while True:
                try:
                    sock, addr = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:  # EMFILE and friends: back off rather than spin
                    logger.warning("accept failed: %s", e)
                    await trio.sleep(0.1)
                    break
                if stopping() or self.connections >= self.config.max_connections + REJECT_SLACK:
                    sock.close()
                    continue
                ip = addr[0]
                refusal = None if self.config.ip_limits_skip_loopback and is_loopback(ip) else self._over_ip_limits(ip)
                if refusal is not None:
                    self._refuse_at_accept(sock, ip, refusal)
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.config.send_buffer_bytes:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer_bytes)
                self.connections += 1
                self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
                self._all_closed = trio.Event() if self._all_closed.is_set() else self._all_closed
                nursery.start_soon(handle, sock, ip)

    def _over_ip_limits(self, ip: str) -> str | None:
        """Why a new connection from ``ip`` is refused (None: it is not)."""
        cfg = self.config
        now = trio.current_time()
        bucket = self._ip_rate.get(ip)
        if bucket is None:
            if len(self._ip_rate) >= MAX_TRACKED_IPS:  # forget addresses whose bucket refilled
                self._ip_rate = {k: b for k, b in self._ip_rate.items() if b.refill(now) < b.burst}
            bucket = self._ip_rate[ip] = TokenBucket(cfg.connects_per_ip_per_s, cfg.connects_per_ip_burst, now)
        if not bucket.take(1, now):
            return f"too many connection attempts from {ip}"
        if self.per_ip.get(ip, 0) >= cfg.max_connections_per_ip:
            return f"too many connections open from {ip} (limit {cfg.max_connections_per_ip})"
        return None

    def _refuse_at_accept(self, sock: socket.socket, ip: str, reason: str) -> None:
        """HTTP 429 with the reason, best effort without waiting, and the socket closed: a
        flood of connections costs one send and one close each."""
        self.refused_at_accept += 1
        if self.refused_at_accept & (self.refused_at_accept - 1) == 0:  # log 1st, 2nd, 4th, 8th...
            logger.warning("refusing connections: %s (%d refused so far)", reason, self.refused_at_accept)
        try:
            sock.setblocking(False)
            sock.send(_http_refusal("429 Too Many Requests", reason))
        except OSError:
            pass
        sock.close()
