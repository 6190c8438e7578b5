"""The client's connection status, with the names and meaning the JS client gives it
(demo/js/connection.js): ``connecting`` (the first connection), ``connected`` (joined),
``reconnecting`` (lost, trying again after a backoff), ``offline`` (closed for good). Each
change is a ``StatusChanged`` event in ``Client.events()``; after ``max_attempts`` failed
reconnects in a row the client goes offline with ``ReconnectFailed``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import trio
from trio_websocket import ConnectionClosed

from ..core import clientproto as cp
from .reconnect import ClientClosed

#: failed reconnect attempts in a row before a client gives up (the JS client's default too)
MAX_ATTEMPTS = 8


class Status(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StatusChanged:
    """The connection's status changed. ``attempt``: the reconnect attempt coming (1, 2, ...;
    0 otherwise), ``delay``: seconds until it; ``reason``: why the connection was lost, or why
    the client is offline."""

    status: Status
    attempt: int = 0
    delay: float = 0.0
    reason: str = ""


class ReconnectFailed(ClientClosed):
    """``max_attempts`` reconnects in a row failed: the client is offline for good."""


#: what ``Client.events()`` yields
ClientEvent = cp.ClientSideEvent | StatusChanged


class _Queue(Protocol):
    """What ``ClientEvents`` needs of the client's EventQueue."""

    dropped: int

    def push(self, ev: ClientEvent) -> None: ...

    def wake(self) -> None: ...

    def drain(self, closed: Callable[[], bool],
              failure: Callable[[], BaseException | None]) -> AsyncIterator[ClientEvent]: ...


class ClientEvents:
    """The events side of ``Client``: ``events()``, the current ``status`` (each change is an
    event too), and the ``failure`` that ended the client (None while it runs, or when it was
    closed on purpose)."""

    status: Status = Status.OFFLINE
    failure: ClientClosed | None = None
    max_attempts: int | None = MAX_ATTEMPTS
    reconnect: bool
    last_error: cp.ErrorReceived | None
    _events: _Queue
    _done: trio.Event
    _started: bool
    _leaving = False  # aclose() was called: the client closes because it was asked to

    def events(self) -> AsyncIterator[ClientEvent]:
        """Game events, joins/leaves, reliable messages, errors, (re)welcomes and status
        changes; not state updates. Ends when the client closes (its last event: ``offline``),
        raising ReconnectFailed when that was ``max_attempts`` failed reconnects."""
        return self._events.drain(self._done.is_set,  # set once the offline event is in
                                  lambda: self.failure if isinstance(self.failure, ReconnectFailed) else None)

    @property
    def events_dropped(self) -> int:
        """Events dropped because the consumer of ``events()`` was more than EVENT_BUFFER behind."""
        return self._events.dropped

    def _set_status(self, status: Status, attempt: int = 0, delay: float = 0.0, reason: str = "") -> None:
        if status != self.status or status == Status.RECONNECTING:
            self.status = status
            self._events.push(StatusChanged(status, attempt, delay, reason))

    def _reconnecting(self, attempt: int, delay: float, reason: str) -> bool:
        """Report reconnect ``attempt`` (in ``delay`` seconds); False, with ``failure`` set, when
        it would be one more than ``max_attempts`` (once joined: until then, a first connection
        fails as ``Retries`` decides, and ``open_client`` raises)."""
        if self._started and self.max_attempts is not None and attempt > self.max_attempts:
            self.failure = ReconnectFailed(f"gave up after {self.max_attempts} failed reconnect attempts in a row "
                                           f"(last: {reason})")
            return False
        self._set_status(Status.RECONNECTING, attempt, delay, reason)
        return True

    def _following(self, url: str) -> None:
        """A redirect: the room is at ``url``, where the next connection goes at once."""
        if self.status == Status.CONNECTED:
            self._set_status(Status.RECONNECTING, reason=f"the room moved to {url}")

    def _offline(self, lost: BaseException | None) -> None:
        """The client has stopped. Unless it was asked to (``aclose``), told not to reconnect, or
        never joined (``open_client`` raises then), why is its ``failure``."""
        why = "left" if self._leaving else lost_reason(lost, self.last_error)
        if self.failure is None and self._started and self.reconnect and not self._leaving and lost is not None:
            self.failure = ClientClosed(f"gave up: {why}")
        self._set_status(Status.OFFLINE, reason=str(self.failure or why))

    def _closed_error(self) -> ClientClosed:
        """What waiting on a closed client raises."""
        return self.failure or ClientClosed("the client is closed")


def lost_reason(e: BaseException | None, error: cp.ErrorReceived | None) -> str:
    """Why a connection ended, in a few words: for a close, the server's error before it (or
    the close code); else what was raised, or what caused it when it says nothing itself."""
    if isinstance(e, ConnectionClosed):
        if error is not None:
            return f"{error.code}: {error.reason}"
        r = e.reason
        return f"closed by the server ({r.code} {r.reason or r.name})" if r is not None else "connection closed"
    while e is not None and not str(e) and (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    if e is None:
        return "connection lost"
    cause = e.__cause__  # trio's "all attempts to connect ... failed" keeps the why in a group
    if isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
        inner = cause.exceptions[0]
        if isinstance(inner, OSError) and inner.errno:
            return f"{e}: {os.strerror(inner.errno)}"
    return str(e) or type(e).__name__
