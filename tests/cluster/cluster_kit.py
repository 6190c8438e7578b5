"""Helpers for the cluster tests: one real redis-server and real ``gamesync serve`` node
processes per test module, on 127.0.0.1 and free ports; everything is stopped (killed if it
must be) when the module is done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import coredis
import trio

from gamesync.cluster.local import Node, free_port, start_node, start_redis, stop, wait_port

#: node options that keep the tests short: small arena rooms, short seat grace and linger; and
#: rooms start where their first player joins, as these tests expect (tests/cluster/test_placement.py
#: runs nodes that place new rooms by load, the default)
NODE_ARGS = ["--npcs", "50", "--save-interval", "0.5", "--drain-timeout", "2", "--stats-interval", "3600",
             "--placement", "local"]


class LocalCluster:
    """A redis-server and named nodes; ``nodes[name]`` is a running node."""

    def __init__(self, names: list[str], launcher: list[str] | None = None, args: list[str] | None = None) -> None:
        self.launcher = launcher
        self.args = NODE_ARGS if args is None else args
        self.workdir = tempfile.mkdtemp(prefix="gamesync-test-cluster-")
        self.log = open(os.path.join(self.workdir, "nodes.log"), "wb")
        self.redis, self.redis_port = start_redis()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self.nodes: dict[str, Node] = {}
        try:
            for name in names:
                self.start(name)
        except BaseException:
            self.close()
            raise

    def start(self, name: str) -> Node:
        node = start_node(self.redis_url, name, http_port=free_port(), extra=self.args, log=self.log.fileno(),
                          workdir=self.workdir, launcher=self.launcher)
        wait_port(node.http_port or 0)
        self.nodes[name] = node
        return node

    def kill(self, name: str) -> None:
        """kill -9: no goodbye to Redis, no close frames."""
        node = self.nodes.pop(name)
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(5)

    def restart_redis(self, down_s: float) -> None:
        stop(self.redis, signal.SIGKILL)
        time.sleep(down_s)
        self.redis, _ = start_redis(self.redis_port)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGINT)
        for node in self.nodes.values():
            stop(node.proc, timeout=5)
        stop(self.redis, signal.SIGKILL)
        self.log.close()

    def logs(self) -> str:
        self.log.flush()
        with open(os.path.join(self.workdir, "nodes.log"), "rb") as f:
            return f.read().decode(errors="replace")

    @asynccontextmanager
    async def redis_client(self) -> AsyncIterator[Any]:
        async with coredis.Redis.from_url(self.redis_url, decode_responses=True, connect_timeout=2,
                                          stream_timeout=2) as r:
            yield r


async def http_json(node: Node, path: str) -> Any:
    """GET a node's HTTP endpoint (in a thread: urllib blocks)."""
    def get() -> Any:
        with urllib.request.urlopen(f"{node.http}{path}", timeout=3) as resp:
            return json.loads(resp.read())
    return await trio.to_thread.run_sync(get)


async def hosted(node: Node) -> set[str]:
    """Rooms the node itself reports running (its /stats)."""
    return {r["room"] for r in (await http_json(node, "/stats"))["rooms"]}


async def wait_until(cond: Any, timeout: float, what: str, every: float = 0.1) -> float:
    """Await ``cond()`` (async) until true; seconds it took; AssertionError after ``timeout``."""
    t0 = trio.current_time()
    with trio.move_on_after(timeout):
        while not await cond():
            await trio.sleep(every)
        return trio.current_time() - t0
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "gamesync", *args], capture_output=True, text=True, timeout=timeout)
