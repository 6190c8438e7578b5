"""bench/arena.py --repeat: several rounds of the same runs give one table of medians, and a
line with each round's server CPU ratio, so that a noisy machine's spread stays visible."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ARENA = Path(__file__).resolve().parents[2] / "bench" / "arena.py"
_spec = importlib.util.spec_from_file_location("arena_bench", ARENA)
assert _spec is not None and _spec.loader is not None
arena = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(arena)


def _rows() -> list[dict]:
    rows = []
    for k, (ours, theirs) in enumerate([(0.10, 0.20), (0.12, 0.20), (0.09, 0.30)]):
        for system, cpu in (("gamesync", ours), ("colyseus", theirs)):
            rows.append({"system": system, "P": 200, "E": 1000, "rtt_ms": "0", "round": k, "server_cpu": cpu,
                         "ack_latency_ms_p99": 40.0 + k, "all_connected": system == "gamesync" or k != 1})
    return rows


def test_rounds_merge_into_medians_and_a_flag_true_in_every_round():
    m = arena.merged([r for r in _rows() if r["system"] == "colyseus"])
    assert (m["server_cpu"], m["ack_latency_ms_p99"], m["all_connected"]) == (0.2, 41.0, False)


def test_the_table_gives_the_median_ratio_and_each_rounds_ratio():
    out = arena.table(_rows())
    assert "medians of 3 rounds" in out
    assert "| server_cpu | 0.1 | 0.2 | 0.50 |" in out
    assert "| server_cpu by round |  |  | 0.50, 0.60, 0.30 |" in out


def test_one_round_is_the_table_as_before():
    one = [r for r in _rows() if r["round"] == 0]
    out = arena.table(one)
    assert "medians" not in out and "by round" not in out
    assert "| server_cpu | 0.1 | 0.2 | 0.50 |" in out
