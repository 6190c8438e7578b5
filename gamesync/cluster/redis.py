"""The node's link to Redis: every call bounded in time, outages logged once, and every
Redis command counted where it is issued (``commands``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import coredis
import coredis.exceptions
import trio

from ..core.errors import RedisDown
from . import keys as k

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: every Redis call gives up after this long (the caller carries on without it)
REDIS_TIMEOUT_S = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Counted:
    """A Redis client or pipeline whose every command counts one in ``link.commands``."""

    def __init__(self, target: Any, link: RedisLink) -> None:
        self._target = target
        self._link = link

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._target, name)

        def command(*args: Any, **kw: Any) -> Any:
            self._link.commands += 1
            return fn(*args, **kw)

        return command

    def script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered Lua script (one command) on this client or in this pipeline."""
        self._link.commands += 1
        return script(keys=keys, args=args, client=self._target)


class RedisLink:
    """Two coredis clients (text and bytes replies), the Lua scripts, the up/down state."""

    def __init__(self, url: str, node_id: str) -> None:
        self.url = url
        self.node_id = node_id
        self.up = False  # Redis answered the last call
        self.commands = 0  # Redis commands sent (pipelined ones counted one by one)
        self.outages = 0
        self.last_error = ""  # what the last failed call failed with
        self.raw: Any = None  # coredis client, text replies
        self.raw_bytes: Any = None  # coredis client, bytes replies (saved states)
        self.r: Any = None  # the text client, counted
        self.rb: Any = None  # the bytes client, counted
        self.scripts: dict[str, Any] = {}
        self.on_down: list[Callable[[], None]] = []  # called when an outage starts
        self._down_since: float | None = None

    async def connect(self, stack: AsyncExitStack) -> None:
        t = REDIS_TIMEOUT_S
        self.raw = await stack.enter_async_context(coredis.Redis.from_url(
            self.url, decode_responses=True, stream_timeout=t, connect_timeout=t))
        self.raw_bytes = await stack.enter_async_context(coredis.Redis.from_url(
            self.url, stream_timeout=t, connect_timeout=t))
        self.r = Counted(self.raw, self)
        self.rb = Counted(self.raw_bytes, self)
        self.scripts = {name: self.raw.register_script(src) for name, src in
                        (("renew", k.RENEW), ("release", k.RELEASE), ("transfer", k.TRANSFER), ("reserve", k.RESERVE))}

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script on its own (one command)."""
        return self.r.script(self.scripts[name], keys, args)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` within REDIS_TIMEOUT_S; RedisDown if it fails (logged once per outage)."""
        try:
            with trio.fail_after(REDIS_TIMEOUT_S):
                res = await fn()
        except (coredis.exceptions.RedisError, OSError, trio.TooSlowError) as e:
            self.last_error = str(e) or (f"no answer within {REDIS_TIMEOUT_S:g} s" if isinstance(e, trio.TooSlowError)
                                         else type(e).__name__)
            if self.up or self._down_since is None:
                self.outages += 1
                self._down_since = time.monotonic()
                logger.warning("node %s: Redis unreachable (%s: %s): rooms keep running; retrying", self.node_id,
                               what, e or type(e).__name__)
            self.up = False
            for hook in self.on_down:
                hook()
            raise RedisDown(what) from None
        if not self.up:
            if self._down_since is not None:
                logger.info("node %s: Redis reachable again after %.1f s: re-registering", self.node_id,
                            time.monotonic() - self._down_since)
            self.up = True
            self._down_since = None
        return res

    async def pipeline(self, what: str, build: Callable[[Counted], T], binary: bool = False) -> T:
        """One round trip: ``build`` queues commands on a counted pipeline (sent as it returns)."""
        async def run() -> T:
            async with (self.raw_bytes if binary else self.raw).pipeline(transaction=False) as pl:
                res = build(Counted(pl, self))
            return res
        return await self.call(what, run)


__all__ = ["REDIS_TIMEOUT_S", "Counted", "RedisDown", "RedisLink", "now_ms"]
