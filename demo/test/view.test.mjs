// The JavaScript view decoder (demo/js/view.js) against the shared view-room vectors
// (`view_sequences` in tests/vectors/snapshots.json, made by tests/vectors/view_vectors.py
// with the real server-side planner and the Python client's ViewMirror): every state, bit for
// bit, the cells watched, and every refusal; then the edges the vectors do not reach.
//
//   node --test demo/test/          (GAMESYNC_VECTORS=path overrides the vectors file)

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

import { encode } from "@msgpack/msgpack";

import { dequantise, inflateNode, inflateStream, prepareSchema } from "../js/codec.js";
import { DesyncError, ProtocolViolation } from "../js/errors.js";
import { Msg, NO_TICK, parseServer } from "../js/messages.js";
import { decodeView, parseGrid, unpackView, VIEW_FLAGS, ViewMirror } from "../js/view.js";
import { readMask, readVarint, recordLayout, widthFor } from "../js/viewwire.js";

const path = process.env.GAMESYNC_VECTORS
  || fileURLToPath(new URL("../../tests/vectors/snapshots.json", import.meta.url));
const V = JSON.parse(readFileSync(path, "utf8"));

const bytes = (s) => new Uint8Array(Buffer.from(s, "base64"));
const TYPED = { "<i1": Int8Array, "<i2": Int16Array, "<i4": Int32Array, "<u1": Uint8Array, "<u2": Uint16Array, "<u4": Uint32Array };

// a decoded state's digest, as tests/vectors/view_vectors.py's state_digest computes it: the
// SHA-256 of its live slots (<u4), their ids (<u4), then each field's values of the live slots
// in the field's wire dtype
function stateDigest(schema, st) {
  const live = [];
  for (let s = 0; s < st.n; s++) if (st.alive[s]) live.push(s);
  const h = createHash("sha256");
  const put = (T, values) => h.update(new Uint8Array(T.from(values).buffer));
  put(Uint32Array, live);
  put(Uint32Array, live.map((s) => st.ids[s]));
  schema.forEach((f, i) => put(TYPED[f.wire], live.map((s) => st.cols[i][s])));
  return { tick: st.tick, n: st.n, count: live.length, sha256: h.digest("hex") };
}

// a decoded state is the expected one, bit for bit (its digest), with zeros in the slots not held
function assertState(schema, st, want, where) {
  assert.deepEqual(stateDigest(schema, st), want, `${where}: state`);
  for (let s = 0; s < st.n; s++) {
    if (!st.alive[s]) assert.ok(st.ids[s] === 0 && st.cols.every((c) => c[s] === 0), `${where}: slot ${s} not held`);
  }
}

const held = (m) => ({ tick: m.tick, prev: m.prev, cells: new Map(m.cells), latest: m.latest });

async function runSequence(seq, inflate) {
  let mirror = null;
  const counts = { snapshots: 0, desyncs: 0 };
  for (const [i, step] of seq.steps.entries()) {
    const where = `${seq.name} step ${i}`;
    const e = step.expect;
    const m = parseServer(bytes(step.msg));
    if (e.welcome) {
      assert.equal(m.type, Msg.WELCOME, where);
      assert.deepEqual([m.version, m.clientId, m.room, m.game, m.history, m.view],
        [e.welcome.version, e.welcome.client_id, e.welcome.room, e.welcome.game, e.welcome.history, e.welcome.view], where);
      mirror = new ViewMirror(m.schema, m.view, { inflate, packed: m.version >= 5 });
      continue;
    }
    assert.equal(m.type, Msg.SNAPSHOT, where);
    if (e.desync) {
      const before = held(mirror);
      await assert.rejects(mirror.applySnapshot(m), (err) => err instanceof DesyncError && err.closeCode === 4010,
        `${where}: ${e.desync}`);
      assert.deepEqual(held(mirror), before, `${where}: a refused snapshot changes nothing`);
      counts.desyncs += 1;
      continue;
    }
    assert.deepEqual({ tick: m.tick, base: m.base, ref: m.ref, input_ack: m.inputAck, flags: m.flags }, e.snapshot, where);
    assert.deepEqual(m.events, e.events ?? [], `${where}: events`);
    const st = await mirror.applySnapshot(m);
    counts.snapshots += 1;
    if (e.state === null) {
      assert.equal(st, null, `${where}: a stale snapshot is ignored`);
      continue;
    }
    assertState(mirror.schema, st, e.state, where);
    assert.equal(mirror.latest, st, where);
    assert.equal(mirror.get(st.tick), st, where);
    assert.deepEqual(mirror.watched(), e.cells, `${where}: cells watched`);
    assert.equal(mirror.count, e.state.count, `${where}: entities held`);
    const ids = mirror.ids();
    assert.equal(ids.length, e.state.count, where);
    for (const id of ids) { // lookup by entity id, as a page does
      const ent = mirror.entity(id);
      assert.equal(st.ids[ent.slot], id, `${where}: entity ${id}`);
      mirror.schema.forEach((f, i) => assert.equal(ent.v[f.name], dequantise(f, st.cols[i][ent.slot])));
    }
  }
  return counts;
}

