"""The arena demo page in headless Chromium (Debian's, driven by Playwright), against a real
`gamesync serve` process: two pages play in one room, chat with delivery states and typing
indicators, and both come back by themselves when the server restarts."""

from __future__ import annotations

import signal
import time
from typing import Any

from demo_kit import ARTIFACTS, ServerProcess, open_arena, walk_and_watch
from playwright.sync_api import Page

WAIT_MS = 15_000  # every wait for the page is bounded by this
MARGIN_PX = 12  # demo/js/render.js: CSS pixels kept clear around the world


def _status(page: Page) -> str:
    return page.get_attribute("#status", "data-status") or ""


def test_two_pages_move_see_each_other_and_predict_exactly(demo_server: ServerProcess, context: Any) -> None:
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=duo&name=ann", errors)
    b = open_arena(context, demo_server.url + "/?room=duo&name=bob", errors)
    for page in (a, b):
        page.wait_for_function("window.demo.players === 2", timeout=WAIT_MS)
        assert _status(page) == "connected"
    # put ann well inside the world: the rule clamps at the walls and she spawns at random
    cid = a.evaluate("window.demo.conn.clientId")
    x0 = b.evaluate(f"(b => b.playerOf({cid}))(window.demo)")["x"]
    key = "a" if x0 > 500 else "d"
    a.focus("#arena")
    a.keyboard.down(key)
    time.sleep(0.7)  # ~21 inputs at 30 Hz: 140 units
    a.keyboard.up(key)
    moved = (lambda x: x < x0 - 100) if key == "a" else (lambda x: x > x0 + 100)
    b.wait_for_function(f"(x => x {'<' if key == 'a' else '>'} {x0 - 100 if key == 'a' else x0 + 100})"
                        f"(window.demo.playerOf({cid}).x)", timeout=WAIT_MS)
    assert moved(b.evaluate(f"window.demo.playerOf({cid}).x"))
    # once the server has applied every input, ann's prediction sits exactly where the server
    # put her, and no prediction was ever off
    a.wait_for_function("window.demo.conn.unacked.length === 0", timeout=WAIT_MS)
    pred = a.evaluate("[window.demo.predictor.x, window.demo.predictor.y, window.demo.predictor.corrections]")
    srv = a.evaluate("window.demo.serverSelf()")
    assert pred[:2] == [srv["x"], srv["y"]] and pred[2] == 0
    # names over players: bob's page knows ann's entity and name
    assert b.evaluate(f"window.demo.names.get({cid})") == "ann"
    # the overlay shows live figures
    overlay = a.inner_text("#overlay")
    for row in ("RTT", "snapshots", "down", "up", "prediction error", "tick"):
        assert row in overlay
    ARTIFACTS.mkdir(exist_ok=True)
    a.screenshot(path=str(ARTIFACTS / "arena-a.png"))
    b.screenshot(path=str(ARTIFACTS / "arena-b.png"))
    assert not errors


def test_chat_typing_then_delivered_escaped_and_a_refused_line_retries(demo_server: ServerProcess, context: Any) -> None:
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=talk&name=ann", errors)
    b = open_arena(context, demo_server.url + "/?room=talk&name=bob", errors)
    b.wait_for_function("window.demo.players === 2", timeout=WAIT_MS)
    # remember, on bob's page, when ann's typing indicator showed and when her line arrived
    b.evaluate("""() => {
        window.seen = {};
        const t = document.querySelector('#chat .chat-typing'), log = document.querySelector('#chat .chat-log');
        new MutationObserver(() => { if (t.textContent.includes('ann is typing') && !window.seen.typing)
            window.seen.typing = performance.now(); }).observe(t, {childList: true, characterData: true, subtree: true});
        new MutationObserver(() => { if (log.textContent.includes('<b>hi</b> bob') && !window.seen.line)
            window.seen.line = performance.now(); }).observe(log, {childList: true, subtree: true});
    }""")
    a.click("#chat input")
    a.keyboard.type("<b>hi</b> bob", delay=30)
    b.wait_for_function("window.seen.typing !== undefined", timeout=WAIT_MS)
    a.keyboard.press("Enter")
    mine = a.locator("#chat .chat-log li.mine").last
    mine.locator("xpath=self::*[@data-state='delivered']").wait_for(timeout=WAIT_MS)
    b.wait_for_function("window.seen.line !== undefined", timeout=WAIT_MS)
    assert b.evaluate("window.seen.typing < window.seen.line")
    # shown as typed, not as HTML; the indicator is gone once the line is in
    assert b.locator("#chat .chat-log b", has_text="hi").count() == 0
    assert "ann: <b>hi</b> bob" in b.inner_text("#chat .chat-log")
    b.wait_for_function("document.querySelector('#chat .chat-typing').textContent === ''", timeout=WAIT_MS)
    # the server refuses lines over its rate (5 at once): the refused one shows failed with a
    # retry, which works once the rate allows it again
    for i in range(7):
        a.fill("#chat input", f"line {i}")
        a.press("#chat input", "Enter")
    failed = a.locator("#chat .chat-log li.mine[data-state='failed']")
    failed.first.wait_for(timeout=WAIT_MS)
    assert "too many messages" in failed.first.inner_text()
    time.sleep(1.2)  # two more lines' worth of rate
    n_failed = failed.count()
    failed.first.locator("button.retry").click()
    a.wait_for_function(f"document.querySelectorAll(\"#chat li.mine[data-state='failed']\").length === {n_failed - 1}",
                        timeout=WAIT_MS)
    # bob sees ann's join notice and, when she leaves, her leave notice
    a.close()
    b.wait_for_function("document.querySelector('#chat .chat-log').textContent.includes('ann left')", timeout=WAIT_MS)
    assert not errors


