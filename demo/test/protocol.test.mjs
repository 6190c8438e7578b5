// Unit tests of demo/js beyond the shared vectors: the worked examples of docs/protocol.md,
// builders refusing what the server would refuse, inflating, and the mirror's edges.

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { test } from "node:test";

import { encode } from "@msgpack/msgpack";

import { Mirror } from "../js/mirror.js";
import { dequantise, FLAG_DEFLATE, inflate, inflateNode, inflateStream, prepareSchema } from "../js/codec.js";
import { decodeDelta } from "../js/delta.js";
import { DesyncError, ERROR_CLOSE, ProtocolViolation, shouldRetry } from "../js/errors.js";
import { Ev, Msg, packAck, packInput, packJoin, packLeave, packMessage, packMessageAck, packPing, parseEvent, parseServer } from "../js/messages.js";

const hexBytes = (s) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

// ---- docs/protocol.md section 15.3 -----------------------------------------------------------

const DOC_SCHEMA = [
  { name: "x", kind: "float", wire: "<u2", predict: "linear", lo: 0.0, hi: 1000.0, step: 0.015625 },
  { name: "heading", kind: "angle", wire: "<u2", predict: "linear", bits: 12 },
  { name: "hp", kind: "int", wire: "<u1", predict: "hold" },
];
const FULL_9 = hexBytes(`97 02 c4 00 c4 08 00 00 00 00 01 00 00 00 c4 08 01 00 00 00 02 00 00 00 93 c4 04 00 19
  00 7d c4 04 fa 0f 00 00 c4 02 64 64 93 91 00 91 00 91 00 c0`);
const DELTA_10 = hexBytes(`97 02 c4 00 c4 00 c4 00 93 c4 00 c4 00 c4 00 93 93 01 a3 3c 69 31 c4 01 40 93 01 a3 3c
  69 31 c4 01 04 93 01 a3 3c 69 31 c4 01 fd 92 a3 3c 75 31 c4 01 00`);
const DELTA_12 = hexBytes(`97 03 c4 04 01 00 00 00 c4 08 01 00 00 00 02 00 00 00 c4 08 03 00 00 00 04 00 00 00 93
  c4 04 00 32 00 fa c4 04 00 04 00 08 c4 02 64 32 93 91 00 91 00 93 01 a3 3c 69 31 c4 01 fe c0`);

// a state as [[slot, id, ...values], ...] of its live slots
const rows = (st) => {
  const out = [];
  for (let s = 0; s < st.n; s++) if (st.alive[s]) out.push([s, st.ids[s], ...st.cols.map((c) => c[s])]);
  return out;
};

test("the worked payloads of section 15.3 decode to the documented states", () => {
  const schema = prepareSchema(DOC_SCHEMA);
  const s9 = decodeDelta(schema, FULL_9, 9, null, null);
  assert.deepEqual(rows(s9), [[0, 1, 6400, 4090, 100], [1, 2, 32000, 0, 100]]);
  const s10 = decodeDelta(schema, DELTA_10, 10, s9, null);
  assert.deepEqual(rows(s10), [[0, 1, 6464, 4094, 97], [1, 2, 32000, 0, 100]]);
  const s12 = decodeDelta(schema, DELTA_12, 12, s10, s9);
  assert.deepEqual(rows(s12), [[0, 1, 6592, 6, 95], [1, 3, 12800, 1024, 100], [2, 4, 64000, 2048, 50]]);
  assert.equal(dequantise(schema[0], 6592), 103.0);
  assert.equal(dequantise(schema[1], 1024), Math.PI / 2);
  assert.equal(dequantise(schema[2], 95), 95);
});

