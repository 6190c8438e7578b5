"""A room's reading side: the selector over its sessions' sockets, read once per tick."""

from __future__ import annotations

import selectors
from collections.abc import Callable

from ..core.errors import GamesyncError, PeerClosed
from .session import Session


class Inbox:
    """Every joined session's socket; ``read`` takes what each readable one has sent."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def __len__(self) -> int:
        """Sockets registered."""
        return len(self._selector.get_map())

    def add(self, s: Session) -> None:
        self._selector.register(s.sock, selectors.EVENT_READ, s)

    def remove(self, s: Session) -> None:
        try:
            self._selector.unregister(s.sock)
        except (KeyError, ValueError):
            pass

    def close(self) -> None:
        self._selector.close()

    def read(self, now: float, handle: Callable[[Session, list[bytes]], None]) -> None:
        """Read every readable socket once; ``handle`` gets each session's messages. A session
        whose connection broke or broke the rules is closed (a vanished peer keeps its seat)."""
        for key, _ in self._selector.select(0):
            s: Session = key.data
            if s.closing:
                continue
            try:
                msgs = s.conn.recv_messages(now)
            except GamesyncError as e:
                s.close(e)
                continue
            except PeerClosed as e:  # a close frame means it left; a vanished peer may come back
                s.close(None, f"disconnected ({e})", keep_seat=not e.clean)
                continue
            s.proto.heard(now)
            pong = s.conn.take_pong()
            if pong is not None:
                s.write(pong)  # queued behind a partly written frame, never inside it
            handle(s, msgs)
