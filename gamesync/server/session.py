"""One joined client: its inbound state, its outbound mailbox and the task that flushes it.

The tick writes a client's frame straight to its socket when the socket has room. When it
has not, the rest of the frame waits in ``outbuf`` and the newest snapshot waits in a
one-slot mailbox (a newer one replaces it); the session's writer task finishes the frame
when the socket drains and then sends whatever is newest. So a slow client costs the tick
nothing and gets fewer, newer snapshots; one that accepts nothing for too long is closed.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import trio

from ..core.acks import AckTracker
from ..core.errors import GamesyncError, RateLimited, SlowConsumer
from ..core.protocol import NO_EVENTS, InputFrame, pack
from ..core.ratelimit import TokenBucket
from .config import ServerConfig
from ..wsframe import binary_header
from .wsconn import PeerClosed, WsConn

logger = logging.getLogger(__name__)


class Outgoing(NamedTuple):
    """A snapshot waiting for a client: everything but its input ack and events, which are
    added when sent. ``head`` and ``mid`` are the message bytes around those two, built once
    for every client that shares the payload (``protocol.snapshot_parts``)."""

    tick: int
    base: int
    ref: int
    flags: int
    payload: bytes
    head: bytes
    mid: bytes


class Session:
    """Per-client state owned by its room; the socket belongs to the room while joined."""

    def __init__(self, client_id: int, name: str, conn: WsConn, config: ServerConfig, now: float) -> None:
        self.id = client_id
        self.name = name
        self.player: str | None = None  # the player id a join token vouched for
        self.resume_token = ""  # set by the server; a join carrying it takes this seat again
        self.resumed = False  # this session continues a seat the game already knows (no on_join)
        self.entered = False  # it has been in the room's sessions (past a tick)
        self.keep_seat = False  # it failed in a way that keeps the seat for a resume
        self.conn = conn
        self.sock = conn.sock
        self.config = config
        # inbound
        self.inputs: list[InputFrame] = []
        self.last_applied = 0
        self.last_recv = now
        self.pinged = False
        # sync
        self.acks = AckTracker(config.history_ticks, config.baseline_lag)
        # outbound
        self.events: list[Any] = []
        self.doomed: list[Session] | None = None  # the room's list of sessions to drop
        self.outbuf: memoryview | None = None
        self.mailbox: Outgoing | None = None
        self.out_budget = TokenBucket(config.out_bytes_per_s, config.out_bytes_burst, now)
        self.bytes_out = 0
        self.frames_out = 0
        self.skipped = 0
        # lifecycle
        self.error: GamesyncError | None = None
        self.closing = False
        self.done = trio.Event()
        self._wake = trio.Event()

    @property
    def known_to_game(self) -> bool:
        """Whether the game has seen this seat join (a resume of it skips on_join)."""
        return self.resumed or self.entered

    # -- inbound ---------------------------------------------------------------------------

    def add_input(self, frame: InputFrame) -> None:
        if frame.seq <= self.last_applied:
            return  # already applied: a duplicate or a late resend
        self.inputs.append(frame)
        if len(self.inputs) > 4 * self.config.max_inputs_per_tick:
            raise RateLimited("too many inputs waiting to be applied")

    def take_inputs(self) -> list[InputFrame]:
        """This tick's inputs in seq order, without duplicates; the excess waits for the next tick."""
        inputs = self.inputs
        if not inputs:
            return []
        if len(inputs) == 1:  # the usual case: one input per tick, already checked newer
            self.inputs = []
            self.last_applied = inputs[0].seq
            return inputs
        frames = sorted({f.seq: f for f in self.inputs if f.seq > self.last_applied}.values(), key=lambda f: f.seq)
        cap = self.config.max_inputs_per_tick
        now, self.inputs = frames[:cap], frames[cap:]
        if now:
            self.last_applied = now[-1].seq
        return now

    # -- outbound --------------------------------------------------------------------------

    def queue_event(self, entry: list[Any]) -> None:
        self.events.append(entry)
        if len(self.events) > self.config.max_pending_events:
            self.fail(SlowConsumer("too many events waiting for a client that is not reading"), keep_seat=True)

    def offer(self, snap: Outgoing, now: float) -> None:
        """Send this tick's snapshot now if the socket has room, else leave it in the mailbox."""
        if self.closing:
            return
        if self.outbuf is not None:
            if self.mailbox is not None:
                self.skipped += 1
            self.mailbox = snap
            return
        self._send_snapshot(snap, now)

    def _send_snapshot(self, snap: Outgoing, now: float) -> None:
        ack = pack(self.last_applied)
        events = pack(self.events) if self.events else NO_EVENTS
        size = len(snap.head) + len(ack) + len(snap.mid) + len(events)
        head = binary_header(size)
        if not self.out_budget.take_oversize(len(head) + size, now):
            self.skipped += 1  # over the byte budget: skip; events wait for the next frame
            return
        self.events = []
        self.acks.on_sent(snap.tick, snap.base)
        self.frames_out += 1
        self.write(b"".join((head, snap.head, ack, snap.mid, events)))

    def write(self, data: bytes) -> None:
        """Non-blocking write; what does not fit goes to the writer task."""
        data = self.conn.seal(data)  # TLS records when the connection runs TLS, else as is
        if self.outbuf is not None:
            self.outbuf = memoryview(bytes(self.outbuf) + data)
            return
        n = self._send_now(data)
        if 0 <= n < len(data):
            self.outbuf = memoryview(data)[n:]
            self._wake.set()

    def _send_now(self, data: bytes | memoryview) -> int:
        """One non-blocking send: bytes written (0 when the socket is full), -1 once it failed."""
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            self.fail(None, f"send failed: {e}", keep_seat=True)
            return -1
        self.bytes_out += n
        return n

    async def writer(self) -> None:
        """Finish partial frames when the socket drains; then send the newest waiting snapshot."""
        timeout = self.config.unwritable_timeout_s
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self.outbuf is not None:
                with trio.move_on_after(timeout) as cs:
                    await trio.lowlevel.wait_writable(self.sock)
                if cs.cancelled_caught:
                    self.fail(SlowConsumer(f"socket accepted nothing for {timeout:g} s"), keep_seat=True)
                    return
                n = self._send_now(self.outbuf)
                if n < 0:
                    return
                rest = self.outbuf[n:]
                self.outbuf = rest if len(rest) else None
                if self.outbuf is None and self.mailbox is not None and not self.closing:
                    snap, self.mailbox = self.mailbox, None
                    self._send_snapshot(snap, trio.current_time())

    # -- lifecycle -------------------------------------------------------------------------

    def fail(self, err: GamesyncError | None, why: str = "", keep_seat: bool = False) -> None:
        """Mark the session for closing (idempotent); the room drops it at its next safe point.
        ``keep_seat``: the connection was lost rather than refused, so the room keeps the
        player's seat for ``seat_grace_s`` in case they come back."""
        if self.closing:
            return
        self.closing = True
        self.keep_seat = keep_seat
        if self.doomed is not None:
            self.doomed.append(self)
        self.error = err
        if err is not None:
            logger.info("client %d (%s): closing, %s: %s", self.id, self.name, err.code, err.reason)
        elif why:
            logger.info("client %d (%s): %s", self.id, self.name, why)

    async def flush_and_close(self, timeout: float) -> None:
        """Finish a partly written frame if the peer lets us, then run the close handshake."""
        if self.outbuf is not None:
            with trio.move_on_after(timeout):
                try:
                    await self.conn.send_raw(self.outbuf)  # already sealed
                    self.outbuf = None
                except PeerClosed:
                    pass
        if self.outbuf is not None:
            self.conn.sock.close()  # mid-frame: no close frame can follow; drop the connection
            return
        await self.conn.close(self.error, timeout)
