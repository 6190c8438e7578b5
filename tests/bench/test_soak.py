"""The churn soak (bench/soak.py), short: bots join, leave, drop and resume at random across
rooms for a few seconds; nothing is left behind and acknowledged inputs apply exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_churn_soak_leaves_nothing_behind_and_applies_every_acknowledged_input_once():
    r = subprocess.run([sys.executable, "bench/soak.py", "--seconds", "8", "--bots", "24", "--rooms", "3",
                        "--grace", "1", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       check=False)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    # the churn really happened: every kind of ending, seats resumed, inputs applied
    assert res["sessions"] > 50 and res["seats"] > 50 and res["inputs_applied"] > 1000
    assert res["drop_resume"] > 5 and res["resumed"] > 5 and res["drop_abandon"] > 5
    assert res["faults"] == {}, "inputs applied twice, out of order or with a gap"
    assert res["acked_not_applied"] == {}, "an acknowledged input was not applied"
    assert res["left_behind"] == {"connections": 0, "rooms": 0, "sessions": 0, "seats": 0, "per_ip": 0,
                                  "extra_tasks": 0}
    assert res["checks"]["rss_flat_after_warmup"], res["rss_growth_mib"]
    assert res["ok"] and r.returncode == 0
