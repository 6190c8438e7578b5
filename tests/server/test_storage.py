"""Kept data of a server on its own (gamesync.server.storage): an SQLite file that outlives
the process, or memory that outlives rooms; and a room's game getting back what the last
room of its name kept, over a real server."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from gamesync.client.connection import Client, open_client
from gamesync.cluster.local import free_port, stop, wait_port
from gamesync.core.clientproto import GameEvent
from gamesync.server import storage
from gamesync.server.storage import MemoryKept, SqliteKept
from gs_testkit import running_server, wait_for


async def test_sqlite_kept_data_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    kept = SqliteKept(str(tmp_path))
    kept.offer("notes", b"one")
    kept.offer("notes", b"two")  # latest only
    assert await kept.load("notes") == b"two"  # pending: read back before it is written
    kept.close()
    again = SqliteKept(str(tmp_path))
    assert await again.load("notes") == b"two"
    assert await again.load("other") is None
    again.close()


async def test_sqlite_kept_data_is_written_as_the_server_runs(tmp_path: Path) -> None:
    kept = SqliteKept(str(tmp_path))
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            await n.start(kept.run)
            kept.offer("r", b"x")
            await wait_for(lambda: kept.writes == 1, 3, "the write")
            n.cancel_scope.cancel()
    db = sqlite3.connect(tmp_path / storage.FILE_NAME)
    assert db.execute("SELECT data FROM kept WHERE room = 'r'").fetchone()[0] == b"x"
    db.close()
    kept.close()


async def test_rooms_not_written_for_kept_days_are_forgotten(tmp_path: Path) -> None:
    SqliteKept(str(tmp_path)).close()
    db = sqlite3.connect(tmp_path / storage.FILE_NAME)
    old = time.time() - (storage.KEPT_DAYS + 1) * 86400
    db.executemany("INSERT INTO kept VALUES (?, ?, ?)", [("old", b"o", old), ("new", b"n", time.time())])
    db.commit()
    db.close()
    kept = SqliteKept(str(tmp_path))
    assert await kept.load("old") is None and await kept.load("new") == b"n"
    kept.close()


async def test_memory_kept_data_is_bounded() -> None:
    kept = MemoryKept()
    for i in range(storage.MEMORY_ROOMS + 5):
        kept.offer(f"r{i}", b"x")
    assert len(kept.rooms) == storage.MEMORY_ROOMS
    assert await kept.load("r0") is None and await kept.load(f"r{storage.MEMORY_ROOMS + 4}") == b"x"


async def _events_until(c: Client, key: str, timeout: float = 5.0) -> dict[str, Any]:
    """The first game event holding ``key``."""
    with trio.fail_after(timeout):
        async for ev in c.events():
            if isinstance(ev, GameEvent) and isinstance(ev.data, dict) and key in ev.data:
                return ev.data
    raise AssertionError(f"no {key} event")


async def _say(c: Client, text: str) -> dict[str, Any]:
    assert await c.send_reliable({"chat": text, "ref": 1})
    while True:
        line = (await _events_until(c, "chat"))["chat"]
        if line["text"] == text:
            return line


async def test_a_joining_client_gets_the_chat_history_and_an_empty_room_s_successor_keeps_it(
        tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_server(save_interval_s=0.2, data_dir=str(tmp_path)) as (server, url):
            async with open_client(url, room="talk", name="ann", game="notes") as ann:
                assert (await _events_until(ann, "doc"))["doc"] == {"text": "", "v": 0}
                first = await _say(ann, "hello")
                await _say(ann, "anyone?")
                async with open_client(url, room="talk", name="bob", game="notes") as bob:
                    hist = (await _events_until(bob, "chat_history"))["chat_history"]
                    assert [(h["name"], h["text"]) for h in hist] == [("ann", "hello"), ("ann", "anyone?")]
                    assert hist[0]["id"] == first["id"]
                assert await ann.send_reliable({"op": ["kept text"], "v": 0, "ref": 2})
                await _events_until(ann, "op")
            # everyone gone: the room closes after its linger (1 s here) and a new one starts
            await wait_for(lambda: "talk" not in server.rooms, 5, "the empty room to close")
            async with open_client(url, room="talk", name="cy", game="notes") as cy:
                assert (await _events_until(cy, "doc"))["doc"] == {"text": "kept text", "v": 1}
                hist = (await _events_until(cy, "chat_history"))["chat_history"]
                assert [h["text"] for h in hist] == ["hello", "anyone?"]
                assert (await _say(cy, "back"))["id"] == first["id"] + 2  # ids go on, never restart


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "gamesync", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--http-port", "-1", "--data-dir", str(data_dir), "--save-interval", "0.3",
                             "--stats-interval", "3600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 15)
    return proc


async def _edit_and_say(url: str, text: str, line: str) -> None:
    async with open_client(url, room="pad", name="ann", game="notes") as ann:
        doc = (await _events_until(ann, "doc"))["doc"]
        assert await ann.send_reliable({"op": [len(doc["text"]), text] if doc["text"] else [text],
                                        "v": doc["v"], "ref": 1})
        await _events_until(ann, "op")
        await _say(ann, line)


async def _read_back(url: str) -> tuple[str, list[str]]:
    async with open_client(url, room="pad", name="bob", game="notes") as bob:
        doc = (await _events_until(bob, "doc"))["doc"]
        hist = (await _events_until(bob, "chat_history"))["chat_history"]
        return doc["text"], [h["text"] for h in hist]


async def test_the_document_and_the_last_chat_lines_survive_a_restart_and_a_kill_9(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/"
    proc = _serve(tmp_path, port)
    try:
        with trio.fail_after(60):
            await _edit_and_say(url, "first", "one")
            stop(proc, signal.SIGTERM)  # a restart: the rooms' last state is written as they stop
            proc = _serve(tmp_path, port)
            assert await _read_back(url) == ("first", ["one"])
            await _edit_and_say(url, " second", "two")
            await trio.sleep(1.5)  # kept data is taken every 0.3 s and written within 0.5 s
            proc.kill()
            proc.wait(5)
            proc = _serve(tmp_path, port)
            assert await _read_back(url) == ("first second", ["one", "two"])
    finally:
        stop(proc, signal.SIGKILL)
