"""The browser demo's JavaScript client (demo/js) against the Python codec and client.

tests/vectors/snapshots.json holds server messages built by the real server-side codec and
what the Python client makes of them (tests/vectors/make_vectors.py); demo/test checks that
the JavaScript modules make exactly the same of them. Needs Node >= 20 and npm (the
demo's one dependency comes from the npm registry, pinned by demo/package-lock.json).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
VECTORS = ROOT / "tests" / "vectors" / "snapshots.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: the JavaScript client tests need Node >= 20 and npm"
    return path


def _installed() -> bool:
    """demo/node_modules holds exactly what package-lock.json pins (npm's own record of what
    it installed, node_modules/.package-lock.json, lists the same versions and hashes)."""
    hidden = DEMO / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False
    want = json.loads((DEMO / "package-lock.json").read_text())["packages"]
    have = json.loads(hidden.read_text())["packages"]
    return all(
        key in have and (have[key].get("version"), have[key].get("integrity")) == (pkg.get("version"), pkg.get("integrity"))
        and (DEMO / key / "package.json").is_file()
        for key, pkg in want.items() if key
    )


@pytest.fixture(scope="module")
def node_modules() -> None:
    """`npm ci` in demo/, skipped when node_modules already matches the lock."""
    if not _installed():
        r = subprocess.run([_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DEMO,
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, f"npm ci failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert _installed(), "node_modules does not match package-lock.json after npm ci"


def test_the_committed_vectors_are_what_the_generator_makes_now(tmp_path):
    out = tmp_path / "snapshots.json"
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "vectors" / "make_vectors.py"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    fresh, committed = out.read_text(encoding="utf-8"), VECTORS.read_text(encoding="utf-8")
    assert fresh == committed, ("tests/vectors/snapshots.json is stale: run "
                                ".venv/bin/python tests/vectors/make_vectors.py and commit the result")
    assert len(committed.encode()) < 360_000  # three view sequences again under version 5 took it past 300 KB


def test_the_js_client_decodes_every_vector_as_the_python_client_does(node_modules):
    node = _tool("node")
    v = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    assert int(v.lstrip("v").split(".")[0]) >= 20, f"node {v}: the demo needs Node >= 20"
    env = {**os.environ, "GAMESYNC_VECTORS": str(VECTORS)}
    r = subprocess.run([node, "--test", "demo/test/"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=180, check=False)
    tail = "\n".join(r.stdout.splitlines()[-12:])
    assert r.returncode == 0, f"node --test failed:\n{r.stdout[-8000:]}\n{r.stderr[-3000:]}"
    summary = dict(line[2:].split(" ", 1) for line in r.stdout.splitlines()
                   if line.startswith("# ") and line[2:].split(" ", 1)[0] in ("tests", "pass", "fail", "skipped"))
    assert int(summary["fail"]) == 0 and int(summary["skipped"]) == 0, tail
    assert int(summary["pass"]) >= 20, tail  # both test files ran, every sequence with both inflaters


def test_the_pages_prediction_moves_a_player_exactly_as_the_arena_does(node_modules):
    """demo/js/prediction.js's moveFor against gamesync/games/arena.py itself: one input of
    each direction at several tick rates, from a point well inside the world."""
    from gamesync.core.protocol import InputFrame
    from gamesync.core.world import World
    from gamesync.games.arena import Arena

    class Room:  # what the arena needs of its room here: a world and somewhere to send
        def __init__(self, game: Arena) -> None:
            self.world = World(game.schema)

        def send(self, client_id: int, data: object) -> None:
            pass

    rates = [10, 20, 30, 60, 64]
    dirs = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    want = {}
    for rate in rates:
        for d in dirs:
            g = Arena(npcs=0)
            g.setup(Room(g))  # type: ignore[arg-type]
            g.on_join(1, "ann")
            s = g.players[1]
            g.world["x"][s] = g.world["y"][s] = 500.0
            g.step(1, {1: [InputFrame(1, d)]}, 1.0 / rate)
            want[f"{rate} {d[0]} {d[1]}"] = [float(g.world["x"][s]) - 500.0, float(g.world["y"][s]) - 500.0]
    script = ("import { moveFor } from './demo/js/prediction.js';\n"
              f"const out = {{}}; for (const r of {json.dumps(rates)}) for (const [dx, dy] of {json.dumps(dirs)})\n"
              "  out[`${r} ${dx} ${dy}`] = moveFor(dx, dy, r);\n"
              "console.log(JSON.stringify(out));")
    assert _node_json(script) == want


def _node_json(script: str) -> Any:
    """What an ES module ``script`` (run by node in the repository) prints, as JSON."""
    r = subprocess.run([_tool("node"), "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_js_error_table_is_the_python_one():
    """demo/js/errors.js holds the table of gamesync/core/errors.py: every code with its close
    code and whether the client retries, and the close codes' retries derived from it."""
    from gamesync.core.errors import CLOSE_RETRY, ERRORS, should_retry

    script = ("import * as E from './demo/js/errors.js';\n"
              "const codes = [...Object.keys(E.ERRORS), 'a_code_from_a_newer_server'];\n"
              "console.log(JSON.stringify({errors: E.ERRORS, errorClose: E.ERROR_CLOSE, closeRetry: E.CLOSE_RETRY,\n"
              "  retry: Object.fromEntries(codes.map((c) => [c, E.shouldRetry(c)])),\n"
              "  desync: new E.DesyncError('x').closeCode, protocol: new E.ProtocolViolation('x').closeCode}));")
    js = _node_json(script)
    assert {code: (e["close"], e["retry"]) for code, e in js["errors"].items()} == ERRORS
    assert list(js["errors"]) == list(ERRORS)  # in the same order (by close code), as docs/protocol.md lists them
    assert js["errorClose"] == {code: close for code, (close, _) in ERRORS.items()}
    assert {int(c): retry for c, retry in js["closeRetry"].items()} == CLOSE_RETRY
    assert js["retry"] == {code: should_retry(code) for code in js["retry"]}
    assert (js["desync"], js["protocol"]) == (ERRORS["desync"][0], ERRORS["protocol"][0])
