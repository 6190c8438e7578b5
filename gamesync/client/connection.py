"""The Python client: a room connection with a numpy mirror of the world, over trio-websocket.

    async with open_client("ws://127.0.0.1:8765", room="arena", name="me") as c:
        await c.wait_state()
        x = c.column("x")           # float32 numpy column of the newest state
        c.send_input([1, 0])
        async for ev in c.events(): ...

Reconnects with exponential backoff and full jitter (``backoff_delay``), and rejoins, unless
told not to. In a cluster, follows a redirect to the node hosting the room at once; ``url``
may be a list of nodes to reconnect through in turn when one is gone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import trio
from numpy.typing import NDArray
from trio_websocket import ConnectionClosed, open_websocket_url

from ..core import clientproto as cp
from ..core.errors import Redirect, should_retry
from ..core.protocol import PROTOCOL_VERSION, pack_leave
from ..core.schema import Schema
from ..core.state import State
from .entities import EntityReads
from .eventqueue import EventQueue
from .reconnect import ClientClosed, Retries, backoff_delay
from .reconnect import outcome as _outcome
from .session import join, ping_every, read_messages, take_seat
from .status import MAX_ATTEMPTS, ClientEvents, Status, lost_reason

logger = logging.getLogger(__name__)

EVENT_BUFFER = 1024  # game events kept for a consumer that is behind (oldest dropped beyond)
PING_INTERVAL_S = 1.0


class Client(EntityReads, ClientEvents):
    """One player's connection. Create it with ``open_client``."""

    def __init__(self, url: str | Sequence[str], room: str, name: str, game: str | None = None, *,
                 reconnect: bool = True, backoff_initial: float = 0.2, backoff_max: float = 5.0, auto_ack: bool = True,
                 token: str | None = None, ssl_context: Any = None, protocol: int = PROTOCOL_VERSION,
                 max_attempts: int | None = MAX_ATTEMPTS) -> None:
        #: the nodes to (re)connect through, in turn; a redirect goes elsewhere for one connection
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("need at least one URL")
        self.url = self.urls[0]
        self.room, self.name, self.game = room, name, game
        self.host_url: str | None = None  # where the current connection is (after redirects)
        self.redirects = 0  # redirects followed
        self.token = token  # a join token, for servers that require one (reused on reconnect)
        self.ssl_context = ssl_context  # for wss:// URLs (None: the system's default trust)
        self.resume_token: str | None = None  # from the last welcome: reconnects take the same seat
        self.resumes = 0  # reconnects that got the same seat back
        self.reconnect = reconnect
        if not (backoff_initial >= 0 and backoff_max >= 0):
            raise ValueError("backoff_initial and backoff_max must be >= 0")
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_attempts = max_attempts  # failed reconnects in a row before giving up (None: never)
        self.auto_ack = auto_ack
        self.protocol = protocol  # the protocol version spoken (docs/protocol.md: 3, or 2 for acks)
        self.proto: cp.ClientProtocol | None = None
        self.client_id: int | None = None
        self.rtt: float | None = None
        self.connects = 0
        self.last_error: cp.ErrorReceived | None = None
        self._ws: Any = None
        self._events = EventQueue(EVENT_BUFFER)
        self._state_ready = trio.Event()
        self._connected = trio.Event()
        self._closed = False
        self._started = False
        self._done = trio.Event()
        #: reliable messages waiting for their ack, by (connection's protocol, ack id): ack ids
        #: start again at 1 on every connection, so an id alone could wake the wrong sender
        self._pending_acks: dict[tuple[cp.ClientProtocol, int], trio.Event] = {}

    # -- state -----------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        assert self.proto is not None and self.proto.schema is not None, "not joined yet"
        return self.proto.schema

    @property
    def state(self) -> State | None:
        """Newest world state (quantised) of the current connection; None before its first snapshot."""
        m = self.proto.mirror if self.proto else None
        return m.latest if m else None

    @property
    def input_ack(self) -> int:
        """Last input seq the server applied for this client."""
        return self.proto.input_ack if self.proto else 0

    def column(self, name: str) -> NDArray[Any]:
        """Dequantised column ``name`` of the newest state (all slots; see ``alive``)."""
        st = self.state
        if st is None:
            raise RuntimeError("no state yet")
        return st.column(self.schema, name)

    def alive(self) -> NDArray[np.bool_]:
        st = self.state
        return st.alive if st is not None else np.zeros(0, dtype=bool)

    async def wait_state(self, newer_than: int = -1) -> State:
        """Wait for a state with tick > ``newer_than``."""
        while True:
            st = self.state
            if st is not None and st.tick > newer_than:
                return st
            if self._closed and self._done.is_set():
                raise self._closed_error()
            await self._state_ready.wait()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    # -- sending ---------------------------------------------------------------------------

    async def _link(self) -> tuple[Any, cp.ClientProtocol]:
        """The live connection; waits through a reconnect, raises ClientClosed once closed for good."""
        while self._ws is None or self.proto is None:
            if self._closed:
                raise self._closed_error()
            await self._connected.wait()
        return self._ws, self.proto

    async def _send_built(self, build: Any) -> Any:
        """Send ``build(proto)``'s message on the live connection, rebuilt after a reconnect."""
        while True:
            ws, proto = await self._link()
            msg, result = build(proto)
            try:
                await ws.send_message(msg)
                return result
            except ConnectionClosed:
                if self._ws is ws:
                    await trio.sleep(0)  # let the run loop notice, then wait for the next link
                continue

    async def send_input(self, data: Any) -> int:
        """Send an input; returns its seq (compare with ``input_ack``). During a reconnect it
        waits for the new connection (seqs keep increasing across connections)."""
        return await self._send_built(lambda proto: (proto.send_input(data), proto.input_seq))

    async def send_message(self, data: Any) -> None:
        await self._send_built(lambda proto: (proto.send_message(data)[0], None))

    async def send_reliable(self, data: Any, timeout: float = 5.0) -> bool:
        """Send a message and wait until the server acknowledges it (False on timeout)."""
        acked = trio.Event()
        keys: list[tuple[cp.ClientProtocol, int]] = []

        def build(proto: cp.ClientProtocol) -> tuple[bytes, None]:
            msg, ack_id = proto.send_message(data, reliable=True)
            assert ack_id is not None
            # waiting before the message goes out: the reader may take the ack off the socket
            # while send_message is still awaiting (a resend after a reconnect adds a key)
            keys.append((proto, ack_id))
            self._pending_acks[keys[-1]] = acked
            return msg, None

        try:
            with trio.move_on_after(timeout):
                await self._send_built(build)
                await acked.wait()
            return acked.is_set()
        finally:
            for key in keys:
                if self._pending_acks.get(key) is acked:
                    del self._pending_acks[key]

    async def reply(self, ack_id: int, data: Any) -> None:
        """Answer a server's request (a ``ReliableMessage`` from ``events()``) with ``data``."""
        await self._send_built(lambda proto: (proto.reply(ack_id, data), None))

    async def ping(self) -> None:
        await self._send_built(lambda proto: (proto.ping(trio.current_time()), None))

    # -- receiving -------------------------------------------------------------------------

    def _handle(self, ev: cp.ClientSideEvent, proto: cp.ClientProtocol | None = None) -> None:
        """One event from ``proto``'s connection (acks need to know which connection)."""
        if isinstance(ev, cp.StateUpdated):
            self._state_ready.set()
            self._state_ready = trio.Event()
        elif isinstance(ev, cp.Pong):
            self.rtt = ev.rtt if self.rtt is None else 0.8 * self.rtt + 0.2 * ev.rtt
        elif isinstance(ev, cp.MessageAcked):
            e = self._pending_acks.get((proto, ev.ack_id)) if proto is not None else None
            if e is not None:
                e.set()
        else:
            if isinstance(ev, cp.ErrorReceived):
                self.last_error = ev
            self._events.push(ev)

    # -- connection loop -------------------------------------------------------------------

    async def _run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, then reconnect (after a backoff) or follow redirects, until closed."""
        retries = Retries(self.name, self.room, self.urls, trio.current_time())
        self._set_status(Status.CONNECTING)
        target: str | None = None  # a redirect's URL for the next connection
        lost: BaseException | None = None  # what ended the last connection
        try:
            while not self._closed:
                connects = self.connects
                url, target = target or self.url, None
                try:
                    await self._session(task_status, url)
                except BaseException as exc:
                    e = lost = _outcome(exc)
                    self.redirects += isinstance(e, Redirect)
                    target, self.url, give_up = retries.after_loss(e, self.url, self._started, trio.current_time())
                    self._closed = self._closed or give_up
                finally:
                    self._ws = None
                    self._connected = trio.Event()
                if target is not None:
                    self._following(target)
                    continue
                err = self.last_error
                if err is not None and not should_retry(err.code):  # a bug or a configuration error
                    self._closed = True
                if self._closed or not self.reconnect:
                    break
                attempt = retries.next_attempt(joined=self.connects > connects)  # a good join resets it
                delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max, random)
                if not self._reconnecting(attempt, delay, lost_reason(lost, self.last_error)):
                    break  # max_attempts failed in a row: offline, with ReconnectFailed
                await trio.sleep(delay)
        finally:
            self._closed = True
            self._events.wake()
            self._state_ready.set()
            self._connected.set()  # wake anyone waiting to send: they get ClientClosed
            self._offline(lost)
            self._done.set()
            if not self._started:
                self._started = True
                task_status.started()

    async def _session(self, task_status: Any, url: str) -> None:
        """One connection to ``url``: join, then read until it ends (raises what ended it)."""
        async with open_websocket_url(url, message_queue_size=64, ssl_context=self.ssl_context) as ws:
            proto = (self.proto.successor(self.resume_token) if self.proto is not None else
                     cp.ClientProtocol(self.room, self.name, self.game, auto_ack=self.auto_ack, token=self.token,
                                       resume=self.resume_token, version=self.protocol))
            welcome = await join(ws, proto)
            if not isinstance(welcome, cp.Welcomed):
                self._handle(welcome)
                raise ClientClosed(f"join refused: {welcome}")
            self.client_id = welcome.welcome.client_id
            self.resume_token = welcome.welcome.resume_token
            if welcome.welcome.resumed:
                self.resumes += 1
            await take_seat(ws, proto, welcome.welcome.resumed)
            self.proto, self._ws = proto, ws
            self.host_url = url
            self.connects += 1
            self._connected.set()
            self._set_status(Status.CONNECTED)
            self._events.push(welcome)
            attempt_ok = not self._started
            self._started = True
            if attempt_ok:
                task_status.started()
            async with trio.open_nursery() as n:
                n.start_soon(ping_every, PING_INTERVAL_S, self.ping)
                await read_messages(ws, proto, lambda ev: self._handle(ev, proto))

    async def aclose(self) -> None:
        """Leave the room: the server closes the connection at its next tick; wait up to 1 s."""
        self._closed = self._leaving = True
        ws = self._ws
        if ws is not None:
            try:
                await ws.send_message(pack_leave())
            except ConnectionClosed:
                pass
            with trio.move_on_after(1):
                await self._done.wait()


@asynccontextmanager
async def open_client(url: str | Sequence[str], room: str = "arena", name: str = "player", game: str | None = None,
                      **kwargs: Any) -> AsyncIterator[Client]:
    """Connect, join and yield a Client; leaves and closes on exit."""
    client = Client(url, room, name, game, **kwargs)
    joined = False
    async with trio.open_nursery() as n:
        await n.start(client._run)
        if client.proto is not None:
            joined = True
            try:
                yield client
            finally:
                await client.aclose()
                n.cancel_scope.cancel()
    if not joined:
        raise ClientClosed(f"could not join {url}: {client.last_error or 'connection failed'}")
