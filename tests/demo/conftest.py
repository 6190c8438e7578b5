"""Fixtures of the browser tests: one demo server and one Chromium per test module, and a
fresh browser context per test (closing it closes every page the test opened)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from demo_kit import CHROMIUM, ServerProcess, npm_ci_once
from playwright.sync_api import Browser, BrowserContext, sync_playwright


@pytest.fixture(scope="module")
def demo_server() -> Iterator[ServerProcess]:
    """One server per test module (200 NPCs per arena room, to keep the pages light)."""
    npm_ci_once()
    s = ServerProcess("--npcs", "200")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 720})
    try:
        yield ctx
    finally:
        ctx.close()