test("the 32-bit predictions of section 10 (wrapped difference, floor division, reduction)", () => {
  const nothing = encode([1, new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), [new Uint8Array(0)], [[0]], null]);
  const one = (tick, v) => ({ tick, n: 1, alive: Uint8Array.of(1), ids: Uint32Array.of(1), cols: [Float64Array.of(v)] });
  for (const [wire, b, r, tb, br, want] of [
    ["<u4", 4294967290, 4294967280, 2, 1, 14],
    ["<u4", 3000000000, 0, 1, 2, 2352516352],
    ["<i4", 2147483646, 2147483640, 1, 2, -2147483647],
    ["<i4", -5, 0, 1, 2, -8], // floor(-5 / 2) = -3, not -2
  ]) {
    const schema = [{ name: "c", kind: "int", wire, predict: "linear" }];
    const st = decodeDelta(schema, nothing, 10 + tb, one(10, b), one(10 - br, r));
    assert.equal(st.cols[0][0], want, `${wire} b=${b} r=${r}`);
  }
});

// ---- schema ------------------------------------------------------------------------------------

test("prepareSchema derives each field's modulus and reduction", () => {
  const s = prepareSchema([
    { name: "a", kind: "angle", wire: "<u2", predict: "linear", bits: 12 },
    { name: "b", kind: "angle", wire: "<u4", predict: "hold", bits: 32 },
    { name: "c", kind: "int", wire: "<i4", predict: "linear" },
    { name: "d", kind: "float", wire: "<u4", predict: "linear", lo: -1e6, hi: 1e6, step: 1 / 1024 },
    { name: "e", kind: "int", wire: "<i2" }, // predict left out: linear, as the Python client reads it
  ]);
  assert.deepEqual(s.map((f) => f.M), [4096, 2 ** 32, 2 ** 32, 2 ** 32, 0]);
  assert.deepEqual(s.map((f) => f.hold), [false, true, false, false, false]);
  assert.equal(s[0].red(-1), 4095);
  assert.equal(s[1].red(2 ** 32 + 5), 5);
  assert.equal(s[2].red(2 ** 31), -(2 ** 31));
  assert.equal(s[3].red(-1), 2 ** 32 - 1);
  assert.equal(s[4].red, null);
  assert.equal(s[4].predict, "linear");
  assert.equal(prepareSchema(s), s); // already prepared
  // a float's or angle's wire dtype must be the one its range implies
  assert.throws(() => prepareSchema([{ ...DOC_SCHEMA[0], wire: "<u4" }]), ProtocolViolation);
  assert.throws(() => prepareSchema([{ ...DOC_SCHEMA[1], wire: "<u1" }]), ProtocolViolation);
});

// ---- builders ------------------------------------------------------------------------------------

test("builders refuse what the server would refuse", () => {
  const bad = [
    () => packJoin("", "a"),
    () => packJoin("r", "n".repeat(65)),
    () => packJoin("r", "🎮".repeat(65)),
    () => packJoin("r", "a", { game: "" }),
    () => packJoin("r", "a", { token: 5 }),
    () => packJoin("r", "a", { resume: "x".repeat(2049) }),
    () => packJoin("r", "a", { version: -1 }),
    () => packInput(0, [0, 0]),
    () => packInput(1.5, [0, 0]),
    () => packInput(2 ** 53, [0, 0]),
    () => packInput(1, [0, 0], -1),
    () => packInput(1, [0, 0], 5, 2 ** 32),
    () => packInput(1, [0, 0], 5, -1),
    () => packInput(1, new Date()),
    () => packInput(1, { when: new Date() }),
    () => packInput(1, 5n),
    () => packAck(-1),
    () => packAck(1, 1.5),
    () => packMessage("x", -1),
    () => packMessageAck("3"),
    () => packMessageAck(3, new Date()),
    () => packPing(NaN),
    () => packPing("now"),
  ];
  bad.forEach((fn, i) => assert.throws(fn, ProtocolViolation, `case ${i}: ${fn}`));
  // nesting: 32 levels of arrays pass, 33 do not
  const nest = (d) => (d === 0 ? 1 : [nest(d - 1)]);
  assert.ok(packMessage(nest(32)));
  assert.throws(() => packMessage(nest(33)), ProtocolViolation);
  assert.deepEqual([...packLeave()], [0x91, 0x0b]);
  // a reply to the server's request: [7, ack_id, reply], nil included
  assert.deepEqual([...packMessageAck(3)], [0x92, 0x07, 0x03]);
  assert.deepEqual([...packMessageAck(3, 5)], [0x93, 0x07, 0x03, 0x05]);
  assert.deepEqual([...packMessageAck(3, null)], [0x93, 0x07, 0x03, 0xc0]);
  assert.deepEqual([...packInput(1, new Uint8Array([1, 2]))], [0x93, 0x03, 0x01, 0xc4, 0x02, 0x01, 0x02]);
});

