"""Inputs as columns (core/inputspec.py): a game's ``IntInputs`` checks every input the way the
server applies it, an ``InputBatch`` is the same inputs as ``InputQueue.take`` hands out, and
the native queue's C rows give the same batches and counts as the Python queue (the inputs
themselves: tests/core/test_native.py's input queue test, in both of its modes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import on_path

from gamesync import native
from gamesync.core.errors import ProtocolViolation, RateLimited
from gamesync.core.inputs import InputQueue
from gamesync.core.inputspec import InputBatch, IntInputs, take_batch
from gamesync.core.protocol import InputFrame, input_frame

needs_native = pytest.mark.skipif(not native.available(), reason="the native extension is not built here")
PAD = IntInputs(dx=(-1, 1), dy=(-1, 1))


# -- the spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[0, 0], [-1, 1], (1, -1), [1, 1]])
def test_an_input_of_the_declared_shape_is_kept_as_a_tuple(data: Any) -> None:
    assert PAD.validate(data) == tuple(data)


@pytest.mark.parametrize("data", [[2, 0], [0, -2], [1.0, 0], [True, 0], [0], [0, 0, 0], "left", None, {"dx": 1},
                                  [None, 0], [2**70, 0]])
def test_anything_else_is_a_protocol_violation_naming_the_shape(data: Any) -> None:
    with pytest.raises(ProtocolViolation) as e:
        PAD.validate(data)
    assert e.value.reason == "input is [dx, dy]: integers, dx in -1..1, dy in -1..1"


@pytest.mark.parametrize("ranges", [{}, {f"f{i}": (0, 1) for i in range(16)}, {"a": (2, 1)}, {"a": (0.0, 1)},
                                    {"a": (0, 2**63)}, {"seq": (0, 1)}, {"a": (0,)}])
def test_a_spec_that_cannot_be_held_is_refused(ranges: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        IntInputs(**ranges)


# -- the batch -----------------------------------------------------------------------------------


def test_a_batch_is_the_inputs_by_client_in_seq_order_with_their_ranks() -> None:
    b = InputBatch.of_frames(PAD, [(7, [input_frame(3, (1, 0)), input_frame(4, (1, 1))]),
                                   (9, [input_frame(12, (0, -1))])])
    assert b.clients.tolist() == [7, 7, 9]
    assert b.seqs.tolist() == [3, 4, 12]
    assert b.ranks.tolist() == [0, 1, 0]
    assert b.values.tolist() == [[1, 0], [1, 1], [0, -1]]
    assert b["dy"].tolist() == [0, 1, -1]
    assert (len(b), b.rounds, b.table.dtype) == (3, 2, np.int64)
    assert b.frames() == {7: [InputFrame(3, (1, 0)), InputFrame(4, (1, 1))], 9: [InputFrame(12, (0, -1))]}
    assert dict(b.items()) == b.frames()  # code written for the dict form reads a batch as it is


def test_an_empty_batch_has_no_rounds() -> None:
    b = InputBatch.of_frames(PAD, [])
    assert (len(b), b.rounds, b.values.shape) == (0, 0, (0, 2))


def test_taking_a_batch_counts_what_arrived_and_what_was_applied() -> None:
    queues = [InputQueue(backlog=0), InputQueue(backlog=0), InputQueue(backlog=0)]
    for q in queues:
        q.expect_ints(PAD.lo, PAD.hi)
    queues[0].add(1, (1, 0))
    queues[0].add(2, (0, 1))
    queues[2].add(5, (-1, -1))
    arrived, applied = [0] * 3, [0] * 3
    b = take_batch(zip([4, 5, 6], queues, strict=True), PAD, arrived, applied)
    assert b.table.tolist() == [[4, 1, 0, 1, 0], [4, 2, 1, 0, 1], [6, 5, 0, -1, -1]]
    assert arrived == applied == [1, 1, 1]  # none, one, two (the last slot: two or more)


# -- the native queue's C rows, against the Python queue ------------------------------------------


def _queues(max_per_tick: int, backlog: int, drain: int) -> tuple[Any, InputQueue]:
    with on_path(True):
        nat = native.input_queue(max_per_tick, backlog, drain)
    py = InputQueue(max_per_tick, backlog, drain)
    assert type(nat) is not InputQueue
    for q in (nat, py):
        q.expect_ints(PAD.lo, PAD.hi)
    assert nat.ints == py.ints == 2
    return nat, py


@needs_native
@settings(max_examples=200, deadline=None)
@given(ticks=st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20), st.integers(-1, 1)), max_size=12),
                      max_size=12))
def test_a_native_batch_is_the_python_batch(ticks: list[list[tuple[int, int, int]]]) -> None:
    """Four clients' inputs at random, taken tick by tick as one table on each path: the
    same rows and the same histograms (one of the native path's sessions has a Python queue,
    as a session made while the Python path was on would)."""
    pairs = [_queues(4, 1, 3) for _ in range(4)]
    odd = InputQueue(4, 1, 3)
    odd.expect_ints(PAD.lo, PAD.hi)
    nat_qs = [n for n, _ in pairs[:3]] + [odd]
    py_qs = [p for _, p in pairs[:3]] + [InputQueue(4, 1, 3)]
    py_qs[3].expect_ints(PAD.lo, PAD.hi)
    sessions = [{10 + i: SimpleNamespace(proto=SimpleNamespace(inputs=q)) for i, q in enumerate(qs)}
                for qs in (nat_qs, py_qs)]
    for arrivals in ticks:
        for who, seq, d in arrivals:
            for qs in (nat_qs, py_qs):
                try:
                    qs[who].add(seq, (d, -d))
                except RateLimited:
                    qs[who].clear()
        out = []
        for path, ss in ((True, sessions[0]), (False, sessions[1])):
            arrived, applied = [0] * 4, [0] * 4
            with on_path(path):
                b = native.take_batch(ss, PAD, arrived, applied)
            out.append((b.table.tolist(), arrived, applied))
        assert out[0] == out[1]


@needs_native
def test_a_native_queue_refuses_data_of_another_shape() -> None:
    nat, _ = _queues(4, 1, 3)
    with pytest.raises(ValueError):
        nat.add(1, (1, 0, 0))
    with pytest.raises(ValueError):
        nat.expect_ints((0,) * 16, (1,) * 16)
    nat.add(1, (1, 0))
    nat.expect_ints((0,), (5,))  # another game: what waited is dropped
    assert (len(nat), nat.ints) == (0, 1)


@needs_native
def test_a_native_queue_told_a_shape_it_cannot_hold_keeps_the_one_it_had() -> None:
    """``expect_ints`` converts every bound before it changes anything: a bound that is not an
    integer leaves the queue's rows as they were, and they go on working."""
    nat, _ = _queues(4, 1, 3)
    nat.expect_ints((0,) * 15, (9,) * 15)
    with pytest.raises(TypeError):
        nat.expect_ints((0,), (None,))
    assert nat.ints == 15
    for seq in range(1, 5):
        nat.add(seq, (seq,) * 15)
    assert [f.data for f in nat.take()] == [(s,) * 15 for s in (1, 2, 3)]  # all but a backlog of one
