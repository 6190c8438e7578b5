"""docs/protocol.md's Appendix A, the reference payload decoder in JavaScript, exactly as
printed, run in Node on every snapshot of the test vectors (tests/vectors/snapshots.json):
each state it decodes is the expected one, and it refuses every payload the vectors say a
client must refuse as a desync."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
VECTORS = ROOT / "tests" / "vectors" / "snapshots.json"

# Replays the vectors' sessions through the listing (./listing.mjs): the held states by tick,
# pruned to what the vectors say the client holds after each step.
RUNNER = r"""
import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { decode } from "@msgpack/msgpack";
import { decodePayload, prepareSchema } from "./listing.mjs";

const V = JSON.parse(readFileSync(process.argv[2], "utf8"));
const bytes = (s) => new Uint8Array(Buffer.from(s, "base64"));
const out = { decoded: 0, refused: 0, problems: [] };
for (const seq of V.sequences) {
  let schema = null;
  const held = new Map();
  for (const [i, step] of seq.steps.entries()) {
    const e = step.expect, where = `${seq.name} step ${i}`;
    if (e.welcome) { schema = prepareSchema(e.welcome.schema); held.clear(); continue; }
    if (e.error || e.state === null) continue;                  // an error; a stale snapshot
    const [, tick, base, ref, , flags, payload] = decode(bytes(step.msg));
    const run = () => {
      if ((base !== -1 && !held.has(base)) || (ref !== -1 && !held.has(ref))) throw new Error("not held");
      const raw = flags & 1 ? new Uint8Array(inflateSync(payload)) : payload;
      return decodePayload(schema, raw, tick, held.get(base) ?? null, held.get(ref) ?? null);
    };
    if (e.desync) {
      try { run(); out.problems.push(`${where}: ${e.desync}: not refused`); } catch { out.refused += 1; }
      continue;
    }
    const st = run(), want = e.state;
    const live = [];
    for (let s = 0; s < st.n; s++) if (st.alive[s]) live.push(s);
    const got = { tick: st.tick, n: st.n, slots: live, ids: live.map((s) => st.ids[s]), fields: {} };
    schema.forEach((f, j) => { got.fields[f.name] = live.map((s) => st.cols[j][s]); });
    if (JSON.stringify(got) !== JSON.stringify(want)) out.problems.push(`${where}: decoded ${JSON.stringify(got).slice(0, 300)}`);
    held.set(tick, st);
    for (const t of [...held.keys()]) if (!e.held.includes(t)) held.delete(t);
    out.decoded += 1;
  }
}
console.log(JSON.stringify(out));
"""


def listing() -> str:
    appendix = DOC.read_text().split("## Appendix A", 1)[1]
    (code,) = re.findall(r"```js\n(.*?)```", appendix, re.S)
    return code


def test_the_appendix_decoder_decodes_every_vector_and_refuses_every_desync(tmp_path: Path) -> None:
    node, modules = shutil.which("node"), ROOT / "demo" / "node_modules"
    if node is None:
        pytest.fail("node is not installed (the demo's tests need it too)")
    if not (modules / "@msgpack" / "msgpack").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT / "demo", check=True,
                       timeout=300, capture_output=True)
    (tmp_path / "node_modules").symlink_to(modules)
    (tmp_path / "listing.mjs").write_text(listing())
    (tmp_path / "run.mjs").write_text(RUNNER)
    done = subprocess.run([node, "run.mjs", str(VECTORS)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    vectors = json.loads(VECTORS.read_text())
    assert not out["problems"], out["problems"][:5]
    assert out["refused"] == vectors["coverage"]["desync cases"]
    assert out["decoded"] >= 100
