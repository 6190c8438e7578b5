"""The shared notes pad (demo/notes.html) in headless Chromium (Debian's package, driven by
Playwright) against a real `gamesync serve`: pages typing at the same place at once converge
on one text holding everything each typed; a late page gets the text; each page shows the
others' carets with their names; an edit the server refuses brings the page back to the
server's document. Screenshots go to tests/artifacts/notes-a.png and notes-b.png."""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from demo_kit import ARTIFACTS, ServerProcess
from playwright.sync_api import BrowserContext, Page

WAIT_S = 10.0


@pytest.fixture(scope="module")
def http_url(demo_server: ServerProcess) -> str:
    return demo_server.url


class Pad:
    """One notes page, and what went wrong in it."""

    def __init__(self, context: BrowserContext, url: str, room: str, name: str) -> None:
        self.page: Page = context.new_page()  # closed with the test's context
        self.page.set_viewport_size({"width": 1000, "height": 560})
        self.page.set_default_timeout(WAIT_S * 1000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" else None)
        q = urllib.parse.urlencode({"room": room, "name": name})
        self.page.goto(f"{url}/notes.html?{q}")
        self.page.wait_for_function("document.getElementById('sync').dataset.state === 'synchronized'")

    @property
    def text(self) -> str:
        return self.page.eval_on_selector("#pad", "t => t.value")

    def state(self) -> tuple[str, str, int]:
        return self.page.evaluate("() => [document.getElementById('pad').value, window.notesPad.client.state, "
                                  "window.notesPad.client.v]")

    def caret(self, start: int, end: int | None = None) -> None:
        self.page.evaluate("([s, e]) => { const t = document.getElementById('pad'); t.focus(); "
                           "t.setSelectionRange(s, e); }", [start, start if end is None else end])


def _until(what: str, cond: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _converged(*pads: Pad) -> str:
    """The one text all ``pads`` show once none has an edit pending."""
    states: list[Any] = []

    def same() -> bool:
        states[:] = [p.state() for p in pads]
        return all(list(s) == [states[0][0], "synchronized", states[0][2]] for s in states)

    try:
        _until("the pads to converge", same)
    except AssertionError:
        raise AssertionError(f"no convergence: {states}") from None
    return states[0][0]


def _in_order(sub: str, text: str) -> bool:
    """``sub``'s characters appear in ``text`` in order (others' may come in between)."""
    it = iter(text)
    return all(ch in it for ch in sub)


def test_two_pages_typing_at_the_same_place_converge_and_a_late_page_gets_the_text(http_url, context):
    room = f"pad-{os.getpid()}"
    bob = "b&ob <i>x</i>"  # a name to be shown as text, never as markup
    a, b = Pad(context, http_url, room, "ann"), Pad(context, http_url, room, bob)
    a.caret(0)
    a.page.keyboard.type("hello world")
    _until("b to get a's text", lambda: b.text == "hello world")

    # both type at the same place at once: keystrokes interleaved, then a paste-like insert each
    a.caret(5)
    b.caret(5)
    typed_a, typed_b = "ABC\nDEF", "uvw xyz"
    for ca, cb in zip(typed_a, typed_b, strict=True):
        a.page.keyboard.press("Enter") if ca == "\n" else a.page.keyboard.type(ca)
        b.page.keyboard.type(cb)
    a.page.keyboard.insert_text("«ünï🎉»")
    b.page.keyboard.insert_text("[日本]")
    text = _converged(a, b)
    assert text.startswith("hello") and text.endswith(" world")
    assert _in_order(typed_a + "«ünï🎉»", text) and _in_order(typed_b + "[日本]", text), text
    assert "«ünï🎉»" in text and "[日本]" in text  # each one input event: kept whole
    assert len(text) == len("hello world" + typed_a + typed_b + "«ünï🎉»" + "[日本]")

    # a late page gets the current text, and the others' names
    c = Pad(context, http_url, room, "cy")
    assert _converged(a, b, c) == text
    _until("c to list everyone", lambda: {"ann", bob, "cy (you)"} <= set(c.page.inner_text("#people").split("\n")))

    # bob selects "hello": ann sees his selection and his caret with his name, as text
    b.caret(0, 5)
    label = a.page.locator(".remote-caret .label", has_text="b&ob")
    label.wait_for()
    assert label.text_content() == bob
    assert a.page.locator(".cursor-overlay i").count() == 0
    _until("bob's selection on ann's page", lambda: a.page.locator(".remote-selection").count() > 0)
    assert a.page.locator(".remote-selection").first.text_content() == "hello"
    _until("ann's caret on bob's page", lambda: b.page.locator(".remote-caret .label", has_text="ann").count())

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    a.page.screenshot(path=str(ARTIFACTS / "notes-a.png"))
    b.page.screenshot(path=str(ARTIFACTS / "notes-b.png"))
    assert a.page.inner_text("#status") == "connected"
    assert not (a.errors or b.errors or c.errors), a.errors + b.errors + c.errors


def test_a_refused_edit_or_missed_versions_bring_the_page_back_to_the_servers_document(http_url, context):
    room = f"pad-bad-{os.getpid()}"
    a, b = Pad(context, http_url, room, "ann"), Pad(context, http_url, room, "bob")
    a.caret(0)
    a.page.keyboard.type("kept")
    assert _converged(a, b) == "kept"
    a.page.evaluate("() => { window.notesPad.client.v = 9999; }")  # the next edit claims a version not made yet
    a.page.keyboard.type("Z")
    a.page.locator("#notice", has_text="refused").wait_for()
    assert "bad document version" in a.page.inner_text("#notice")
    assert _converged(a, b) == "kept"
    a.caret(4)
    a.page.keyboard.type("!")  # and editing goes on
    assert _converged(a, b) == "kept!"
    # versions missed (as after a resumed seat): the page asks for the document again
    a.page.evaluate("() => { window.notesPad.client.v -= 1; }")
    b.caret(5)
    b.page.keyboard.type("?")
    assert _converged(a, b) == "kept!?"
    assert not (a.errors or b.errors), a.errors + b.errors


def test_remote_edits_wait_for_an_ime_composition_and_typing_while_offline_is_sent_after_the_reconnect(
        http_url, context):
    room = f"pad-ime-{os.getpid()}"
    a, b = Pad(context, http_url, room, "ann"), Pad(context, http_url, room, "bob")
    a.caret(0)
    a.page.keyboard.type("ab")
    assert _converged(a, b) == "ab"
    a.caret(1)
    ime = a.page.context.new_cdp_session(a.page)
    ime.send("Input.imeSetComposition", {"text": "に", "selectionStart": 1, "selectionEnd": 1})
    ime.send("Input.imeSetComposition", {"text": "にほ", "selectionStart": 2, "selectionEnd": 2})
    b.caret(2)
    b.page.keyboard.type("XY")
    _until("b's edit at the server", lambda: b.state()[:2] == ["abXY", "synchronized"])
    time.sleep(0.3)
    assert a.text == "aにほb"  # the composition is left alone...
    ime.send("Input.insertText", {"text": "日本"})
    assert _converged(a, b) == "a日本bXY"  # ...and b's edit goes in after it

    # a drops its connection (a close frame: the seat is given up) and types on meanwhile
    first_id = a.page.evaluate("window.notesPad.conn.clientId")
    a.page.evaluate("window.notesPad.conn.ws.close()")
    a.caret(len("a日本bXY"))
    a.page.keyboard.type("!")
    _until("a back", lambda: a.page.inner_text("#status") == "connected"
           and a.page.evaluate("window.notesPad.conn.clientId") != first_id)
    assert _converged(a, b) == "a日本bXY!"
    assert not (a.errors or b.errors), a.errors + b.errors


def _fill_document(ws_port: int, room: str, text: str) -> None:
    """Type ``text`` into the notes room from the Python client, 10,000 characters an edit."""
    import trio

    from gamesync.client.connection import open_client
    from gamesync.core.clientproto import GameEvent

    async def fill() -> None:
        with trio.fail_after(30):
            async with open_client(f"ws://127.0.0.1:{ws_port}/", room=room, name="filler", game="notes") as c:
                v, done = 0, 0
                for i in range(0, len(text), 10_000):
                    op = [text[i:i + 10_000]] if done == 0 else [done, text[i:i + 10_000]]
                    assert await c.send_reliable({"op": op, "v": v, "ref": i})
                    async for ev in c.events():
                        if isinstance(ev, GameEvent) and isinstance(ev.data, dict) and "op" in ev.data:
                            v = ev.data["op"]["v"]
                            break
                    done += len(text[i:i + 10_000])
    trio.run(fill)


def test_chromium_negotiates_permessage_deflate_and_gets_a_big_document_compressed(
        demo_server: ServerProcess, context: BrowserContext) -> None:
    import json
    import urllib.request
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()[:40_000]
    _fill_document(demo_server.ws_port, "bigdoc", text)

    def deflate() -> dict[str, int]:
        with urllib.request.urlopen(demo_server.url + "/stats", timeout=5) as r:
            return json.loads(r.read())["deflate"]

    before = deflate()
    pad = Pad(context, demo_server.url, "bigdoc", "cara")
    _until("the page to hold the document", lambda: pad.text == text)
    after = deflate()
    # the page's frame with the document went compressed: Chromium offered permessage-deflate
    assert after["frames"] > before["frames"]
    sent_in, sent_out = after["bytes_in"] - before["bytes_in"], after["bytes_out"] - before["bytes_out"]
    assert sent_in >= len(text) and sent_out < sent_in / 2, (sent_in, sent_out)
    assert pad.errors == []
