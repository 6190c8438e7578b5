"""Smoke run of bench/bigworld.py on its Colyseus StateView side (seconds, a small world): the
room starts, every bot joins, the run measures every field, and the server's own check of
every view against every entity finds nothing missing within R and nothing leaked beyond 2R.
The gamesync side needs `gamesync serve --game bigworld`, which is tested with the game."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("server_cpu", "server_rss_mib", "wire_bytes_per_client_s", "payload_bytes_per_client_s",
          "states_per_client_s", "ack_latency_ms_p50", "ack_latency_ms_p99", "tick_overrun_pct",
          "all_connected", "visible_entities_mean")


def test_colyseus_view_keeps_each_bot_to_its_surroundings(tmp_path):
    # E = 5000: a 2236-unit square, so a bot's view (~1000 entities) is a fifth of the world
    r = subprocess.run([sys.executable, "bench/bigworld.py", "--systems", "colyseus-view", "--players", "4",
                        "--npcs", "5000", "--seconds", "2", "--warmup", "1", "--check-interest", "--no-progress",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert r.returncode == 0, r.stderr
    [x] = [json.loads(line) for line in (tmp_path / "bigworld.jsonl").read_text().splitlines() if line.strip()]
    assert "error" not in x, x
    assert (x["system"], x["P"], x["E"]) == ("colyseus-view", 4, 5000)
    for f in FIELDS:
        assert x.get(f) is not None, f
    assert x["all_connected"] is True
    assert x["states_per_client_s"] > 5 and x["payload_bytes_per_client_s"] > 0
    assert 0 < x["ack_latency_ms_p50"] <= x["ack_latency_ms_p99"]
    # about pi * 500^2 / 1000 = 785 NPCs lie within R of a bot away from the edges, and the grid
    # adds a margin; a bot near an edge or a corner holds fewer. Either way: far from all E.
    assert 300 < x["visible_entities_mean"] < 2500
    assert x["visible_distance_max"] < 1000  # nothing farther than 2R reached a bot
    assert x["interest_checks"] > 0 and x["interest_missing"] == 0 and x["interest_leaked"] == 0
    assert "| visible_entities_mean |" in r.stdout
    assert (tmp_path / "bigworld.png").stat().st_size > 1000
