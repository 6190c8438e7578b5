"""The arena page in a cluster: a real redis-server and two `gamesync serve` nodes, in headless
Chromium. A page that loads from the node not hosting its room follows the redirect to the
host by itself; when the host is killed (-9), both pages reconnect through the surviving
node, which has taken the room over, and play on."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from demo_kit import npm_ci_once, open_arena, walk_and_watch

from gamesync.cluster.local import Node, free_port, start_node, start_redis, stop

WAIT_MS = 20_000  # failover takes up to 5 s, plus the page's backoff


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Node]]:
    npm_ci_once()
    redis, port = start_redis()
    nodes: dict[str, Node] = {}
    try:
        for name in ("a", "b"):
            nodes[name] = start_node(f"redis://127.0.0.1:{port}", name, http_port=free_port(),
                                     extra=["--npcs", "100", "--save-interval", "0.5", "--stats-interval", "3600"])
        yield nodes
    finally:
        for n in nodes.values():
            stop(n.proc, timeout=5)
        stop(redis, signal.SIGKILL)


def test_pages_follow_the_redirect_to_the_host_and_move_with_the_room_when_it_dies(cluster: dict[str, Node],
                                                                                 context: Any) -> None:
    a_node, b_node = cluster["a"], cluster["b"]
    errors: list[str] = []
    # the first join creates the room on node a; a page loaded from node b is sent there
    pa = open_arena(context, f"{a_node.http}/?room=roaming&name=ann", errors, WAIT_MS)
    pb = open_arena(context, f"{b_node.http}/?room=roaming&name=bob", errors, WAIT_MS)
    for p in (pa, pb):
        p.wait_for_function("window.demo.players === 2", timeout=WAIT_MS)
    assert pb.evaluate("window.demo.conn.urls") == [b_node.url, a_node.url]  # /api/server lists both nodes
    assert pb.evaluate("window.demo.conn.hostUrl").startswith(f"ws://127.0.0.1:{a_node.port}/")
    assert pa.evaluate("window.demo.conn.hostUrl") == a_node.url
    # the host dies without a word; node b claims the room (from its last save) and both
    # pages find it there by themselves
    a_node.proc.send_signal(signal.SIGKILL)
    a_node.proc.wait(5)
    for p in (pa, pb):
        p.wait_for_function("document.querySelector('#status').dataset.status === 'reconnecting'", timeout=WAIT_MS)
    for p in (pa, pb):
        p.wait_for_function(f"document.querySelector('#status').dataset.status === 'connected' "
                            f"&& window.demo.conn.hostUrl.startsWith('ws://127.0.0.1:{b_node.port}/') "
                            f"&& window.demo.serverSelf() !== null && window.demo.players === 2", timeout=WAIT_MS)
    # and play on: bob sees ann move
    walk_and_watch(pa, pb, wait_ms=WAIT_MS)
    assert not errors
