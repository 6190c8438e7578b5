// Unit tests of the big-world page's logic that needs no browser: its movement rules come from
// the welcome's schema (the predictor then moves the player exactly as the server does on a
// square of any size), and the leak measure.

import assert from "node:assert/strict";
import { test } from "node:test";

import { prepareSchema } from "../js/codec.js";
import { farthestFrom, rulesOf } from "../js/big.js";
import { Predictor } from "../js/prediction.js";

// the bigworld schema for 100,000 NPCs (gamesync.games.arena.arena_schema(10000.0))
const BIG = prepareSchema([
  { name: "x", kind: "float", wire: "<u4", predict: "linear", lo: 0.0, hi: 10000.0, step: 0.015625 },
  { name: "y", kind: "float", wire: "<u4", predict: "linear", lo: 0.0, hi: 10000.0, step: 0.015625 },
  { name: "heading", kind: "angle", wire: "<u2", predict: "hold", bits: 12 },
]);

test("the world's size and grid come from the schema; the prediction clamps at its far wall", () => {
  const rules = rulesOf(BIG);
  assert.deepEqual(rules, { size: 10000, speed: 200, grid: 1 / 64 });
  const p = new Predictor(30, rules);
  p.reconcile(9990, 5000, 0);
  p.input(1, 1, 0); // 6.671875 units a tick
  assert.equal(p.x, 9996.671875);
  p.input(2, 1, 0);
  assert.equal(p.x, 10000);
});

test("farthestFrom is the largest distance to any entity held (0 for none)", () => {
  const world = { ids: [1, 2, 3], x: Float64Array.of(0, 300, 10), y: Float64Array.of(0, 400, 0) };
  assert.equal(farthestFrom(world, 0, 0), 500);
  assert.equal(farthestFrom({ ids: [], x: new Float64Array(0), y: new Float64Array(0) }, 5, 5), 0);
});
