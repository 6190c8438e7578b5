"""What the browser tests share (their fixtures are in conftest.py): a real `gamesync serve`
process serving the demo, on fixed ports so that a test can stop and start it in place, and
where Debian's Chromium is (Playwright launches it with `executable_path`: it cannot
download a browser here)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gamesync.cluster.local import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots (git-ignored; regenerated every run)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def npm_ci_once() -> None:
    """The pages import @msgpack/msgpack from demo/node_modules."""
    if not (ROOT / "demo" / "node_modules" / "@msgpack").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT / "demo", check=True,
                       timeout=300, capture_output=True)


class ServerProcess:
    """`gamesync serve` on 127.0.0.1 with its HTTP side; anonymous joins (loopback, no secret).
    ``launcher``: the command before ``serve`` (default ``python -m gamesync``), e.g. a script
    that registers its own games first."""

    def __init__(self, *args: str, launcher: list[str] | None = None) -> None:
        self.ws_port, self.http_port = free_port(), free_port()
        self.args = args
        self.launcher = launcher or [sys.executable, "-m", "gamesync"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "GAMESYNC_SECRET"}
        if self.data_dir is None:  # its own, kept across a stop and start in place (a restart)
            self.data_dir = tempfile.mkdtemp(prefix="gamesync-demo-data-")
        self.proc = subprocess.Popen([*self.launcher, "serve", "--host", "127.0.0.1", "--data-dir", self.data_dir,
                                      "--port", str(self.ws_port), "--http-port", str(self.http_port), *self.args],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("gamesync serve did not come up") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM: every client gets 1001 "going away"; killed if it takes over 10 s."""
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM, timeout=10)


# ---- the arena page (demo/index.html; its state is window.demo) ------------------------------

def open_arena(context: Any, url: str, errors: list[str], wait_ms: int = 15_000) -> Any:
    """A page on the arena at `url`, once the server has placed its player; page errors go to `errors`."""
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.demo && window.demo.serverSelf() !== null", timeout=wait_ms)
    return page


def walk_and_watch(mover: Any, watcher: Any, seconds: float = 0.5, wait_ms: int = 15_000) -> None:
    """Hold a key on `mover` (towards the middle: the world clamps at its walls) and wait
    until `watcher` sees that player more than 50 units further on."""
    cid = mover.evaluate("window.demo.conn.clientId")
    x0 = watcher.evaluate(f"window.demo.playerOf({cid}).x")
    key, sign = ("a", -1) if x0 > 500 else ("d", 1)
    mover.focus("#arena")
    mover.keyboard.down(key)
    time.sleep(seconds)
    mover.keyboard.up(key)
    watcher.wait_for_function(f"{sign} * (window.demo.playerOf({cid}).x - {x0}) > 50", timeout=wait_ms)
