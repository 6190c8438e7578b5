"""One joined client: its inbound state, its outbound mailbox and the task that flushes it.

The tick writes a client's frame straight to its socket when the socket has room. When it
has not, the rest of the frame waits in ``outbuf`` and the newest snapshot waits in a
one-slot mailbox (a newer one replaces it); the session's writer task finishes the frame
when the socket drains and then sends whatever is newest. So a slow client costs the tick
nothing and gets fewer, newer snapshots; one that accepts nothing for too long is closed.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import trio

from .. import native
from ..core.acks import AckTracker
from ..core.errors import GamesyncError, PeerClosed, SlowConsumer
from ..core.protocol import NO_EVENTS, PACKED_VERSION, pack
from ..core.serverproto import ServerSession
from ..core.viewplan import ClientView
from ..wsframe import binary_header
from .config import ServerConfig
from .seats import Seat
from .wsconn import WsConn

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
    #: in a view room, the view this snapshot leaves the client with (core.viewplan.ViewFrame)
    view: Any = None


class Session:
    """Per-client I/O state owned by its room (the socket belongs to the room while joined);
    the protocol rules and the lifecycle are ``proto``'s (core.serverproto)."""

    def __init__(self, seat: Seat, conn: WsConn, config: ServerConfig, proto: ServerSession, now: float) -> None:
        self.seat = seat  # client id, name, player, resume token; undelivered events
        self.id = seat.id
        self.name = seat.name
        self.player = seat.player  # the player id a join token vouched for
        self.resumed = seat.resumed  # this session continues a dropped one's seat
        self.proto = proto
        self.conn = conn
        self.sock = conn.sock
        self.config = config
        # outbound
        self.events: list[Any] = seat.events  # event entries waiting for the next frame
        self.to_drop: list[Session] | None = None  # the room's list of sessions to drop
        self.outbuf: memoryview | None = None
        self.mailbox: Outgoing | None = None
        self.out_budget = native.token_bucket(config.out_bytes_per_s, config.out_bytes_burst, now)
        self.bytes_out = 0
        self.frames_out = 0
        self.skipped = 0
        self.view = ClientView(packed=proto.version >= PACKED_VERSION)  # what it watches, in a view room
        self.link: Any = None  # the native passes' lookups of this session's objects (gamesync.native)
        # lifecycle
        self.done = trio.Event()
        self._wake = trio.Event()

    @property
    def resume_token(self) -> str:
        return self.seat.resume_token

    @property
    def closing(self) -> bool:
        return self.proto.closing

    @property
    def keep_seat(self) -> bool:
        return self.proto.keep_seat

    @property
    def error(self) -> GamesyncError | None:
        return self.proto.error

    @property
    def acks(self) -> AckTracker:
        return self.proto.acks

    @property
    def last_applied(self) -> int:
        return self.proto.last_applied

    def to_seat(self) -> Seat:
        """Its seat as it stands now, to keep for a resume or to save."""
        self.seat.last_applied = self.proto.last_applied
        self.seat.events = self.events
        return self.seat

    # -- outbound --------------------------------------------------------------------------

    def queue_event(self, entry: list[Any]) -> None:
        self.events.append(entry)
        if len(self.events) > self.config.max_pending_events:
            self.close(SlowConsumer("too many events waiting for a client that is not reading"), keep_seat=True)

    def offer(self, snap: Outgoing, now: float) -> None:
        """Send this tick's snapshot now if the socket has room, else leave it in the mailbox."""
        frame = self.frame_parts(snap, now)
        if frame is not None:
            self.write(b"".join(frame[0]))

    def frame_parts(self, snap: Outgoing, now: float) -> tuple[list[bytes], int] | None:
        """What ``offer`` writes, unwritten: the frame's byte strings and their total length,
        or None when nothing is to be written now (the snapshot waits in the mailbox, or is
        skipped). The caller writes them (``wrote``), in one batch for many sessions."""
        if self.proto.closing:
            return None
        if self.outbuf is not None:
            if self.mailbox is not None:
                self.skipped += 1
            self.mailbox = snap
            return None
        return self.snapshot_parts(snap, now)

    def _send_snapshot(self, snap: Outgoing, now: float) -> None:
        frame = self.snapshot_parts(snap, now)
        if frame is not None:
            self.write(b"".join(frame[0]))

    def snapshot_parts(self, snap: Outgoing, now: float) -> tuple[list[bytes], int] | None:
        """``frame_parts`` for a session that is not closing and has nothing waiting to be written."""
        if snap.view is not None and snap.base != self.view.tick:
            self.skipped += 1  # built on a view the client no longer has: the next tick's will do
            return None
        proto = self.proto
        ack = pack(proto.inputs.last_applied)
        events = pack(self.events) if self.events else NO_EVENTS
        size = len(snap.head) + len(ack) + len(snap.mid) + len(events)
        head = binary_header(size)
        parts = [head, snap.head, ack, snap.mid, events]
        total = len(head) + size
        if self.conn.deflate is not None:  # permessage-deflate (server.deflate): big events compressed
            parts = self.conn.deflate.parts(parts, events)
            total = sum(map(len, parts))
        if not self.out_budget.take_oversize(total, now):
            self.skipped += 1  # over the byte budget: skip; events wait for the next frame
            return None
        if self.events:
            self.events = []
        proto.acks.on_sent(snap.tick, snap.base)
        if snap.view is not None:
            self.view.commit(snap.view)
        self.frames_out += 1
        return parts, total

    def wrote(self, parts: list[bytes], total: int, n: int) -> None:
        """The outcome of a batched send of a frame (``frame_parts``, on a connection without
        TLS): ``n`` bytes written (the rest goes to the writer task), or minus the errno."""
        if n < 0:
            self.close(None, f"send failed: {OSError(-n, os.strerror(-n))}", keep_seat=True)
            return
        self.bytes_out += n
        if n < total:
            self.outbuf = memoryview(b"".join(parts))[n:]
            self._wake.set()

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
            self.close(None, f"send failed: {e}", keep_seat=True)
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
                    self.close(SlowConsumer(f"socket accepted nothing for {timeout:g} s"), keep_seat=True)
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

    def close(self, err: GamesyncError | None, why: str = "", keep_seat: bool = False) -> None:
        """Start closing (idempotent); the room drops the session at its next safe point.
        ``keep_seat``: the connection was lost rather than refused, so the room keeps the
        player's seat for ``seat_grace_s`` in case they come back."""
        if self.proto.close(err, why, keep_seat):
            self._closing_noted()

    def left(self) -> None:
        """The client sent leave (its protocol object is closing already)."""
        self._closing_noted()

    def _closing_noted(self) -> None:
        if self.to_drop is not None:
            self.to_drop.append(self)
        err, why = self.proto.error, self.proto.why
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
