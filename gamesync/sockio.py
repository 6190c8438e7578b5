"""Reads and writes on non-blocking stdlib sockets: awaiting ones for trio code off the hot
path (handshakes, joins, closes), and the pure-Python path of the batched per-tick calls
(``recv_frames``, ``send_parts``, ``send_masked``; gamesync.native picks the path), and the
set of sockets a room or a bot swarm polls once per round (``ReadySet``).
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import socket
from collections.abc import Sequence
from typing import Any

import trio

from .wsframe import FrameTooBig, masked_binary_frame


class ReadySet:
    """Sockets to poll for reading without waiting, each with its owner: ``ready()`` gives the
    owners of the readable ones. On Linux one epoll object of its own, mapped by descriptor
    (the ``selectors`` layer costs about half a microsecond more per readable socket, on every
    tick for every client); elsewhere ``selectors``."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = selectors.DefaultSelector() if self._epoll is None else None
        self._by_fd: dict[int, Any] = {}
        self._fds: dict[int, int] = {}  # id(owner) -> its descriptor (the socket may close first)

    def __len__(self) -> int:
        """Sockets registered."""
        return len(self._fds)

    def fileno(self) -> int:
        """A descriptor that is readable while any socket in the set is (to await in trio)."""
        return self._epoll.fileno() if self._epoll is not None else self._selector.fileno()  # type: ignore[union-attr]

    def add(self, sock: socket.socket, owner: Any) -> None:
        fd = sock.fileno()
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            assert self._selector is not None
            self._selector.register(fd, selectors.EVENT_READ)
        self._by_fd[fd] = owner
        self._fds[id(owner)] = fd

    def remove(self, owner: Any) -> bool:
        """Stop polling ``owner``'s socket (False: it was not in the set)."""
        fd = self._fds.pop(id(owner), None)
        if fd is None or self._by_fd.get(fd) is not owner:
            return False
        del self._by_fd[fd]
        try:
            if self._epoll is not None:
                self._epoll.unregister(fd)
            elif self._selector is not None:
                self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):  # closed already (epoll then forgot it by itself)
            pass
        return True

    def ready(self) -> list[Any]:
        """The owners of the sockets that are readable now (never waits)."""
        by_fd = self._by_fd
        if self._epoll is not None:
            return [by_fd[fd] for fd, _ in self._epoll.poll(0) if fd in by_fd]
        assert self._selector is not None
        return [by_fd[key.fd] for key, _ in self._selector.select(0) if key.fd in by_fd]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()


async def recv_some(sock: socket.socket, max_bytes: int) -> bytes:
    """The next bytes the socket has (b"" at end of stream), waiting until there are some."""
    while True:
        try:
            return sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            await trio.lowlevel.wait_readable(sock)


async def send_all(sock: socket.socket, data: bytes | memoryview) -> None:
    """Write all of ``data``, waiting whenever the socket is full."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except (BlockingIOError, InterruptedError):
            await trio.lowlevel.wait_writable(sock)
            continue
        view = view[n:]


# -- the pure-Python path of gamesync.native's batched calls (same results, see there) --------


def recv_frames(socks: Sequence[Any], readers: Sequence[Any], max_bytes: int) -> list[Any]:
    """For each socket, one non-blocking read fed to its reader (``gamesync.native.recv_frames``)."""
    out: list[Any] = []
    for sock, r in zip(socks, readers, strict=True):
        try:
            data = sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            out.append((-errno.EAGAIN, [], None))
            continue
        except OSError as e:
            out.append((-(e.errno or errno.EIO), [], None))
            continue
        if not data:
            out.append((0, [], None))
            continue
        try:
            msgs, rest = r.feed(data)
        except FrameTooBig as e:
            r.too_big = e.size
            msgs, rest = [], None
        out.append((len(data), msgs, rest))
    return out


def read_error(n: int) -> OSError | None:
    """What a failed batched read (``n`` < 0, minus the errno) means: None when the socket only
    had nothing to read, else the error."""
    if -n in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
        return None
    return OSError(-n, os.strerror(-n))


def send_parts(socks: Sequence[Any], parts: Sequence[Sequence[bytes]]) -> list[int]:
    """For each socket, one non-blocking ``sendmsg`` of its parts (``gamesync.native.send_parts``)."""
    out: list[int] = []
    for sock, p in zip(socks, parts, strict=True):
        try:
            out.append(sock.sendmsg(p))
        except (BlockingIOError, InterruptedError):
            out.append(0)
        except OSError as e:
            out.append(-(e.errno or errno.EIO))
    return out


def send_masked(socks: Sequence[Any], msgs: Sequence[bytes], keys: bytes) -> list[int]:
    """For each socket, its message as one masked frame (``gamesync.native.send_masked``)."""
    if len(keys) < 4 * len(msgs):
        raise ValueError("need 4 key bytes per message")
    out: list[int] = []
    for i, (sock, msg) in enumerate(zip(socks, msgs, strict=True)):
        try:
            out.append(sock.send(masked_binary_frame(msg, keys[4 * i:4 * i + 4])))
        except (BlockingIOError, InterruptedError):
            out.append(0)
        except OSError as e:
            out.append(-(e.errno or errno.EIO))
    return out
