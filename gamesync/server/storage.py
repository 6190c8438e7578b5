"""Kept data of a server on its own: what games keep past their rooms (``Game.keep_state``:
a chat's last lines, a notes document), by room name.

``SqliteKept`` keeps it in one SQLite file under the server's ``data_dir`` (stdlib sqlite3,
written from a worker thread, never from a tick), so it survives restarts; ``MemoryKept``
(no ``data_dir``) keeps it for the life of the process only. Both take offers without
blocking (latest only per room), write them every ``FLUSH_S`` and on ``close()``, and forget
rooms not written for ``KEPT_DAYS``. A cluster keeps the same data in Redis instead
(gamesync.cluster.saves).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import trio

logger = logging.getLogger(__name__)

#: pending offers written this often (seconds)
FLUSH_S = 0.5
#: a room's kept data is forgotten this long after it was last written
KEPT_DAYS = 30
#: rooms ``MemoryKept`` holds at most (least recently written dropped first)
MEMORY_ROOMS = 1024
#: the file under ``data_dir``
FILE_NAME = "kept.sqlite3"


class MemoryKept:
    """Kept data in this process's memory (no ``data_dir``): outlives rooms, not the process."""

    def __init__(self) -> None:
        self.rooms: OrderedDict[str, bytes] = OrderedDict()

    def offer(self, room: str, blob: bytes) -> None:
        self.rooms[room] = blob
        self.rooms.move_to_end(room)
        while len(self.rooms) > MEMORY_ROOMS:
            self.rooms.popitem(last=False)

    async def load(self, room: str) -> bytes | None:
        return self.rooms.get(room)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    def close(self) -> None:
        pass


class SqliteKept:
    """Kept data in ``{data_dir}/kept.sqlite3``; ``run`` writes what rooms offer."""

    def __init__(self, data_dir: str) -> None:
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / FILE_NAME
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()  # one statement at a time: the worker thread and close()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kept (room TEXT PRIMARY KEY, data BLOB NOT NULL, "
                             "written REAL NOT NULL)")
            gone = self._db.execute("DELETE FROM kept WHERE written < ?", (time.time() - KEPT_DAYS * 86400,))
        if gone.rowcount:
            logger.info("kept data: %d rooms not written for %d days forgotten", gone.rowcount, KEPT_DAYS)
        self.pending: dict[str, bytes] = {}
        self.writes = 0

    def offer(self, room: str, blob: bytes) -> None:
        self.pending[room] = blob  # latest only

    async def load(self, room: str) -> bytes | None:
        blob = self.pending.get(room)
        if blob is not None:
            return blob
        return await trio.to_thread.run_sync(self._read, room)

    def _read(self, room: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM kept WHERE room = ?", (room,)).fetchone()
        return bytes(row[0]) if row is not None else None

    def _write(self, batch: dict[str, bytes]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO kept (room, data, written) VALUES (?, ?, ?) ON CONFLICT(room) "
                                 "DO UPDATE SET data = excluded.data, written = excluded.written",
                                 [(room, blob, now) for room, blob in batch.items()])
            self._db.execute("COMMIT")
        self.writes += len(batch)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Write pending offers every FLUSH_S until cancelled (``close`` writes the rest)."""
        logger.info("kept data (chat history, documents) in %s", self.path)
        task_status.started()
        while True:
            await trio.sleep(FLUSH_S)
            if self.pending:
                batch, self.pending = self.pending, {}
                try:
                    await trio.to_thread.run_sync(self._write, batch)
                except sqlite3.Error:
                    logger.exception("kept data: writing %d rooms to %s failed", len(batch), self.path)
                    self.pending = {**batch, **self.pending}

    def close(self) -> None:
        """Write what is pending (the rooms have stopped) and close the file."""
        try:
            if self.pending:
                batch, self.pending = self.pending, {}
                self._write(batch)
        except sqlite3.Error:
            logger.exception("kept data: the last write to %s failed", self.path)
        finally:
            with self._lock:
                self._db.close()
