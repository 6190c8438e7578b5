"""Operational transformation for plain text, in the ot.js component form.

An operation is a list of components that walks the whole document: a positive int
*retains* that many characters, a negative int *deletes* that many, a string *inserts*
itself. Positions count Unicode code points (in JavaScript: ``Array.from(text)``).
``transform(a, b)`` takes two operations made concurrently on the same document and returns
``(a2, b2)`` such that ``apply(apply(d, a), b2) == apply(apply(d, b), a2)``; where both insert
at the same place, ``a``'s text comes first (the server passes the op it applied first as
``a``, which makes the order of concurrent inserts the order the server saw them).
"""

from __future__ import annotations

from typing import Any

Op = list[int | str]


class OTError(ValueError):
    """An operation that is malformed or does not fit the document."""


def check(op: Any, max_insert: int = 10_000) -> Op:
    """``op`` as a valid operation (no zero components, bounded inserted text) or OTError."""
    if not isinstance(op, list):
        raise OTError("an operation is a list of components")
    total = 0
    for c in op:
        if type(c) is int:
            if c == 0:
                raise OTError("zero-length component")
        elif isinstance(c, str):
            if not c:
                raise OTError("empty insert")
            total += len(c)
        else:
            raise OTError("a component is an int (retain > 0, delete < 0) or a string (insert)")
    if total > max_insert:
        raise OTError(f"inserts more than {max_insert} characters")
    return op


def base_length(op: Op) -> int:
    return sum(c if c > 0 else -c for c in op if isinstance(c, int))


def apply(doc: str, op: Op) -> str:
    if base_length(op) != len(doc):
        raise OTError(f"operation spans {base_length(op)} characters, the document has {len(doc)}")
    out, i = [], 0
    for c in op:
        if isinstance(c, str):
            out.append(c)
        elif c > 0:
            out.append(doc[i:i + c])
            i += c
        else:
            i -= c
    return "".join(out)


def _push(op: Op, c: int | str) -> None:
    """Append ``c``, merging with the last component of the same kind."""
    if op and type(op[-1]) is type(c) and (isinstance(c, str) or (op[-1] > 0) == (c > 0)):  # type: ignore[operator]
        op[-1] = op[-1] + c  # type: ignore[operator]
    else:
        op.append(c)


def transform(a: Op, b: Op) -> tuple[Op, Op]:
    if base_length(a) != base_length(b):
        raise OTError("concurrent operations must span the same document")
    a2: Op = []
    b2: Op = []
    ia, ib = iter(a), iter(b)
    ca, cb = next(ia, None), next(ib, None)
    while ca is not None or cb is not None:
        if isinstance(ca, str):  # a's insert goes first
            _push(a2, ca)
            _push(b2, len(ca))
            ca = next(ia, None)
            continue
        if isinstance(cb, str):
            _push(a2, len(cb))
            _push(b2, cb)
            cb = next(ib, None)
            continue
        if ca is None or cb is None:
            raise OTError("operations end at different places")
        if ca > 0 and cb > 0:  # both retain
            n = min(ca, cb)
            _push(a2, n)
            _push(b2, n)
        elif ca < 0 and cb < 0:  # both delete the same text: nothing left to do
            n = min(-ca, -cb)
        elif ca < 0:  # a deletes what b retains
            n = min(-ca, cb)
            _push(a2, -n)
        else:  # b deletes what a retains
            n = min(ca, -cb)
            _push(b2, -n)
        ca = (ca - n if ca > 0 else ca + n) or next(ia, None)
        cb = (cb - n if cb > 0 else cb + n) or next(ib, None)
    return a2, b2


def transform_index(op: Op, index: int, own: bool = False) -> int:
    """Where position ``index`` moves to when ``op`` is applied (a cursor). An insert exactly
    at the cursor pushes it along only when it is the cursor owner's own (``own``: typing
    moves your caret; someone else's text appears after it)."""
    pos, new = 0, index
    for c in op:
        if pos > index:
            break
        if isinstance(c, str):
            if pos < index or (pos == index and own):
                new += len(c)
        elif c > 0:
            pos += c
        else:
            new -= min(-c, index - pos)
            pos -= c
    return max(0, new)