const INFLATERS = [["DecompressionStream", inflateStream], ["node:zlib", inflateNode]];

for (const seq of V.view_sequences) {
  for (const [name, inflate] of INFLATERS) {
    test(`view sequence ${seq.name}, inflated with ${name}`, async () => {
      const n = await runSequence(seq, inflate);
      assert.ok(n.snapshots > 0);
    });
  }
}

test("the view vectors cover what they claim", () => {
  const c = V.view_coverage;
  let snapshots = 0, desyncs = 0;
  for (const seq of V.view_sequences) {
    for (const { expect: e } of seq.steps) {
      if (e.snapshot) snapshots += 1;
      if (e.desync) desyncs += 1;
    }
  }
  assert.equal(snapshots, c.snapshots);
  assert.equal(desyncs, c["desync cases"]);
  assert.ok(snapshots >= 90 && desyncs >= 30 && c["deflated listings"] > 0 && c["enter records deflated"] > 0);
  for (const k of ["residuals <i1", "residuals <i2", "residuals <i4", "left positions <u2", "changed positions <u2"]) {
    assert.ok(c[k] > 0, k);
  }
});

test("queued applies of a whole view sequence run in order", async () => {
  const seq = V.view_sequences.find((s) => s.name === "view_wraps");
  let mirror = null;
  const pending = [];
  for (const step of seq.steps) {
    const m = parseServer(bytes(step.msg));
    if (m.type === Msg.WELCOME) mirror = new ViewMirror(m.schema, m.view, { packed: m.version >= 5 });
    else pending.push([step.expect, mirror.applySnapshot(m)]);
  }
  for (const [e, run] of pending) assertState(mirror.schema, await run, e.state, `queued tick ${e.state.tick}`);
});

// ---- edges beyond the vectors ----------------------------------------------------------------------

const SCHEMA = prepareSchema([
  { name: "x", kind: "float", wire: "<u2", predict: "linear", lo: 0.0, hi: 1000.0, step: 0.015625 },
  { name: "y", kind: "float", wire: "<u2", predict: "linear", lo: 0.0, hi: 1000.0, step: 0.015625 },
  { name: "a", kind: "angle", wire: "<u2", predict: "hold", bits: 12 },
]);
const GRID = { cell: 100.0, cols: 10, rows: 10, x0: 0.0, y0: 0.0, radius: 150.0, everyone: 100 };
const LAYOUT = recordLayout(SCHEMA); // slot, id, ref, x, y, a, back x, back y: 9 + 6 + 4 bytes

function records(list) { // [slot, id, ref, x, y, a, backX, backY]
  const out = new Uint8Array(list.length * LAYOUT.size), v = new DataView(out.buffer);
  list.forEach(([slot, id, ref, x, y, a, bx = 0, by = 0], j) => {
    const o = j * LAYOUT.size;
    v.setUint32(o, slot, true); v.setUint32(o + 4, id, true); v.setUint8(o + 8, ref);
    v.setUint16(o + 9, x, true); v.setUint16(o + 11, y, true); v.setUint16(o + 13, a, true);
    v.setInt16(o + 15, bx, true); v.setInt16(o + 17, by, true);
  });
  return out;
}
const u4 = (...xs) => new Uint8Array(Uint32Array.from(xs).buffer);
const view = (dropped, kept, added, enter = [0, new Uint8Array(0)]) => encode([dropped, kept, added, enter]);
const rowsOf = (st) => [...st.alive.keys()].filter((s) => st.alive[s]).map((s) => [s, st.ids[s], ...st.cols.map((c) => c[s])]);