def test_both_pages_reconnect_by_themselves_after_a_server_restart_and_play_on(demo_server: ServerProcess,
                                                                              context: Any) -> None:
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=phoenix&name=ann", errors)
    b = open_arena(context, demo_server.url + "/?room=phoenix&name=bob", errors)
    old = a.evaluate("window.demo.conn.clientId"), b.evaluate("window.demo.conn.clientId")
    demo_server.stop()
    for page in (a, b):
        page.wait_for_function("document.querySelector('#status').dataset.status === 'reconnecting'",
                               timeout=WAIT_MS)
    demo_server.start()
    for page in (a, b):
        page.wait_for_function("document.querySelector('#status').dataset.status === 'connected' "
                               "&& window.demo.serverSelf() !== null && window.demo.players === 2", timeout=WAIT_MS)
    # a fresh server: fresh seats, and the game goes on (bob sees ann move)
    assert (a.evaluate("window.demo.conn.clientId"), b.evaluate("window.demo.conn.clientId")) != old
    # the chat says once that the connection was lost, however many attempts it took
    for page in (a, b):
        assert page.locator("#chat li.notice", has_text="connection lost").count() == 1
    walk_and_watch(a, b, wait_ms=WAIT_MS)
    assert not errors


def test_offline_after_the_retries_then_the_retry_button_brings_it_back(demo_server: ServerProcess, context: Any) -> None:
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=solo&name=ann&retries=2", errors)
    assert a.is_hidden("#retry")
    demo_server.stop()
    a.wait_for_function("document.querySelector('#status').dataset.status === 'offline'", timeout=WAIT_MS)
    assert a.is_visible("#retry")
    demo_server.start()
    a.click("#retry")
    a.wait_for_function("document.querySelector('#status').dataset.status === 'connected' "
                        "&& window.demo.serverSelf() !== null", timeout=WAIT_MS)
    assert a.is_hidden("#retry")
    assert not errors


def test_a_frozen_server_is_noticed_and_the_page_takes_its_seat_back_when_it_wakes(demo_server: ServerProcess,
                                                                                  context: Any) -> None:
    """SIGSTOP the server: no snapshots for longer than the page's heartbeat (5 s), so it
    reconnects, leaving the silent socket open (a close frame would give the seat up). On
    SIGCONT the new connection resumes: same client id, same entity, no `left` for anyone."""
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=frozen&name=ann", errors)
    cid, entity = a.evaluate("window.demo.conn.clientId"), a.evaluate("window.demo.me")
    assert demo_server.proc is not None
    demo_server.proc.send_signal(signal.SIGSTOP)
    try:
        a.wait_for_function("document.querySelector('#status').dataset.status === 'reconnecting'", timeout=WAIT_MS)
    finally:
        demo_server.proc.send_signal(signal.SIGCONT)
    a.wait_for_function("document.querySelector('#status').dataset.status === 'connected' "
                        "&& window.demo.conn.welcome.resumed === true", timeout=WAIT_MS)
    assert (a.evaluate("window.demo.conn.clientId"), a.evaluate("window.demo.me")) == (cid, entity)
    a.wait_for_function("window.demo.serverSelf() !== null", timeout=WAIT_MS)
    assert not errors


