"""A room's reading side: the selector over its sessions' sockets, read once per tick."""

from __future__ import annotations

import select
import selectors
from collections.abc import Callable

from .. import native
from ..core.errors import GamesyncError, PeerClosed
from .session import Session


class Inbox:
    """Every joined session's socket; ``read`` takes what each readable one has sent.

    On Linux an epoll object of its own, mapped by descriptor (the ``selectors`` layer costs
    about half a microsecond per readable socket per tick); elsewhere ``selectors``."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._by_fd: dict[int, Session] = {}
        self._fds: dict[int, int] = {}  # id(session) -> its descriptor (the socket may close first)
        self._selector = selectors.DefaultSelector() if self._epoll is None else None

    def __len__(self) -> int:
        """Sockets registered."""
        return len(self._fds)

    def add(self, s: Session) -> None:
        fd = s.sock.fileno()
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            assert self._selector is not None
            self._selector.register(fd, selectors.EVENT_READ)
        self._by_fd[fd] = s
        self._fds[id(s)] = fd

    def remove(self, s: Session) -> None:
        fd = self._fds.pop(id(s), None)
        if fd is None or self._by_fd.get(fd) is not s:
            return
        del self._by_fd[fd]
        try:
            if self._epoll is not None:
                self._epoll.unregister(fd)
            elif self._selector is not None:
                self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):  # closed already (epoll then forgot it by itself)
            pass

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()

    def _ready(self) -> list[int]:
        if self._epoll is not None:
            return [fd for fd, _ in self._epoll.poll(0)]
        assert self._selector is not None
        return [key.fd for key, _ in self._selector.select(0)]

    def read(self, now: float, handle: Callable[[Session, list[bytes]], None]) -> None:
        """Read every readable socket once (those on the fast path in one
        ``gamesync.native.recv_frames`` call); ``handle`` gets each session's messages. A
        session whose connection broke or broke the rules is closed (a vanished peer keeps
        its seat)."""
        fast: list[Session] = []
        by_fd = self._by_fd
        for fd in self._ready():
            s = by_fd.get(fd)
            if s is None or s.proto.closing:
                continue
            conn = s.conn
            if conn.tls is None and conn.stream.fast:  # conn.batchable
                fast.append(s)
            else:
                _take(s, now, handle, None)
        if fast:
            results = native.recv_frames([s.sock for s in fast], [s.conn.stream.reader for s in fast],
                                         fast[0].conn.recv_chunk)
            for s, res in zip(fast, results, strict=True):
                _take(s, now, handle, res)


def _take(s: Session, now: float, handle: Callable[[Session, list[bytes]], None],
          result: tuple[int, list[bytes], bytes | None] | None) -> None:
    """One session's read: its own recv (``result`` None) or its share of a batched one."""
    try:
        msgs = s.conn.recv_messages(now) if result is None else s.conn.absorb(result, now)
    except GamesyncError as e:
        s.close(e)
        return
    except PeerClosed as e:  # a close frame means it left; a vanished peer may come back
        s.close(None, f"disconnected ({e})", keep_seat=not e.clean)
        return
    s.proto.heard(now)
    if s.conn.stream.pong_due is not None:
        pong = s.conn.take_pong()
        if pong is not None:
            s.write(pong)  # queued behind a partly written frame, never inside it
    if msgs:
        handle(s, msgs)
