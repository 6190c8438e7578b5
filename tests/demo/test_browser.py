"""The demo's JS client in headless Chromium (Debian's package, driven by Playwright), served
by `gamesync serve`'s HTTP side: every shared test vector decodes in the browser, with its
own DecompressionStream, to exactly what the Python client got."""

from __future__ import annotations

import json
from typing import Any

from demo_kit import ROOT, ServerProcess


def test_every_vector_decodes_in_chromium_exactly_as_in_python(demo_server: ServerProcess, browser: Any) -> None:
    vectors = json.loads((ROOT / "tests" / "vectors" / "snapshots.json").read_text())
    page = browser.new_page()
    try:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(demo_server.url + "/test/browser.html")
        page.wait_for_function("window.ready === true", timeout=10_000)
        got = page.evaluate("(seqs) => window.decodeSequences(seqs)", vectors["sequences"])
    finally:
        page.close()
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
