"""``gamesync serve`` as a real process: on SIGINT (Ctrl-C) and on SIGTERM (outside a cluster)
it closes every joined client with 1001 "server shutting down" and exits with status 0
within 2 s of the signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from gamesync.core import protocol as p
from gs_testkit import HOST, Closed, raw_client

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 20.0  # a cold interpreter importing gamesync on a busy 2-core machine
EXIT_S = 2.0


@asynccontextmanager
async def serve_process(tmp_path: Path) -> AsyncIterator[tuple[subprocess.Popen, str, Path]]:
    """``python -m gamesync serve`` on 127.0.0.1 port 0 (no HTTP); yields (process, ws url,
    its log); killed on exit if still running."""
    port_file, log_path = tmp_path / "port", tmp_path / "server.log"
    cmd = [sys.executable, "-m", "gamesync", "serve", "--host", HOST, "--port", "0", "--http-port", "-1",
           "--port-file", str(port_file), "--npcs", "50"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        with trio.fail_after(STARTUP_S):
            # written once listening, after the signal handlers are in place
            while not (port_file.exists() and port_file.read_text().endswith("\n")):
                assert proc.poll() is None, f"server exited with {proc.returncode}: {log_path.read_text()}"
                await trio.sleep(0.02)
        yield proc, f"ws://{HOST}:{int(port_file.read_text())}/", log_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_closes_every_client_with_going_away_and_exits_0_within_2s(sig, tmp_path):
    closes: dict[str, tuple[float, Closed]] = {}
    async with serve_process(tmp_path) as (proc, url, log_path):
        with trio.fail_after(STARTUP_S + 10):

            async def joined(name: str, room: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
                async with raw_client(url) as c:
                    await c.join(room=room, name=name)
                    await c.snapshot()
                    task_status.started()
                    closed = await c.closed(timeout=EXIT_S + 3)
                    closes[name] = (trio.current_time() - t_sig, closed)

            t_sig = 0.0
            async with trio.open_nursery() as n:
                await n.start(joined, "ann", "a")
                await n.start(joined, "bob", "b")
                t_sig = trio.current_time()
                proc.send_signal(sig)
                with trio.move_on_after(EXIT_S + 3):
                    while proc.poll() is None:
                        await trio.sleep(0.01)
                exited = trio.current_time() - t_sig
        rc = proc.poll()
        log = log_path.read_text(errors="replace")
    assert rc == 0, f"exit status {rc} ({exited:.2f} s after {sig.name}); log:\n{log}"
    assert exited < EXIT_S, f"exited {exited:.2f} s after {sig.name}"
    assert f"signal {sig.name}: shutting down" in log
    assert sorted(closes) == ["ann", "bob"]
    for name, (took, closed) in closes.items():
        assert closed.code == 1001, f"{name} closed with {closed.code} {closed.reason!r}"
        assert closed.reason == "server shutting down"
        assert closed.error == p.ServerError("going_away", "server shutting down")
        assert took < EXIT_S, f"{name} closed {took:.2f} s after {sig.name}"
