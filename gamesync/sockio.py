"""Reads and writes on non-blocking stdlib sockets: awaiting ones for trio code off the hot
path (handshakes, joins, closes), and the pure-Python path of the batched per-tick calls
(``recv_frames``, ``send_parts``, ``send_masked``; gamesync.native picks the path).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from typing import Any

import trio

from .wsframe import FrameTooBig, masked_binary_frame


async def recv_some(sock: socket.socket, max_bytes: int) -> bytes:
    """The next bytes the socket has (b"" at end of stream), waiting until there are some."""
    while True:
        try:
            return sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            await trio.lowlevel.wait_readable(sock)


async def send_all(sock: socket.socket, data: bytes | memoryview) -> None:
    """Write all of ``data``, waiting whenever the socket is full."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except (BlockingIOError, InterruptedError):
            await trio.lowlevel.wait_writable(sock)
            continue
        view = view[n:]


# -- the pure-Python path of gamesync.native's batched calls (same results, see there) --------


def recv_frames(socks: Sequence[Any], readers: Sequence[Any], max_bytes: int) -> list[Any]:
    """For each socket, one non-blocking read fed to its reader (``gamesync.native.recv_frames``)."""
    out: list[Any] = []
    for sock, r in zip(socks, readers, strict=True):
        try:
            data = sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            out.append((-errno.EAGAIN, [], None))
            continue
        except OSError as e:
            out.append((-(e.errno or errno.EIO), [], None))
            continue
        if not data:
            out.append((0, [], None))
            continue
        try:
            msgs, rest = r.feed(data)
        except FrameTooBig as e:
            r.too_big = e.size
            msgs, rest = [], None
        out.append((len(data), msgs, rest))
    return out


def read_error(n: int) -> OSError | None:
    """What a failed batched read (``n`` < 0, minus the errno) means: None when the socket only
    had nothing to read, else the error."""
    if -n in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
        return None
    return OSError(-n, os.strerror(-n))


def send_parts(socks: Sequence[Any], parts: Sequence[Sequence[bytes]]) -> list[int]:
    """For each socket, one non-blocking ``sendmsg`` of its parts (``gamesync.native.send_parts``)."""
    out: list[int] = []
    for sock, p in zip(socks, parts, strict=True):
        try:
            out.append(sock.sendmsg(p))
        except (BlockingIOError, InterruptedError):
            out.append(0)
        except OSError as e:
            out.append(-(e.errno or errno.EIO))
    return out


def send_masked(socks: Sequence[Any], msgs: Sequence[bytes], keys: bytes) -> list[int]:
    """For each socket, its message as one masked frame (``gamesync.native.send_masked``)."""
    if len(keys) < 4 * len(msgs):
        raise ValueError("need 4 key bytes per message")
    out: list[int] = []
    for i, (sock, msg) in enumerate(zip(socks, msgs, strict=True)):
        try:
            out.append(sock.send(masked_binary_frame(msg, keys[4 * i:4 * i + 4])))
        except (BlockingIOError, InterruptedError):
            out.append(0)
        except OSError as e:
            out.append(-(e.errno or errno.EIO))
    return out
