"""The client's reconnect policy, without I/O: what ended a connection, when and where to try again.

``backoff_delay`` spaces the attempts (capped exponential backoff, full jitter); ``Retries``
counts redirects in a row, seed URLs tried and the backoff attempt; ``outcome`` tells a lost
connection from cancellation and from a bug.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from ..core.errors import DesyncError, Redirect

logger = logging.getLogger(__name__)

#: seconds a first join the server defers is retried for (later ones are retried for ever)
DEFERRED_FOR_S = 30.0
#: redirects followed in a row before giving up (a loop between nodes)
MAX_REDIRECTS = 5


class ClientClosed(Exception):
    """The client is closed and will not reconnect."""


class Deferred(ConnectionError):
    """The server could not take the join now (a cluster moving the room): retry later."""


def backoff_delay(attempt: int, initial: float, cap: float, rng: Any = random) -> float:
    """Seconds to wait before reconnect ``attempt``: capped exponential backoff with full jitter,
    uniform in ``[0, min(cap, initial * 2 ** attempt)]``.

    ``attempt`` is 1 for the first retry after a connection that had joined, and one more for
    each failed connection since; so with the defaults (``initial`` 0.2 s, ``cap`` 5 s) the
    bounds are 0.4, 0.8, 1.6, 3.2, then 5 s. ``rng`` is anything with ``uniform(lo, hi)``.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    try:
        bound = min(cap, initial * 2.0 ** attempt)
    except OverflowError:  # 2.0 ** attempt is past the float range: long past the cap
        bound = cap
    return rng.uniform(0.0, bound)


class Next(NamedTuple):
    """What follows a lost connection."""

    target: str | None  # a redirect's URL, for the next connection only (at once, no backoff)
    seed: str  # the seed URL connections start from from now on
    give_up: bool  # the client closes for good


class Retries:
    """The reconnect loop's decisions, from how each connection ended: redirects followed in a
    row, seed URLs tried since the last good join, the backoff attempt. Time is passed in."""

    def __init__(self, name: str, room: str, seeds: Sequence[str], now: float) -> None:
        self.name, self.room = name, room  # the client's, for the log
        self.seeds = list(seeds)
        self.deferred_until = now + DEFERRED_FOR_S  # a first join deferred is retried until then
        self.attempt = 0
        self.hops = 0
        self.tried = 0

    def after_loss(self, e: BaseException, seed: str, started: bool, now: float) -> Next:
        """After ``e`` (an ``outcome``) ended a connection that started from ``seed``; ``started``
        once the client first joined (a first connect fails loudly, later ones retry)."""
        if isinstance(e, Redirect):
            self.hops += 1
            if self.hops <= MAX_REDIRECTS:
                logger.info("client %s: room %s is at %s: following", self.name, self.room, e.url)
                return Next(e.url, seed, give_up=False)
            logger.warning("client %s: more than %d redirects in a row", self.name, MAX_REDIRECTS)
            return Next(None, seed, give_up=True)
        if isinstance(e, ClientClosed):
            logger.warning("client %s: %s", self.name, e)
            return Next(None, seed, give_up=True)
        logger.info("client %s: connection lost: %s", self.name, e)
        self.tried += 1
        deferred = isinstance(e, Deferred)
        if not deferred:  # else the node is up but cannot place the room yet
            seed = self.seeds[(self.seeds.index(seed) + 1) % len(self.seeds)]  # next node
        retry = started or self.tried < len(self.seeds) or (deferred and now < self.deferred_until)
        return Next(None, seed, give_up=not retry)

    def next_attempt(self, joined: bool) -> int:
        """The backoff attempt before the next connection; a good join (``joined``) resets it."""
        self.hops = 0
        if joined:
            self.tried = 0
        self.attempt = 1 if joined else self.attempt + 1
        return self.attempt


_LOST = (ConnectionClosed, HandshakeError, OSError, trio.TooSlowError, DesyncError, Redirect)


def _leaves(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in _leaves(sub)]
    return [e]


def outcome(exc: BaseException) -> BaseException:
    """What ended a connection: re-raises cancellation and unexpected errors, else returns
    the ClientClosed or connection-lost exception inside (possibly nested) groups."""
    leaves = _leaves(exc)
    if any(isinstance(x, trio.Cancelled) for x in leaves):
        if isinstance(exc, BaseExceptionGroup):
            # cancelled (the client is closing) while the connection was also going down: the
            # lost connection does not matter any more, and must not escape the cancel scope
            cancelled, rest = exc.split(trio.Cancelled)
            if cancelled is not None and (rest is None or all(isinstance(x, (ClientClosed, *_LOST))
                                                              for x in _leaves(rest))):
                raise cancelled from None
        raise exc
    if not all(isinstance(x, (ClientClosed, *_LOST)) for x in leaves):
        raise exc
    return next((x for x in leaves if isinstance(x, (ClientClosed, Redirect))), leaves[0])
