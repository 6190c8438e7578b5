"""A room's reading side: the selector over its sessions' sockets, read once per tick."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import native
from ..core.errors import GamesyncError, PeerClosed
from ..core.serverproto import SessionState
from .session import Session


class Inbox:
    """Every joined session's socket; ``read`` takes what each readable one has sent."""

    def __init__(self) -> None:
        self._ready = native.ready_set()

    def __len__(self) -> int:
        """Sockets registered."""
        return len(self._ready)

    def add(self, s: Session) -> None:
        self._ready.add(s.sock, s)

    def remove(self, s: Session) -> None:
        self._ready.remove(s)

    def close(self) -> None:
        self._ready.close()

    def read(self, now: float, handle: Callable[[Session, list[bytes]], None],
             fail: Callable[[Session, Exception], None], validate: Callable[[Any], Any], stats: Any) -> None:
        """Read every readable socket once (those on the fast path in one
        ``gamesync.native.recv_frames`` call); ``handle`` gets each session's messages. A
        session whose connection broke or broke the rules is closed (a vanished peer keeps
        its seat). On the native path ``native.read_pass`` does it and queues the usual
        inputs itself (``validate``: the game's ``validate_input``; ``fail``: what
        ``Roster.handle`` does when a message raises), handing ``handle`` the rest, and counts
        the inputs it queued into ``stats`` (the room's ``RoomStats``)."""
        if native.active():
            native.read_pass(self._ready.ready(), now, _take, handle, fail, validate, SessionState.PLAYING, stats)
            return
        fast: list[Session] = []
        s: Session
        for s in self._ready.ready():
            if s.proto.closing:
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
