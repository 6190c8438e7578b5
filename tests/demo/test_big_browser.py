"""The big-world demo page (demo/big.html, game `bigworld`: a view room) in headless Chromium
against a real server with 10,000 NPCs on a 3162-unit square (tests/demo/big_server.py puts
the test's two players 1760 units apart). Far apart, neither page holds the other player or
anything near it; walking towards each other, they come into each other's view. Throughout,
no page ever holds an entity farther than 2R from its own player (a leak check in the
browser, over every snapshot it decoded), and the other player's private `ack` is 0 in it."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from big_server import PLACES
from demo_kit import ARTIFACTS, ServerProcess, npm_ci_once
from playwright.sync_api import Page

WAIT_MS = 15_000  # every wait for a page is bounded by this
R = 500.0  # bigworld's view radius
CELL = 250.0


@pytest.fixture(scope="module")
def big_server() -> Iterator[ServerProcess]:
    npm_ci_once()
    s = ServerProcess("--game", "bigworld", "--npcs", "10000", "--stats-interval", "3600",
                      launcher=[sys.executable, str(Path(__file__).with_name("big_server.py"))])
    s.start()
    try:
        yield s
    finally:
        s.stop()


def open_big(context: Any, url: str, errors: list[str]) -> Page:
    """A page on the big world, once the server has placed its player and sent its surroundings."""
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.demo && window.demo.serverSelf() !== null && window.demo.entities().length > 100",
                           timeout=WAIT_MS)
    return page


def near(entities: list[list[float]], x: float, y: float, r: float) -> list[list[float]]:
    return [e for e in entities if math.hypot(e[1] - x, e[2] - y) <= r]


def test_far_pages_see_nothing_of_each_other_then_walk_into_view_and_nothing_leaks(big_server: ServerProcess,
                                                                                   context: Any) -> None:
    start = time.monotonic()
    errors: list[str] = []  # page errors, console errors, requests answered 4xx/5xx
    context.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    context.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    a = open_big(context, big_server.url + "/big.html?room=big&name=ann", errors)
    b = open_big(context, big_server.url + "/big.html?room=big&name=bob", errors)
    ca, cb = a.evaluate("window.demo.conn.clientId"), b.evaluate("window.demo.conn.clientId")
    grid = a.evaluate("window.demo.grid")
    assert (grid["radius"], grid["cell"], grid["cols"]) == (R, CELL, 13)
    for page, name in ((a, "ann"), (b, "bob")):
        self_ = page.evaluate("window.demo.serverSelf()")
        assert math.hypot(self_["x"] - PLACES[name][0], self_["y"] - PLACES[name][1]) < 20
    # far apart: neither holds the other player, nor any entity near the other's player, while
    # each holds hundreds around itself (the grid cells within R of it)
    for page, other, mine, theirs in ((a, cb, "ann", "bob"), (b, ca, "bob", "ann")):
        assert page.evaluate(f"window.demo.playerOf({other})") is None
        ents = page.evaluate("window.demo.entities()")
        assert len(near(ents, *PLACES[mine], R)) > 300, mine
        assert near(ents, *PLACES[theirs], R) == [], f"{mine} holds entities near {theirs}"
        cells = page.evaluate("window.demo.cells()")
        assert 10 < len([c for c in cells if c < grid["count"]]) < 30  # the cells around, not the world's 169
    # walk towards each other until each sees the other
    a.keyboard.down("d")
    b.keyboard.down("a")
    try:
        a.wait_for_function(f"window.demo.playerOf({cb}) !== null", timeout=WAIT_MS)
        b.wait_for_function(f"window.demo.playerOf({ca}) !== null", timeout=WAIT_MS)
    finally:
        a.keyboard.up("d")
        b.keyboard.up("a")
    pa, pb = a.evaluate("window.demo.serverSelf()"), b.evaluate("window.demo.serverSelf()")
    gap = math.hypot(pa["x"] - pb["x"], pa["y"] - pb["y"])
    assert gap <= R + CELL * math.sqrt(2) + CELL / 4, gap  # seen no farther than the view reaches (and keeps)
    assert a.evaluate(f"window.demo.playerOf({cb}).x") == pytest.approx(pb["x"], abs=40)
    # a player's ack is private in bigworld: each page holds its own, and 0 for the other's
    for page, other in ((a, cb), (b, ca)):
        assert page.evaluate("window.demo.serverSelf().ack") > 0
        assert page.evaluate(f"window.demo.conn.mirror.entity(window.demo.playerOf({other}).id).q.ack") == 0
    # the leak check of every snapshot each page decoded: nothing beyond 2R, ever (and the
    # cells do reach beyond R, so the check is not empty)
    for page in (a, b):
        farthest = page.evaluate("window.demo.farthest")
        assert R < farthest <= 2 * R, farthest
    overlay = a.inner_text("#overlay")
    for row in ("in view", "cells", "farthest", "down", "snapshots"):
        assert row in overlay
    ARTIFACTS.mkdir(exist_ok=True)
    a.screenshot(path=str(ARTIFACTS / "big-a.png"))
    b.screenshot(path=str(ARTIFACTS / "big-b.png"))
    assert not errors, errors
    assert time.monotonic() - start < 30
