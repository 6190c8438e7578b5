// The JavaScript client against the shared test vectors (tests/vectors/snapshots.json, made by
// tests/vectors/make_vectors.py from the real server-side codec and the Python client):
// every server message goes through parseServer and the Mirror, and what comes out must be
// what the Python client got, byte for byte: states, ack bits, held ticks, replies.
//
//   node --test demo/test/          (GAMESYNC_VECTORS=path overrides the vectors file)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { decode } from "@msgpack/msgpack";

import { Mirror } from "../js/mirror.js";
import { dequantise, inflateNode, inflateStream, prepareSchema } from "../js/codec.js";
import { DesyncError, ERROR_CLOSE, ProtocolViolation } from "../js/errors.js";
import * as messages from "../js/messages.js";
import { Ev, Msg, packAck, packMessageAck, parseEvent, parseServer } from "../js/messages.js";

const path = process.env.GAMESYNC_VECTORS
  || fileURLToPath(new URL("../../tests/vectors/snapshots.json", import.meta.url));
const V = JSON.parse(readFileSync(path, "utf8"));

const bytes = (s) => new Uint8Array(Buffer.from(s, "base64"));
const hex = (b) => Buffer.from(b).toString("hex");
const TYPED = { "<i1": Int8Array, "<i2": Int16Array, "<i4": Int32Array, "<u1": Uint8Array, "<u2": Uint16Array, "<u4": Uint32Array };

// ---- client messages ---------------------------------------------------------------------------

test("builders pack every client message exactly as the Python builders do", () => {
  assert.ok(V.client_messages.length >= 15);
  for (const { call, args, bytes: want } of V.client_messages) {
    assert.equal(hex(messages[call](...args)), hex(bytes(want)), `${call}(${JSON.stringify(args)})`);
  }
});

// ---- refusals -----------------------------------------------------------------------------------

const isProtocolError = (e) => e instanceof ProtocolViolation && e.code === "protocol" && e.closeCode === 1002;

test("parseServer refuses every message the Python client refuses", () => {
  assert.ok(V.bad_server_messages.length >= 30);
  for (const { why, msg } of V.bad_server_messages) {
    assert.throws(() => parseServer(bytes(msg)), isProtocolError, why);
  }
});

test("prepareSchema refuses every welcome schema the Python client refuses", () => {
  assert.ok(V.bad_welcomes.length >= 10);
  for (const { why, msg } of V.bad_welcomes) {
    const w = parseServer(bytes(msg)); // a well-formed welcome ...
    assert.equal(w.type, Msg.WELCOME, why);
    assert.throws(() => prepareSchema(w.schema), isProtocolError, why); // ... with a bad schema
    assert.throws(() => new Mirror(w.schema, w.history), isProtocolError, why);
  }
});

test("parseEvent refuses every event entry the Python client refuses", () => {
  assert.ok(V.bad_events.length >= 10);
  for (const { why, event } of V.bad_events) {
    assert.throws(() => parseEvent(decode(bytes(event))), isProtocolError, why);
  }
});

// ---- sequences ----------------------------------------------------------------------------------

// a decoded state equals the expected one: slots, ids, every field's wire value (and zeros
// in the dead slots), compared as numbers and as the bytes of the field's wire dtype
function assertState(schema, st, want, where) {
  assert.equal(st.tick, want.tick, `${where}: tick`);
  assert.equal(st.n, want.n, `${where}: n`);
  const live = [];
  for (let s = 0; s < st.n; s++) if (st.alive[s]) live.push(s);
  assert.deepEqual(live, want.slots, `${where}: live slots`);
  assert.deepEqual(live.map((s) => st.ids[s]), want.ids, `${where}: ids`);
  schema.forEach((f, i) => {
    const col = st.cols[i];
    const got = live.map((s) => col[s]);
    assert.deepEqual(got, want.fields[f.name], `${where}: field ${f.name}`);
    const T = TYPED[f.wire];
    assert.equal(hex(new Uint8Array(T.from(got).buffer)), hex(new Uint8Array(T.from(want.fields[f.name]).buffer)),
      `${where}: field ${f.name} as ${f.wire}`);
    for (let s = 0; s < st.n; s++) if (!st.alive[s]) assert.ok(col[s] === 0 && st.ids[s] === 0, `${where}: dead slot ${s}`);
  });
}

// what the mirror holds, to check that a refused snapshot changed nothing
const held = (m) => ({ tick: m.tick, ticks: m.ticks(), latest: m.latest, bits: m.ackBits() });