test("a record's back-difference gives the prediction its slope; a cell's chunk moves the members", async () => {
  assert.equal(LAYOUT.size, 19);
  const m = new ViewMirror(SCHEMA, GRID);
  // tick 10, full: two entities in cell 0, one with a reference (it moved by +64, +0 since the tick before)
  await m.apply(10, NO_TICK, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array(0),
    [[0, 2, 0, records([[3, 30, 1, 640, 640, 5, 64, 0], [9, 90, 0, 100, 100, 4095]])]]));
  assert.deepEqual(rowsOf(m.latest), [[3, 30, 640, 640, 5], [9, 90, 100, 100, 4095]]);
  // tick 11 on 10, no reference: nothing moves, entity 90's angle steps across 0 (residual +2)
  // and x jumps by +300 (an <i2 residual); mask: x code 2, a code 1
  const chunk = Uint8Array.of(8, 1, 1, 0b010010, 0x2c, 0x01, 2);
  let st = await m.apply(11, 10, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), chunk, []));
  assert.deepEqual(rowsOf(st), [[3, 30, 640, 640, 5], [9, 90, 400, 100, 1]]);
  // tick 13 on 11, reference 10, nothing in the chunk: each carries on at its rate from 10 to
  // 11 for two ticks (30 stood still; 90 moved +300 in x); a hold angle stays
  st = await m.apply(13, 11, 10, VIEW_FLAGS, view(new Uint8Array(0), Uint8Array.of(0), []));
  assert.deepEqual(rowsOf(st), [[3, 30, 640, 640, 5], [9, 90, 1000, 100, 1]]);
  assert.equal(m.tick, 13);
  assert.equal(m.prev, 11);
});

test("members walk between kept cells, leave the view, and arrive from outside with a record", async () => {
  const m = new ViewMirror(SCHEMA, GRID);
  await m.apply(1, NO_TICK, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array(0),
    [[0, 2, 0, records([[1, 11, 0, 6000, 10, 0], [2, 12, 0, 20, 20, 0]])], [1, 0, 0, new Uint8Array(0)]]));
  // slot 1 walks from cell 0 into cell 1 (x 6000 -> 6400: it keeps its values, the residual moves it);
  // slot 2 leaves the view; slot 7 arrives in cell 1 from a cell not watched (enter record)
  const c0 = Uint8Array.of(1, 2, 0, 1); // left: positions 0 and 1
  // arrived 1 and 7; changed positions 0 and 1, x residuals +300 and +5 (<i2): the one at the
  // enter record's position is ignored, its record carries its value
  const c1 = Uint8Array.of(2 | 8, 2, ...u4(1, 7), 2, 0, 1, 0b10, 0x2c, 0x01, 5, 0);
  const enter = [0, records([[7, 17, 1, 6500, 30, 9, 10, 0]])];
  const st = await m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array([...c0, ...c1]), [], enter));
  assert.deepEqual(rowsOf(st), [[1, 11, 6300, 10, 0], [7, 17, 6500, 30, 9]]);
  assert.deepEqual(m.watched(), [0, 1]);
  assert.equal(m.cells.get(1).ref[0][1], 6490); // the enter record's value at the tick before
});

test("an arrival neither held nor entering, and a slot in two cells, are desyncs", async () => {
  const m = new ViewMirror(SCHEMA, GRID);
  await m.apply(1, NO_TICK, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array(0),
    [[0, 1, 0, records([[1, 11, 0, 10, 10, 0]])], [1, 0, 0, new Uint8Array(0)]]));
  const arrive = Uint8Array.of(0, 2, 1, ...u4(5));
  await assert.rejects(m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), arrive, [])), DesyncError);
  const twice = [0, records([[1, 11, 1, 10, 10, 0]])]; // slot 1 enters cell 1 while cell 0 still holds it
  await assert.rejects(m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), Uint8Array.of(0, 2, 1, ...u4(1)), [], twice)),
    /held in two cells/);
  const spawnRef = Uint8Array.of(4, 1, ...records([[4, 40, 2, 0, 0, 0]])); // a reference flag of 2
  await assert.rejects(m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array([...spawnRef, 0]), [])),
    /reference flag/);
  const readd = [[0, 0, 0, new Uint8Array(0)]]; // cell 0 dropped and added back in one payload
  await assert.rejects(m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(u4(0), Uint8Array.of(0), readd)), /ascend and be new/);
  assert.equal(m.tick, 1);
});

test("deflated record lists inflate with either inflater; past the limit is a desync", async () => {
  const list = records(Array.from({ length: 40 }, (_, j) => [j, j + 1, 0, 100 * j, 50, 7]));
  for (const inflate of [inflateStream, inflateNode]) {
    const m = new ViewMirror(SCHEMA, GRID, { inflate });
    const st = await m.apply(1, NO_TICK, NO_TICK, VIEW_FLAGS,
      view(new Uint8Array(0), new Uint8Array(0), [[0, 40, 1, new Uint8Array(deflateSync(list))]]));
    assert.equal(m.count, 40);
    assert.deepEqual(rowsOf(st)[39], [39, 40, 3900, 50, 7]);
  }
  const m = new ViewMirror(SCHEMA, GRID, { inflate: (b) => inflateNode(b, 100) });
  await assert.rejects(m.apply(1, NO_TICK, NO_TICK, VIEW_FLAGS,
    view(new Uint8Array(0), new Uint8Array(0), [[0, 40, 1, new Uint8Array(deflateSync(list))]])), DesyncError);
});