test("section 15.1 message bytes", () => {
  const hex = (b) => Buffer.from(b).toString("hex");
  assert.equal(hex(packJoin("r1", "alice")), "9401" + "05a27231a5616c696365");
  assert.equal(hex(packInput(5, [1, 0], 120, 2147483651)), "95030592010078ce80000003");
  assert.equal(hex(packAck(120, 5)), "930578" + "05");
  assert.equal(hex(packMessage({ chat: "gg" }, 7)), "930681a463686174a2676707");
  assert.equal(hex(packPing(1234.5)), "9208cb40934a0000000000");
});

// ---- parsers -------------------------------------------------------------------------------------

test("parseServer reads a welcome of 9 fields and ignores fields past 11", () => {
  const old = parseServer(encode([2, 2, 5, "r", "arena", 30, 0, DOC_SCHEMA, 32]));
  assert.equal(old.resumeToken, null);
  assert.equal(old.resumed, false);
  const later = parseServer(encode([2, 2, 5, "r", "arena", 30.5, 0, DOC_SCHEMA, 32, "tok", true, "future", 1]));
  assert.deepEqual([later.clientId, later.tickRate, later.resumeToken, later.resumed], [5, 30.5, "tok", true]);
  const err = parseServer(encode([10, "room_full", "room r is full"]));
  assert.deepEqual([err.code, err.closeCode, shouldRetry(err.code)], ["room_full", 4002, true]);
  assert.equal(parseServer(encode([10, "something_new", "?"])).closeCode, null);
});

test("parseEvent reads every event kind", () => {
  assert.deepEqual(parseEvent([0, { you: 5 }]), { kind: Ev.EVENT, data: { you: 5 } });
  assert.deepEqual(parseEvent([1, "m", 3]), { kind: Ev.RELIABLE, data: "m", ackId: 3 });
  assert.deepEqual(parseEvent([2, 4, "bob"]), { kind: Ev.JOINED, clientId: 4, name: "bob" });
  assert.deepEqual(parseEvent([3, 4]), { kind: Ev.LEFT, clientId: 4 });
  assert.deepEqual(parseEvent([4, 7]), { kind: Ev.MESSAGE_ACK, ackId: 7 });
  assert.deepEqual(parseEvent([5, 1234.5]), { kind: Ev.PONG, time: 1234.5 });
});

// ---- inflating -----------------------------------------------------------------------------------

test("both inflaters inflate zlib, refuse garbage and stop at the limit", async () => {
  const data = new Uint8Array(10000).map((_, i) => (i * 7) % 251);
  const z = new Uint8Array(deflateSync(data));
  for (const inflate of [inflateStream, inflateNode]) {
    assert.deepEqual(await inflate(z), data, inflate.name);
    assert.deepEqual(await inflate(z.subarray(0)), data); // a view works as well
    await assert.rejects(inflate(z, 5000), DesyncError, `${inflate.name}: limit`);
    await assert.rejects(inflate(hexBytes("789c0102036761726261676521")), DesyncError, `${inflate.name}: garbage`);
    await assert.rejects(inflate(new Uint8Array([1, 2, 3])), DesyncError, `${inflate.name}: no header`);
  }
  assert.equal(inflate, inflateStream); // DecompressionStream is there in Node 20 as in browsers
});

// ---- mirror --------------------------------------------------------------------------------------

