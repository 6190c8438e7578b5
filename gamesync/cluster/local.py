"""A whole cluster on one machine: a redis-server and N ``gamesync serve`` nodes on 127.0.0.1.

``gamesync cluster --nodes 2`` runs it until Ctrl-C; the tests and ``bench/scale.py`` use the
same pieces (``start_redis``, ``start_node``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (Linux), so that a
    killed ``gamesync cluster`` or test run leaves no redis-server or node behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)


def start_redis(port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway redis-server on 127.0.0.1 (no persistence); (process, port) once it listens."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    try:
        wait_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc, port


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    node_id: str
    port: int
    http_port: int | None
    stats_file: str

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http(self) -> str | None:
        return f"http://127.0.0.1:{self.http_port}" if self.http_port else None


def start_node(redis_url: str, node_id: str, port: int = 0, http_port: int | None = None, *,
               extra: list[str] | None = None, log: int | None = None, workdir: str | None = None,
               launcher: list[str] | None = None) -> Node:
    """A ``gamesync serve`` process in the cluster; returns once it listens. ``launcher``: the
    command before ``serve`` (default ``python -m gamesync``), e.g. a script adding games."""
    port = port or free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="gamesync-node-")
    stats = os.path.join(workdir, f"{node_id}.stats.json")
    cmd = [*(launcher or [sys.executable, "-m", "gamesync"]), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--http-port", str(http_port if http_port is not None else -1), "--redis", redis_url,
           "--node-id", node_id, "--stats-file", stats, *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=log if log is not None else subprocess.DEVNULL,
                            stderr=log if log is not None else subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        wait_port(port, 15.0)
    except TimeoutError:
        proc.kill()
        raise
    return Node(proc, node_id, port, http_port, stats)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 5.0) -> None:
    """Signal ``proc`` and wait for it; kill it if it takes longer than ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_local_cluster(args: argparse.Namespace) -> int:
    # Ctrl-C, or SIGTERM, or SIGINT even when started in the background (where a shell
    # ignores it): stop everything
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    redis, rport = start_redis(args.redis_port)
    redis_url = f"redis://127.0.0.1:{rport}"
    nodes: list[Node] = []
    workdir = tempfile.mkdtemp(prefix="gamesync-cluster-")
    try:
        for i in range(args.nodes):
            nodes.append(start_node(redis_url, f"node{i + 1}", args.port + i,
                                    args.http_port + i if args.http_port >= 0 else None,
                                    extra=["--npcs", str(args.npcs)], log=None if not args.verbose else 2,
                                    workdir=workdir))
        print(f"redis:   {redis_url}")
        for n in nodes:
            print(f"{n.node_id}:   {n.url}" + (f"   (HTTP {n.http}/ : /rooms /presence /nodes)" if n.http else ""))
        print(f"try:     gamesync bots {nodes[0].url} --room demo --count 5   (any node: the room is found)")
        print(f"         gamesync publish --redis {redis_url} --room demo '{{\"hello\": 1}}'")
        pages = [f"{n.http}/?room=demo" for n in nodes if n.http]
        if pages:
            print(f"browser: {'  or  '.join(pages)}   (same room, whichever node serves the page)")
        print("Ctrl-C stops everything.", flush=True)
        while all(n.proc.poll() is None for n in nodes):
            time.sleep(0.5)
        print("a node exited; stopping the cluster", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGINT)
        for n in nodes:
            stop(n.proc)
        stop(redis, signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)
