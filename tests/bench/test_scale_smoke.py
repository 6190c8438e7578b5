"""Smoke run of bench/scale.py (seconds, small sizes): it starts redis-server, nodes and bots
for each setup and reports every field. Speed is measured by hand, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scale_bench_reports_cpu_per_room_and_redis_commands_per_node(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "bench/scale.py", "--rooms", "2", "--players", "3", "--npcs", "100",
                        "--seconds", "1.5", "--warmup", "0.5", "--no-progress", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "scale.jsonl").read_text().splitlines()]
    assert [x["setup"] for x in rows] == ["alone-1", "cluster-1", "cluster-2"]
    for x in rows:
        assert x["all_connected"] and x["cpu_per_room"] > 0
        assert sum(n["rooms"] for n in x["per_node"]) == 2
        for n in x["per_node"]:
            if x["cluster"]:
                assert n["redis_cmds_per_s"] > 0 and n["cluster_cpu_cores"] >= 0
            else:
                assert n["redis_cmds_per_s"] is None
    assert [n["rooms"] for n in rows[2]["per_node"]] == [1, 1]  # spread over both nodes
    assert rows[1]["redis_server_cmds_per_s"] > 0
    assert (tmp_path / "scale.png").stat().st_size > 1000
