#!/usr/bin/env bash
# Mutation testing of the sans-I/O core (gamesync/core) against its own tests (tests/core),
# with mutmut 3 as configured in pyproject.toml ([tool.mutmut]); prints the score per module.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: tools/mutation.sh [--help] [--jobs N] [--score-only] [MODULE ...]

Mutates gamesync/core/MODULE.py (default: delta protocol acks ratelimit plan), runs the
tests in tests/core against every mutant, and prints one line per module:
    MODULE  killed/checked  score%  survived N  (no tests N, timeout N)
then the name of every surviving mutant (inspect one with `mutmut show NAME`).
Equivalent survivors are listed with their reasons in docs/mutation.md.

  --jobs N       mutants run in parallel (default 1: the machine is shared)
  --score-only   print the score of the last run without running anything

Needs the mutation extra: pip install -e '.[mutation]'. Results live in ./mutants/
(git-ignored); delete it to start afresh. A whole run of the five default modules takes
tens of minutes with one job; a single module is a few minutes.
USAGE
}

jobs=1
score_only=0
modules=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --score-only) score_only=1; shift ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) modules+=("$1"); shift ;;
    esac
done
[ ${#modules[@]} -gt 0 ] || modules=(delta protocol acks ratelimit plan)

cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py=python3
if [ "$score_only" = 0 ]; then
    for m in "${modules[@]}"; do
        echo "== mutating gamesync/core/$m.py" >&2
        "$py" -m mutmut run --max-children "$jobs" "gamesync.core.$m.*" >&2 || true
    done
fi
"$py" -m mutmut results --all true 2>/dev/null | "$py" -c '
import collections, sys
wanted = sys.argv[1:]
by = collections.defaultdict(collections.Counter)
survivors = collections.defaultdict(list)
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    parts = name.split(".")
    if len(parts) < 4 or parts[:2] != ["gamesync", "core"] or parts[2] not in wanted:
        continue
    by[parts[2]][status] += 1
    if status == "survived":
        survivors[parts[2]].append(name)
for m in wanted:
    c = by[m]
    killed = c["killed"] + c["timeout"] + c["segfault"]
    checked = killed + c["survived"] + c["no tests"] + c["suspicious"]
    score = 100.0 * killed / checked if checked else 0.0
    survived, untested, timeout, unchecked = c["survived"], c["no tests"], c["timeout"], c["not checked"]
    print(f"{m:10s} {killed:4d}/{checked:<4d} {score:5.1f}%  survived {survived}"
          f"  (no tests {untested}, timeout {timeout}, not checked {unchecked})")
for m in wanted:
    for name in survivors[m]:
        print("  survived", name)
' "${modules[@]}"
