"""A tick's frames, written: every session's frame in one ``gamesync.native.send_parts`` call.

Each frame goes out as its parts (header, the shared snapshot bytes around the client's input
ack, its events) in one scatter-gather ``sendmsg``, never joined; only a frame the socket
cannot take whole is joined, for the session's writer task to finish. Connections running
TLS seal their frame and write it on their own.
"""

from __future__ import annotations

from typing import Any

from .. import native
from .session import Outgoing, Session


def send_frames(plan: list[tuple[Session, Outgoing]], now: float, stats: Any) -> None:
    """Offer every session its snapshot; write those that go out now, in one batch (on the
    native path ``native.send_pass`` writes them, with ``send_one`` for the unusual sessions,
    and counts their frames and bytes into ``stats``, the room's ``RoomStats``; the Python path
    counts them on each session)."""
    if native.active():
        native.send_pass(plan, now, send_one, stats)
    else:
        _send_python(plan, now)


def send_one(s: Session, out: Outgoing, now: float) -> None:
    """What ``send_frames`` does for one session, on its own (the Python path, for a session
    the native pass hands back)."""
    _send_python([(s, out)], now)


def _send_python(plan: list[tuple[Session, Outgoing]], now: float) -> None:
    owners: list[Session] = []
    socks: list[Any] = []
    frames: list[list[bytes]] = []
    totals: list[int] = []
    try:
        for s, out in plan:
            if s.outbuf is None and not s.proto.closing:  # Session.frame_parts, without the detour
                frame = s.snapshot_parts(out, now)
            else:
                frame = s.frame_parts(out, now)
            if frame is None:
                continue
            if s.conn.tls is None:
                owners.append(s)
                socks.append(s.sock)
                frames.append(frame[0])
                totals.append(frame[1])
            else:
                s.write(b"".join(frame[0]))
    finally:  # what was built is written, whatever stopped the loop (its session counts it as sent)
        if owners:
            _write(owners, socks, frames, totals)


def _write(owners: list[Session], socks: list[Any], frames: list[list[bytes]], totals: list[int]) -> None:
    sent = native.send_parts(socks, frames)
    for s, parts, total, n in zip(owners, frames, totals, sent, strict=True):
        if n == total:  # the usual outcome, as ``wrote`` would take it
            s.bytes_out += n
        else:
            s.wrote(parts, total, n)
