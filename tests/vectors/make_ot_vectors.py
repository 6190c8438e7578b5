"""Shared test vectors for the notes pad's JavaScript OT (demo/js/ot.js): random documents
and operations, and what gamesync/games/ot.py makes of them.

Each case is a document (with characters outside the BMP and combining marks, since
positions count code points), two concurrent operations on it, the transforms of the pair,
both documents they lead to, cursor moves for several positions (own and not own), and an
operation made after the first one (ot.py has no compose: the JavaScript compose must give
what applying the two in turn gives). Further cases hold operations ot.py refuses.

    .venv/bin/python tests/vectors/make_ot_vectors.py [--out tests/vectors/ot.json]

The output is deterministic (seeded); tests/demo/test_ot_vectors.py checks that the
committed file is what this script writes now.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gamesync.games import ot  # noqa: E402

OUT = Path(__file__).resolve().parent / "ot.json"
CASES = 400
# ASCII, a newline, Latin-1, CJK, astral emoji and a combining accent
ALPHABET = list("abcxyz \n") + ["é", "ß", "日", "本", "\U0001F600", "\U0001F389", "\U00010348", "e\u0301"]


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def _push(op: ot.Op, c: int | str) -> None:
    ot._push(op, c)


def random_op(rng: random.Random, doc: str) -> ot.Op:
    """A random valid operation on ``doc``, normalised the way ot.py builds them."""
    op: ot.Op = []
    left = len(doc)
    while left or (not op and rng.random() < 0.5):
        r = rng.random()
        if r < 0.25:
            _push(op, _text(rng, rng.randint(1, 4)))
        if not left:
            break
        n = rng.randint(1, min(left, 6))
        _push(op, n if r < 0.6 else -n)
        left -= n
    if rng.random() < 0.3:
        _push(op, _text(rng, rng.randint(1, 3)))
    if not op:
        op.append(_text(rng, 1))
    return op


def make_case(rng: random.Random) -> dict[str, Any]:
    doc = _text(rng, rng.choice([0, 1, 3, 8, 20]))
    a, b = random_op(rng, doc), random_op(rng, doc)
    a2, b2 = ot.transform(a, b)
    after_a = ot.apply(doc, a)
    then = random_op(rng, after_a)
    n = len(doc)
    points = sorted({0, n, *(rng.randint(0, n) for _ in range(3))})
    return {
        "doc": doc, "a": a, "b": b,
        "a2": a2, "b2": b2,
        "after_a": after_a, "after_b": ot.apply(doc, b),
        "converged": ot.apply(after_a, b2),
        "then": then, "after_then": ot.apply(after_a, then),
        "cursors": [[i, ot.transform_index(a, i, False), ot.transform_index(a, i, True)] for i in points],
    }


def refusals() -> list[dict[str, Any]]:
    out = []
    for doc, op in (("abc", ["x", 2]), ("abc", [4]), ("", [-1]), ("ab", [1, "x", -2])):
        try:
            ot.apply(doc, op)
        except ot.OTError as e:
            out.append({"call": "apply", "doc": doc, "op": op, "why": str(e)})
    for a, b in (([1], [2]), (["x", 3], [2])):
        try:
            ot.transform(a, b)
        except ot.OTError as e:
            out.append({"call": "transform", "a": a, "b": b, "why": str(e)})
    for op in ("abc", [0], [""], [1.5], ["x" * 10_001], [None]):
        try:
            ot.check(op)
        except ot.OTError as e:
            out.append({"call": "check", "op": op, "why": str(e)})
    return out


def build(seed: int = 5, cases: int = CASES) -> dict[str, Any]:
    rng = random.Random(seed)
    return {"about": "made by tests/vectors/make_ot_vectors.py from gamesync/games/ot.py; do not edit",
            "cases": [make_case(rng) for _ in range(cases)], "refusals": refusals()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    data = build()
    args.out.write_text(json.dumps(data, ensure_ascii=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(data['cases'])} cases, {len(data['refusals'])} refusals -> {args.out}")


if __name__ == "__main__":
    main()
