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


# ---- checked without ot.py: what every vector must satisfy, and a few derived by hand ----------
# The tests above hold ot.json to the ot.py that made it; a bug in ot.py would be in both. These
# read the vectors with a reference written from the operation format alone (ot.py's docstring:
# retain n > 0, delete -n, insert a string; positions count code points).


def _span(op: list) -> int:
    return sum(abs(c) for c in op if type(c) is int)


def _ref_apply(doc: str, op: list) -> str:
    assert _span(op) == len(doc), (doc, op)
    out, i = "", 0
    for c in op:
        if type(c) is str:
            out += c
        else:
            out += doc[i:i + c] if c > 0 else ""
            i += abs(c)
    return out


def _kept(doc: str, op: list) -> list[bool]:
    """For each character of ``doc``, whether ``op`` keeps it."""
    keep: list[bool] = []
    for c in op:
        if type(c) is int:
            keep += [c > 0] * abs(c)
    return keep


def _ref_cursor(op: list, index: int, own: bool) -> int:
    """Characters in front of the cursor afterwards: those kept before it, inserts before it,
    and an insert exactly at it only when it is the owner's."""
    pos, new = 0, 0
    for c in op:
        if type(c) is str:
            new += len(c) if pos < index or (pos == index and own) else 0
        else:
            if c > 0:
                new += max(0, min(pos + c, index) - pos)
            pos += abs(c)
    return new


def _normal(op: list) -> bool:
    """No empty component, and no two neighbours of the same kind (they would be one)."""
    kinds = ["ins" if type(c) is str else "ret" if c > 0 else "del" for c in op]
    return all(c != 0 and c != "" for c in op) and all(k1 != k2 for k1, k2 in zip(kinds, kinds[1:]))


def test_every_ot_vector_satisfies_the_properties_of_a_transform_checked_without_ot_py():
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    ties = 0
    for c in data["cases"]:
        doc, a, b, a2, b2 = c["doc"], c["a"], c["b"], c["a2"], c["b2"]
        assert all(_normal(op) for op in (a, b, a2, b2, c["then"])), c
        assert _span(a) == _span(b) == len(doc)
        assert _ref_apply(doc, a) == c["after_a"] and _ref_apply(doc, b) == c["after_b"]
        # convergence: either order of application ends in the same document
        assert _ref_apply(c["after_a"], b2) == _ref_apply(c["after_b"], a2) == c["converged"]
        assert _ref_apply(c["after_a"], c["then"]) == c["after_then"]
        # nothing lost, nothing invented: every character kept by both, every insert of each
        ka, kb = _kept(doc, a), _kept(doc, b)
        both = "".join(ch for ch, x, y in zip(doc, ka, kb) if x and y)
        ins_a, ins_b = [s for s in a if type(s) is str], [s for s in b if type(s) is str]
        assert len(c["converged"]) == len(both) + sum(map(len, ins_a)) + sum(map(len, ins_b))
        it = iter(c["converged"])
        assert all(ch in it for ch in both)  # in order
        assert all(s in c["converged"] for s in ins_a + ins_b)
        # the same place, both inserting: a's text first
        if type(a[0]) is str and type(b[0]) is str:
            ties += 1
            assert c["converged"].startswith(a[0] + b[0])
        for i, other, own in c["cursors"]:
            assert (other, own) == (_ref_cursor(a, i, False), _ref_cursor(a, i, True)), (a, i)
            assert 0 <= other <= own <= len(c["after_a"])
    assert ties > 0  # the tie rule was exercised


# (doc, a, b, a2, b2, converged), each worked out on paper
HAND_OT = [
    ("abc", ["x", 3], ["y", 3], ["x", 4], [1, "y", 3], "xyabc"),  # same place: a first
    ("abcdef", [1, -3, 2], [2, -3, 1], [1, -1, 1], [1, -1, 1], "af"),  # overlapping deletes
    ("abcd", [1, -2, 1], [2, "X", 2], [1, -1, 1, -1, 1], [1, "X", 1], "aXd"),  # insert inside a delete
    ("\U0001F600é", [1, "ß", 1], [-1, 1], ["ß", 1], [-1, 2], "ßé"),  # an astral code point is one
]
# (op, doc length, index, other's cursor, own cursor)
HAND_CURSORS = [
    ([1, "ß", 1], 2, 1, 1, 2), ([1, "ß", 1], 2, 2, 3, 3), ([1, "ß", 1], 2, 0, 0, 0),
    ([1, -2, 1], 4, 2, 1, 1), ([1, -2, 1], 4, 3, 1, 1), ([1, -2, 1], 4, 4, 2, 2), (["ab", -1], 1, 1, 2, 2),
]


def test_hand_derived_ot_vectors_hold_for_ot_py_and_the_reference():
    for doc, a, b, a2, b2, converged in HAND_OT:
        assert ot.transform(a, b) == (a2, b2)
        assert ot.apply(ot.apply(doc, a), b2) == ot.apply(ot.apply(doc, b), a2) == converged
        assert _ref_apply(_ref_apply(doc, a), b2) == _ref_apply(_ref_apply(doc, b), a2) == converged
    for op, n, i, other, own in HAND_CURSORS:
        assert _span(op) == n
        assert (ot.transform_index(op, i), ot.transform_index(op, i, own=True)) == (other, own), (op, i)
        assert (_ref_cursor(op, i, False), _ref_cursor(op, i, True)) == (other, own), (op, i)