test("mirror: empty, lookups, ack bit 31 unsigned, desync on a missing baseline", async () => {
  const m = new Mirror(DOC_SCHEMA, 40); // the welcome's schema as it comes
  assert.deepEqual([m.tick, m.latest, m.ackBits(), m.size, m.slotOf(1), m.entity(1)], [-1, null, 0, 0, -1, null]);
  await m.apply(0, -1, -1, 0, FULL_9);
  assert.equal(await m.apply(0, -1, -1, 0, FULL_9), null); // not newer: ignored
  assert.equal(await m.apply(0, -1, -1, 1, new Uint8Array([1])), null); // ... without being decoded
  await m.apply(32, -1, -1, FLAG_DEFLATE, new Uint8Array(deflateSync(FULL_9)));
  assert.deepEqual(m.ticks(), [0, 32]); // a full snapshot keeps `history` ticks behind it
  assert.equal(m.ackBits(), 2 ** 31);
  assert.equal(m.baseOf(32), -1);
  assert.deepEqual(m.entity(2), { id: 2, slot: 1, q: { x: 32000, heading: 0, hp: 100 }, v: { x: 500, heading: 0, hp: 100 } });
  assert.equal(m.slotOf(3), -1);
  assert.deepEqual(m.ids(), [1, 2]);
  await assert.rejects(m.apply(40, 33, -1, 0, DELTA_10), DesyncError);
  await assert.rejects(m.apply(40, 32, 31, 0, DELTA_10), DesyncError);
  await assert.rejects(m.apply(40, 32, -1, 0, FULL_9), DesyncError); // creates slots alive in the baseline
  await assert.rejects(m.apply(40, 32, -1, 0, DELTA_10.subarray(0, 20)), DesyncError); // truncated
  assert.deepEqual([m.tick, m.ticks()], [32, [0, 32]]);
  const st = await m.applySnapshot({ tick: 33, base: 32, ref: -1, flags: 0, payload: DELTA_10 });
  assert.deepEqual(rows(st), [[0, 1, 6464, 4094, 97], [1, 2, 32000, 0, 100]]);
  // keep from base - 1 on, plus their baselines; as with mirror.py, tick 0 stays a while (the
  // prune is put off while a kept full snapshot's base, -1, makes the counts agree)
  assert.deepEqual(m.ticks(), [0, 32, 33]);
  const same = encode([2, new Uint8Array(0), new Uint8Array(0), new Uint8Array(0),
    [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)], [[0], [0], [0]], null]);
  await m.apply(34, 33, 32, 0, same);
  assert.deepEqual(m.ticks(), [0, 32, 33, 34]);
  assert.deepEqual(m.entity(1).q, { x: 6528, heading: 2, hp: 97 }); // linear x and heading (mod 4096), hold hp
  await m.apply(35, 34, 33, 0, same);
  assert.deepEqual(m.ticks(), [32, 33, 34, 35]);
  assert.deepEqual(m.entity(1).q, { x: 6592, heading: 6, hp: 97 });
});

test("parseServer reads a redirect and refuses one that goes nowhere sensible", () => {
  const r = parseServer(encode([12, "ws://10.0.0.2:8765/?resv=abc", "arena", 5000, "later field"]));
  assert.deepEqual(r, { type: Msg.REDIRECT, url: "ws://10.0.0.2:8765/?resv=abc", room: "arena", ttlMs: 5000 });
  assert.equal(ERROR_CLOSE.redirect, 4012);
  assert.equal(ERROR_CLOSE.unavailable, 4013);
  assert.ok(shouldRetry("unavailable")); // retried with backoff
  assert.ok(shouldRetry("redirect"));
  for (const bad of [[12, "http://x/", "arena", 1], [12, "ws://x/", "", 1], [12, "ws://x/", "arena", -1],
                     [12, "ws://x/", "arena"], [12, `ws://${"x".repeat(3000)}/`, "arena", 1]]) {
    assert.throws(() => parseServer(encode(bad)), ProtocolViolation, JSON.stringify(bad).slice(0, 40));
  }
});
