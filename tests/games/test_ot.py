"""Plain-text operational transformation (gamesync.games.ot): convergence and cursors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesync.games import ot


def _random_op(draw, doc: str) -> ot.Op:
    op: ot.Op = []
    i = 0
    while i < len(doc):
        kind = draw(st.sampled_from(["retain", "delete", "insert"]))
        if kind == "insert":
            ot._push(op, draw(st.text(alphabet="xyzé😀", min_size=1, max_size=3)))
            continue
        n = draw(st.integers(1, len(doc) - i))
        ot._push(op, n if kind == "retain" else -n)
        i += n
    if draw(st.booleans()):
        ot._push(op, draw(st.text(alphabet="qw", min_size=1, max_size=3)))
    return op


@st.composite
def concurrent(draw):
    doc = draw(st.text(alphabet="abcdef😀", max_size=12))
    return doc, _random_op(draw, doc), _random_op(draw, doc)


@settings(max_examples=500, deadline=None)
@given(concurrent())
def test_transformed_operations_converge(case):
    doc, a, b = case
    a2, b2 = ot.transform(a, b)
    assert ot.apply(ot.apply(doc, a), b2) == ot.apply(ot.apply(doc, b), a2)


def test_concurrent_inserts_at_the_same_place_keep_the_first_applied_first():
    a, b = [2, "A", 1], [2, "B", 1]
    a2, b2 = ot.transform(a, b)
    assert ot.apply(ot.apply("xyz", a), b2) == "xyABz"


def test_an_insert_inside_a_concurrent_delete_survives():
    doc = "hello world"
    ins, dele = [5, ",", 6], [3, -6, 2]  # insert after "hello"; delete "lo wor"
    i2, d2 = ot.transform(ins, dele)
    assert ot.apply(ot.apply(doc, ins), d2) == ot.apply(ot.apply(doc, dele), i2) == "hel,ld"


@pytest.mark.parametrize(("op", "why"), [
    ("x", "list"), ([0], "zero"), ([""], "empty"), ([1.5], "component"), (["x" * 10_001], "more than"),
])
def test_malformed_operations_are_refused(op, why):
    with pytest.raises(ot.OTError, match=why):
        ot.check(op)


def test_an_operation_that_does_not_span_the_document_is_refused():
    with pytest.raises(ot.OTError):
        ot.apply("abc", [2, "x"])


def test_cursors_move_with_edits_before_them_and_stay_for_edits_after():
    op = [1, "XY", -2, 3]  # on "abcdef": insert after a, delete bc
    assert ot.apply("abcdef", op) == "aXYdef"
    assert ot.transform_index(op, 0) == 0
    assert ot.transform_index(op, 1) == 1  # someone else's insert at the cursor: text after it
    assert ot.transform_index(op, 1, own=True) == 3  # your own typing moves your caret
    assert ot.transform_index(op, 2) == 3  # inside the deleted text: to where it was
    assert ot.transform_index(op, 4) == 4
    assert ot.transform_index(op, 6) == 6
