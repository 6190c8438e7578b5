#!/bin/bash
# The room's tick, phase by phase, for one server tree: read / step / encode / send, ms per tick
# (the room's own phase_s clocks, from `gamesync serve --stats-file`), over 12 s of a 22 s arena
# run of P bots (this checkout's bots), after 14 s of joining and warm-up.
#   bench/phases.sh SERVER_TREE P
# PIN=1 puts the server on core 0 and the bots on core 1 (taskset), which takes most of the
# run-to-run noise out of A/B pairs on a 2-core machine. A "before" tree: `git archive REV | tar -x`
# plus its built extensions (`python setup.py build_ext --inplace` in it); run pairs alternately.
ST=$1; P=$2; PORT=$((19600 + RANDOM % 300))
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$HERE/.venv/bin/python}
PIN_S=env; PIN_B=env
if [ "${PIN:-0}" = 1 ]; then PIN_S="taskset -c 0 env"; PIN_B="taskset -c 1 env"; fi
OUT=$(mktemp -d)
cd /tmp || exit 1
$PIN_S PYTHONPATH=$ST $PY -m gamesync serve --port $PORT --host 127.0.0.1 --http-port -1 \
    --stats-file $OUT/stats.json --stats-interval 1 > $OUT/srv.log 2>&1 &
SP=$!
sleep 5
$PIN_B PYTHONPATH=$HERE $PY -m gamesync bots ws://127.0.0.1:$PORT --room arena --count $P --duration 22 --json \
    --no-progress > $OUT/bots.json 2> /dev/null &
BP=$!
sleep 14; cp $OUT/stats.json $OUT/s0.json; sleep 12; cp $OUT/stats.json $OUT/s1.json
wait $BP; kill -INT $SP; wait $SP 2> /dev/null
$PY - "$ST" "$P" $OUT/s0.json $OUT/s1.json <<'PYEND'
import json, sys

def room(path):
    def find(o):
        if isinstance(o, dict):
            if "read_ms_mean" in o:
                return o
            o = list(o.values())
        if isinstance(o, list):
            for v in o:
                if (r := find(v)) is not None:
                    return r
        return None
    return find(json.load(open(path)))

a, b = room(sys.argv[3]), room(sys.argv[4])
n = b["ticks"] - a["ticks"]
ms = {k: round((b[f"{k}_ms_mean"] * b["ticks"] - a[f"{k}_ms_mean"] * a["ticks"]) / n, 3)
      for k in ("read", "step", "encode", "send")}
print(sys.argv[1], "P", sys.argv[2], ms, "us/client/tick:", round(sum(ms.values()) * 1000 / int(sys.argv[2]), 1))
PYEND
rm -rf "$OUT"
