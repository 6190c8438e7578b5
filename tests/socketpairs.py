"""Connected non-blocking socket pairs for the tests of batched reads and writes (tests/core and
tests/client import it: tests/ is on the path through its conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def socket_pairs(n: int) -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """``n`` connected non-blocking socket pairs, closed afterwards."""
    made = [socket.socketpair() for _ in range(n)]
    for a, b in made:
        a.setblocking(False)
        b.setblocking(False)
    try:
        yield made
    finally:
        for a, b in made:
            a.close()
            b.close()
