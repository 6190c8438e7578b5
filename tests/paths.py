"""The wire path a block of a test runs on (tests import it: tests/ is on the path through its
conftest.py): ``with on_path(True): ...`` makes what ``gamesync.native`` hands out in the
block native (where the extension is built), ``on_path(False)`` pure Python, and puts back
the path that was in use afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gamesync import native


@contextmanager
def on_path(native_path: bool) -> Iterator[None]:
    was = native.use_native(native_path)
    try:
        yield
    finally:
        native.use_native(was)