def test_the_pages_log_no_console_error_and_fetch_nothing_missing(demo_server: ServerProcess, browser: Any) -> None:
    """The arena page and the notes pad, loaded and played a little: no console error, no
    page error, no request answered 4xx/5xx (a favicon included)."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    problems: list[str] = []
    ctx.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    ctx.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        a = open_arena(ctx, demo_server.url + "/?room=quiet&name=ann", problems)
        a.focus("#arena")
        a.keyboard.down("d")
        a.wait_for_function("window.demo.conn.inputAck > 0", timeout=WAIT_MS)
        a.keyboard.up("d")
        notes = ctx.new_page()
        notes.on("pageerror", lambda e: problems.append(str(e)))
        notes.goto(demo_server.url + "/notes.html?room=quiet-notes&name=bob")
        notes.wait_for_function("document.getElementById('sync').dataset.state === 'synchronized'", timeout=WAIT_MS)
        for page in (a, notes):  # a favicon the page names, fetched
            assert page.evaluate("document.querySelector('link[rel=icon]').getAttribute('href')") == "favicon.svg"
        a.wait_for_timeout(500)  # the favicon and the lobby's first fetch are in
    finally:
        ctx.close()
    assert not problems, problems


def _fit(page: Page) -> dict[str, Any]:
    return page.evaluate("""() => {
        const c = document.getElementById('arena').getBoundingClientRect(), d = window.demo.drawn;
        return {canvas: [c.left, c.top, c.right, c.bottom], world: [d.left, d.top, d.side],
                window: [innerWidth, innerHeight],
                scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight]};
    }""")


def test_the_arena_fits_a_1200_by_800_window_and_scales_with_it(demo_server: ServerProcess, browser: Any) -> None:
    """The canvas lies inside the window (nothing scrolls), the world's square lies inside the
    canvas with room for its border and a player at a wall, and it is as large as the canvas
    allows; resizing the window resizes both."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        page = open_arena(ctx, demo_server.url + "/?room=fit&name=ann", [])
        sides = []
        for w, h in [(1200, 800), (900, 600), (1600, 1000), (1200, 800)]:
            page.set_viewport_size({"width": w, "height": h})
            page.wait_for_function(f"innerWidth === {w} && window.demo.drawn && "
                                   f"Math.abs(document.getElementById('arena').getBoundingClientRect().bottom - {h}) < 1"
                                   " && window.demo.drawn.top + window.demo.drawn.side "
                                   "<= document.getElementById('arena').clientHeight", timeout=WAIT_MS)
            page.wait_for_timeout(100)  # a frame or two at the new size
            fit = _fit(page)
            left, top, right, bottom = fit["canvas"]
            wl, wt, side = fit["world"]
            assert fit["scroll"] == [w, h], fit  # no scroll bars
            assert 0 <= left and 0 <= top and right <= w and bottom <= h, fit
            cw, ch = right - left, bottom - top
            assert wl >= MARGIN_PX - 1 and wt >= MARGIN_PX - 1, fit
            assert wl + side <= cw - MARGIN_PX + 1 and wt + side <= ch - MARGIN_PX + 1, fit
            assert side >= min(cw, ch) - 2 * MARGIN_PX - 1, fit  # as large as fits
            sides.append(side)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "arena-1200x800.png"))
    finally:
        ctx.close()
    assert sides[1] < sides[0] < sides[2] and abs(sides[3] - sides[0]) < 1, sides


def test_a_page_that_joins_later_shows_the_chat_history_once(demo_server: ServerProcess, context: Any) -> None:
    errors: list[str] = []
    a = open_arena(context, demo_server.url + "/?room=backlog&name=ann", errors)
    for text in ("first <i>line</i>", "second line"):
        a.fill("#chat input", text)
        a.press("#chat input", "Enter")
        a.locator("#chat .chat-log li.mine", has_text=text).locator(
            "xpath=self::*[@data-state='delivered']").wait_for(timeout=WAIT_MS)
    b = open_arena(context, demo_server.url + "/?room=backlog&name=bob", errors)
    past = b.locator("#chat .chat-log li.past")
    past.nth(1).wait_for(timeout=WAIT_MS)
    assert [t.replace("\u00a0", " ") for t in past.all_inner_texts()] == [
        "ann: first <i>line</i>", "ann: second line"]
    assert b.locator("#chat .chat-log i").count() == 0  # shown as typed, not as HTML
    a.fill("#chat input", "third")
    a.press("#chat input", "Enter")
    b.wait_for_function("document.querySelector('#chat .chat-log').textContent.includes('third')", timeout=WAIT_MS)
    assert b.inner_text("#chat .chat-log").count("second line") == 1
    assert errors == []
