"""``gamesync cluster --nodes 2`` starts redis-server and two nodes and stops them all on
Ctrl-C; ``gamesync bots`` pointed at the node that does not host the room follows the redirect."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from cluster_kit import run_cli

from gamesync.cluster.local import free_port


def test_gamesync_cluster_runs_redis_and_nodes_and_bots_find_the_room_through_either() -> None:
    ports = [free_port(), free_port()]
    proc = subprocess.Popen([sys.executable, "-m", "gamesync", "cluster", "--nodes", "2", "--port", str(ports[0]),
                             "--http-port", "-1", "--npcs", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        out = "".join(lines)
        urls = re.findall(r"node\d:\s+(ws://\S+)", out)
        redis_url = re.search(r"redis:\s+(redis://\S+)", out)
        assert len(urls) == 2 and redis_url, out
        first = run_cli("bots", urls[0], "--room", "cli", "--count", "3", "--duration", "1", "--warmup", "0", "--ramp", "0.2",
                        "--json", "--no-progress", timeout=30)
        second = run_cli("bots", urls[1], "--room", "cli", "--count", "3", "--duration", "1", "--warmup", "0", "--ramp", "0.2",
                         "--json", "--no-progress", timeout=30)
        for run in (first, second):  # a swarm that printed nothing says why on stderr
            assert run.stdout.strip(), (run.returncode, run.stderr[-3000:])
        r1, r2 = json.loads(first.stdout), json.loads(second.stdout)
        assert r1["all_connected"] and r1["redirects"] == 0, first.stderr
        assert r2["all_connected"] and r2["redirects"] == 3, second.stderr  # each bot sent to the room's host
        assert r2["states_per_client_s"] > 20
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        redis_port = int(redis_url.group(1).rsplit(":", 1)[1])
        import socket

        with socket.socket() as s:  # redis-server is gone too
            assert s.connect_ex(("127.0.0.1", redis_port)) != 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # it stops its nodes and redis-server
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