// feed one sequence through parseServer and a Mirror, step by step, checking each outcome
async function runSequence(seq, inflate) {
  let mirror = null;
  const counts = { snapshots: 0, desyncs: 0 };
  for (const [i, step] of seq.steps.entries()) {
    const where = `${seq.name} step ${i}`;
    const e = step.expect;
    const m = parseServer(bytes(step.msg));
    if (e.welcome) {
      const w = e.welcome;
      assert.equal(m.type, Msg.WELCOME, where);
      assert.deepEqual(
        [m.version, m.clientId, m.room, m.game, m.tickRate, m.tick, m.schema, m.history, m.resumeToken, m.resumed],
        [w.version, w.client_id, w.room, w.game, w.tick_rate, w.tick, w.schema, w.history, w.resume_token, w.resumed],
        where);
      mirror = new Mirror(prepareSchema(m.schema), m.history, { inflate });
      continue;
    }
    if (e.error) {
      assert.deepEqual([m.type, m.code, m.reason], [Msg.ERROR, e.error.code, e.error.reason], where);
      assert.equal(m.closeCode, ERROR_CLOSE[e.error.code], where);
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
    const st = await mirror.applySnapshot(m);
    counts.snapshots += 1;
    if (e.state === null) {
      assert.equal(st, null, `${where}: a stale snapshot is ignored`);
    } else {
      assertState(mirror.schema, st, e.state, where);
      assert.equal(mirror.latest, st, where);
      assert.equal(mirror.get(st.tick), st, where);
      e.state.ids.forEach((id, j) => { // lookup by entity id
        const ent = mirror.entity(id);
        assert.equal(ent.slot, e.state.slots[j], `${where}: entity ${id}`);
        mirror.schema.forEach((f) => {
          assert.equal(ent.q[f.name], e.state.fields[f.name][j], `${where}: entity ${id} ${f.name}`);
          assert.equal(ent.v[f.name], dequantise(f, ent.q[f.name]));
        });
      });
      assert.deepEqual(mirror.ids(), e.state.ids, where);
    }
    assert.equal(mirror.ackBits(), e.ack_bits, `${where}: ack bits`);
    assert.equal(mirror.tick, e.latest, `${where}: latest`);
    assert.deepEqual(mirror.ticks(), e.held, `${where}: held ticks`);
    // events, and the replies the client sends: the ack of a new state, then a
    // message_ack per reliable event
    assert.deepEqual(m.events, e.events, `${where}: events`);
    const replies = st ? [packAck(st.tick, mirror.ackBits())] : [];
    for (const raw of m.events) {
      const ev = parseEvent(raw);
      assert.equal(ev.kind, raw[0], where);
      if (ev.kind === Ev.RELIABLE) replies.push(packMessageAck(ev.ackId));
    }
    assert.deepEqual(replies.map(hex), e.replies.map((r) => hex(bytes(r))), `${where}: replies`);
  }
  return counts;
}

const INFLATERS = [["DecompressionStream", inflateStream], ["node:zlib", inflateNode]];

for (const seq of V.sequences) {
  for (const [name, inflate] of INFLATERS) {
    test(`sequence ${seq.name}, inflated with ${name}`, async () => {
      const n = await runSequence(seq, inflate);
      assert.ok(n.snapshots > 0);
    });
  }
}

test("the vectors cover what they claim", () => {
  let snapshots = 0, desyncs = 0, compressed = 0;
  for (const seq of V.sequences) {
    for (const { expect: e } of seq.steps) {
      if (e.snapshot) { snapshots += 1; compressed += e.snapshot.flags & 1; }
      if (e.desync) desyncs += 1;
    }
  }
  assert.equal(snapshots, V.coverage.snapshots);
  assert.equal(desyncs, V.coverage["desync cases"]);
  assert.equal(compressed, V.coverage.compressed);
  assert.ok(snapshots >= 100 && desyncs >= 10 && compressed >= 20);
});

test("applies queued without awaiting run in order", async () => {
  // every snapshot of a sequence handed over at once: each decodes on the state before it
  for (const seq of V.sequences.filter((s) => s.steps.every((x) => !x.expect.desync))) {
    let mirror = null;
    const pending = [];
    for (const step of seq.steps) {
      const m = parseServer(bytes(step.msg));
      if (m.type === Msg.WELCOME) mirror = new Mirror(m.schema, m.history);
      else if (m.type === Msg.SNAPSHOT) pending.push([step.expect, mirror.applySnapshot(m)]);
    }
    for (const [e, run] of pending) {
      const st = await run;
      if (e.state === null) assert.equal(st, null);
      else assertState(mirror.schema, st, e.state, `${seq.name} (queued) tick ${e.state.tick}`);
    }
  }
});
