"""Smoke runs of the benchmarks (seconds, small sizes): they start, measure every field and
draw their plots. Speed itself is measured by running bench/ by hand, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARENA_FIELDS = ("server_cpu", "server_rss_mib", "wire_bytes_per_client_s", "payload_bytes_per_client_s",
                "states_per_client_s", "ack_latency_ms_p50", "ack_latency_ms_p99", "tick_overrun_pct",
                "all_connected")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tick_bench_reports_every_stage_and_the_naive_ratio(tmp_path):
    r = _run(["bench/tick.py", "--entities", "300,2000", "--baselines", "1,2", "--ticks", "4",
              "--no-progress", "--out", str(tmp_path)], timeout=120)
    assert r.returncode == 0, r.stderr
    rows = _lines(tmp_path / "tick.jsonl")
    assert [(x["E"], x["K"]) for x in rows] == [(300, 1), (300, 2), (2000, 1), (2000, 2)]
    for x in rows:
        assert set(x["gamesync"]["stage_ms"]) == {"step", "quantise", "delta", "encode", "compress"}
        assert 0 < x["gamesync"]["delta_bytes"] < x["gamesync"]["full_bytes"] < x["naive"]["bytes"]
        assert x["naive_over_gamesync_time"] > 0 and x["naive_over_gamesync_bytes"] > 1
    assert (tmp_path / "tick_breakdown.png").stat().st_size > 1000


@pytest.mark.parametrize("systems", ["gamesync,naive", "colyseus"])
def test_arena_bench_measures_every_field_for_each_system(tmp_path, systems):
    r = _run(["bench/arena.py", "--players", "4", "--systems", systems, "--seconds", "2", "--warmup", "1",
              "--npcs", "200", "--no-progress", "--out", str(tmp_path)], timeout=420)
    assert r.returncode == 0, r.stderr
    rows = _lines(tmp_path / "arena.jsonl")
    assert [x["system"] for x in rows] == systems.split(",")
    for x in rows:
        assert "error" not in x, x
        for f in ARENA_FIELDS:
            assert f in x, (x["system"], f)
        assert x["P"] == 4 and x["E"] == 200
        assert x["all_connected"] is True
        assert x["states_per_client_s"] > 20
        assert x["wire_bytes_per_client_s"] > 0 and x["payload_bytes_per_client_s"] > 0
        assert 0 < x["ack_latency_ms_p50"] <= x["ack_latency_ms_p99"]
        assert x["server_cpu"] > 0 and x["server_rss_mib"] > 1
    assert "| server_cpu |" in r.stdout  # the side-by-side table
    assert (tmp_path / "arena.png").stat().st_size > 1000


def test_arena_bench_runs_bots_through_the_delay_proxy_and_splits_mixed_rtts(tmp_path):
    r = _run(["bench/arena.py", "--players", "4", "--systems", "gamesync", "--seconds", "2", "--warmup", "1",
              "--npcs", "200", "--rtt", "60,0+60", "--no-progress", "--no-plot", "--out", str(tmp_path)],
             timeout=300)
    assert r.returncode == 0, r.stderr
    one, mixed = _lines(tmp_path / "arena.jsonl")
    assert "error" not in one and "error" not in mixed, (one, mixed)
    assert one["rtt_ms"] == "60" and mixed["rtt_ms"] == "0+60"
    assert one["all_connected"] and mixed["all_connected"]
    assert one["proxy_cpu"] > 0 and one["payloads_per_tick"] > 0
    # input to applied state takes at least the added round trip
    assert one["ack_latency_ms_p50"] >= 60
    assert [g["rtt_ms"] for g in mixed["groups"]] == [0, 60] and [g["bots"] for g in mixed["groups"]] == [2, 2]
    assert mixed["groups"][0]["ack_latency_ms_p50"] < 60 <= mixed["groups"][1]["ack_latency_ms_p50"]


def test_the_floor_runs_beside_gamesync_with_frames_as_large_as_gamesyncs(tmp_path):
    """bench/floor: the least a server spends per client, measured like the others, putting the
    same bytes on the wire as gamesync did in the same round."""
    r = _run(["bench/arena.py", "--players", "4", "--systems", "gamesync,floor", "--seconds", "2", "--warmup", "1",
              "--npcs", "200", "--no-progress", "--no-plot", "--out", str(tmp_path)], timeout=300)
    assert r.returncode == 0, r.stderr
    gs, floor = _lines(tmp_path / "arena.jsonl")
    assert "error" not in gs and "error" not in floor, (gs, floor)
    assert floor["system"] == "floor" and floor["all_connected"] is True
    assert floor["states_per_client_s"] > 20 and floor["server_cpu"] > 0
    assert floor["ack_latency_ms_p50"] is None  # no protocol, no acks
    assert floor["wire_bytes_per_client_s"] == pytest.approx(gs["wire_bytes_per_client_s"], rel=0.2)
    assert "gamesync/floor" in r.stdout
