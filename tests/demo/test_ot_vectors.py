"""The notes pad's shared OT vectors (tests/vectors/ot.json, read by demo/test/ot.test.mjs):
still exactly what gamesync/games/ot.py makes, so the JavaScript twin is held to the server's
own answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gamesync.games import ot

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "ot.json"


def test_the_committed_ot_vectors_are_what_the_generator_makes_now(tmp_path):
    out = tmp_path / "ot.json"
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "vectors" / "make_ot_vectors.py"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == VECTORS.read_text(encoding="utf-8"), (
        "tests/vectors/ot.json is stale: run .venv/bin/python tests/vectors/make_ot_vectors.py and commit the result")


def test_every_ot_vector_holds_for_ot_py():
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert len(data["cases"]) >= 300
    for c in data["cases"]:
        assert ot.transform(c["a"], c["b"]) == (c["a2"], c["b2"])
        assert ot.apply(c["doc"], c["a"]) == c["after_a"] and ot.apply(c["doc"], c["b"]) == c["after_b"]
        assert ot.apply(c["after_a"], c["b2"]) == ot.apply(c["after_b"], c["a2"]) == c["converged"]
        assert ot.apply(c["after_a"], c["then"]) == c["after_then"]
        for i, other, own in c["cursors"]:
            assert (ot.transform_index(c["a"], i), ot.transform_index(c["a"], i, own=True)) == (other, own)
    assert {r["call"] for r in data["refusals"]} == {"apply", "transform", "check"}
