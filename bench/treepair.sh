#!/bin/bash
# One A/B run of `gamesync bots` against `gamesync serve`, each from a source tree of its own:
#   bench/treepair.sh BOTS_TREE SERVER_TREE P [prof|sprof]
# Both run with PYTHON (default: this checkout's .venv) and PYTHONPATH=TREE, from /tmp so that
# the working directory does not shadow the tree (a "before" tree: `git archive REV | tar -x`,
# plus a built gamesync/native/_wire*.so). The bots run 22 s after a 2 s ramp and 5 s of
# warm-up; the CPU of both processes is read from /proc over 12 s in the middle of that.
# BOTS_PURE=1: the bots run their pure-Python path (GAMESYNC_PURE=1 for them only).
# prof / sprof: py-spy (PYSPY) records the bots / the server over those 12 s instead
# (raw format, to PROF_OUT, default /tmp/treepair-prof.txt; PYSPY_ARGS, e.g. --native, passed on). Prints one line: CPU figures and the bots' JSON fields.
BT=$1; ST=$2; P=$3; MODE=$4; PORT=$((19000 + RANDOM % 500))
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
PYSPY=${PYSPY:-py-spy}
PROF_OUT=${PROF_OUT:-/tmp/treepair-prof.txt}
OUT=$(mktemp -d)
cd /tmp || exit 1
PYTHONPATH=$ST $PY -m gamesync serve --port $PORT --host 127.0.0.1 --http-port -1 > $OUT/srv.log 2>&1 &
SP=$!
sleep 5
PYTHONPATH=$BT GAMESYNC_PURE=${BOTS_PURE:-${GAMESYNC_PURE:-}} $PY -m gamesync bots ws://127.0.0.1:$PORT --room arena --count $P --duration 22 --json \
    --no-progress > $OUT/bots.json 2> $OUT/bots.err &
BP=$!
sleep 14
a=$(awk '{print $14+$15}' /proc/$SP/stat); ba=$(awk '{print $14, $15}' /proc/$BP/stat); t0=$(date +%s.%N)
case "$MODE" in
    prof) $PYSPY record -p $BP -d 12 -r 250 $PYSPY_ARGS -f raw -o $PROF_OUT > /dev/null 2>&1 ;;
    sprof) $PYSPY record -p $SP -d 12 -r 250 $PYSPY_ARGS -f raw -o $PROF_OUT > /dev/null 2>&1 ;;
    *) sleep 12 ;;
esac
b=$(awk '{print $14+$15}' /proc/$SP/stat); bb=$(awk '{print $14, $15}' /proc/$BP/stat); t1=$(date +%s.%N)
wait $BP
kill -INT $SP; wait $SP 2>/dev/null
$PY - "$a" "$b" "$t0" "$t1" "$P" "$BT" "$ST" "$ba" "$bb" "$OUT/bots.json" <<'PYEND'
import json, sys
a, b, t0, t1, P = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
bu0, bs0 = map(int, sys.argv[8].split()); bu1, bs1 = map(int, sys.argv[9].split())
dt = t1 - t0
cpu = (b - a) / 100 / dt
bcpu = (bu1 + bs1 - bu0 - bs0) / 100 / dt
d = json.load(open(sys.argv[10]))
print("bots", sys.argv[6], "server", sys.argv[7], "P", P, "server_cpu", round(cpu, 3),
      "us/cl/tick", round(cpu / P / 30 * 1e6, 1), "bots_cpu", round(bcpu, 3),
      "(user %.3f sys %.3f)" % ((bu1 - bu0) / 100 / dt, (bs1 - bs0) / 100 / dt), "us/bot-s", round(bcpu / P * 1e6),
      {k: d.get(k) for k in ("states_per_client_s", "states_per_client_s_min", "ack_latency_ms_p50",  # .get: an old tree's bots lack some
                         "ack_latency_ms_p99", "payload_bytes_per_client_s", "inputs_per_client_s",
                         "decoded_share", "all_connected")})
PYEND
rm -rf "$OUT"
