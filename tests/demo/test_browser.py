"""The demo's JS client in headless Chromium (Debian's package, driven by Playwright), served
by `gamesync serve`'s HTTP side: every shared test vector decodes in the browser, with its
own DecompressionStream, to exactly what the Python client got."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_url():
    if not (ROOT / "demo" / "node_modules" / "@msgpack").exists():  # the page imports it from there
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT / "demo", check=True,
                       timeout=300, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gamesync", "serve", "--port", "0", "--http-port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gamesync serve did not come up") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_every_vector_decodes_in_chromium_exactly_as_in_python(http_url):
    vectors = json.loads((ROOT / "tests" / "vectors" / "snapshots.json").read_text())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(http_url + "/test/browser.html")
            page.wait_for_function("window.ready === true", timeout=10_000)
            got = page.evaluate("(seqs) => window.decodeSequences(seqs)", vectors["sequences"])
        finally:
            browser.close()
    assert not errors
    snapshots = desyncs = 0
    for seq, out in zip(vectors["sequences"], got, strict=True):
        for i, (step, res) in enumerate(zip(seq["steps"], out["steps"], strict=True)):
            e, where = step["expect"], f"{seq['name']} step {i}"
            if e.get("welcome") or e.get("error"):
                continue
            if e.get("desync"):
                assert res == {"desync": True}, where
                desyncs += 1
                continue
            assert res["decompression"] == "function", "the browser's own DecompressionStream"
            assert res["state"] == e["state"], where
            assert res["ack_bits"] == e["ack_bits"] and res["held"] == e["held"], where
            snapshots += 1
    assert snapshots >= 100 and desyncs >= 10