test("positions are 1, 2 or 4 bytes by list length; counts are LEB128 up to 35 bits", () => {
  assert.deepEqual([0, 256, 257, 65536, 65537].map(widthFor), [1, 1, 2, 2, 4]);
  assert.deepEqual(readVarint(Uint8Array.of(0xac, 0x02), 0), [300, 2]);
  assert.deepEqual(readVarint(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f), 0), [2 ** 35 - 1, 5]);
  assert.throws(() => readVarint(Uint8Array.of(0x80, 0x80), 0), DesyncError);
});

test("a field mask is a varint of two bits per field, up to 62 bits (more than a Number holds exactly)", () => {
  const mask = (...b) => Uint8Array.of(...b);
  assert.deepEqual(readMask(mask(0b1010), 0, 1, 3), [[2, 2, 0], 1]); // x and y as <i2
  assert.deepEqual(readMask(mask(0x80, 0x01), 0, 2, 5), [[0, 0, 0, 2, 0], 2]); // field 3 <i2: bit 7
  // 31 fields, the last one <i4 (bits 60 and 61) and the first <i1: nine bytes
  const far = [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x30];
  const [codes, at] = readMask(Uint8Array.from(far), 0, 9, 31);
  assert.equal(at, 9);
  assert.deepEqual([codes[0], codes[30], codes.slice(1, 30).every((c) => c === 0)], [1, 3, true]);
  assert.throws(() => readMask(Uint8Array.from(far), 0, 9, 30), /does not have/); // bit 60 of 30 fields
  assert.throws(() => readMask(Uint8Array.from([...far.slice(0, 8).map((b) => b | 0x80), 0x80, 0]), 0, 10, 31), /longer than 9/);
  assert.throws(() => readMask(mask(0x80), 0, 1, 3), /ends inside/);
});

test("a chunk with 4-byte positions (a cell of more than 65536 members)", async () => {
  const k = 65537, m = new ViewMirror(SCHEMA, GRID);
  const big = records(Array.from({ length: k }, (_, j) => [j, j + 1, 0, j % 60000, 5, 0]));
  await m.apply(1, NO_TICK, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), new Uint8Array(0), [[0, k, 0, big]]));
  // left: the last member (position 65536 as <u4); changed: position 65535 (of 65536 now: <u2), y +1
  const chunk = Uint8Array.of(1 | 8, 1, ...u4(65536), 1, 0xff, 0xff, 0b0100, 1);
  const st = await m.apply(2, 1, NO_TICK, VIEW_FLAGS, view(new Uint8Array(0), chunk, []));
  assert.equal(m.count, 65536);
  assert.deepEqual(rowsOf(st).at(-1), [65535, 65536, 5535, 6, 0]);
});

test("the welcome's view: parsed under version 4, its grid checked", () => {
  const w = parseServer(encode([2, 4, 1, "big", "bigworld", 30.0, 0, [], 32, "tok", false, GRID]));
  assert.deepEqual(w.view, GRID);
  assert.equal(parseServer(encode([2, 3, 1, "big", "bigworld", 30.0, 0, [], 32, "tok", false, GRID])).view, null);
  assert.throws(() => parseServer(encode([2, 4, 1, "big", "bigworld", 30.0, 0, [], 32, "tok", false, [1]])), ProtocolViolation);
  assert.equal(parseGrid(GRID).count, 100);
  for (const bad of [{ ...GRID, cell: 0 }, { ...GRID, cols: 1.5 }, { ...GRID, everyone: 99 }, { ...GRID, radius: "x" }]) {
    assert.throws(() => parseGrid(bad), ProtocolViolation);
  }
  assert.throws(() => unpackView(encode([new Uint8Array(0), new Uint8Array(0), [], [0]])), DesyncError);
  assert.throws(() => decodeView(SCHEMA, LAYOUT, { cells: new Map(), tick: 5, prev: 4 }, 7, 6, 5,
    { dropped: new Uint8Array(0), kept: new Uint8Array(0), added: [], enter: new Uint8Array(0) }), /built on 6/);
});
