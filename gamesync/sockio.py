"""Awaiting reads and writes on a non-blocking stdlib socket, for trio code off the hot path.

The hot paths read and write sockets without awaiting (see gamesync/server/room.py and
gamesync/client/swarm.py); handshakes, joins and closes use these two helpers.
"""

from __future__ import annotations

import socket

import trio


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
