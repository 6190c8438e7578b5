// demo/js/ot.js: the shared vectors (tests/vectors/ot.json, what gamesync/games/ot.py makes of
// random documents and operations) give identical results in JavaScript; properties on
// many more random operations (convergence, compose, cursors, diff); the OTClient state
// machine with simulated clients around a simulated server, edits crossing in flight.
//
//   node --test demo/test/          (GAMESYNC_OT_VECTORS=path overrides the vectors file)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  OTClient, OTError, apply, baseLength, check, compose, cpIndex, cpLength, diff, targetLength, transform,
  transformIndex, utf16Index,
} from "../js/ot.js";

const path = process.env.GAMESYNC_OT_VECTORS
  || fileURLToPath(new URL("../../tests/vectors/ot.json", import.meta.url));
const V = JSON.parse(readFileSync(path, "utf8"));

// ---- the Python answers ---------------------------------------------------------------------------

test("apply and transform give exactly what ot.py gives on every shared case", () => {
  assert.ok(V.cases.length >= 300);
  V.cases.forEach((c, i) => {
    const where = `case ${i}: ${JSON.stringify(c.doc)} a=${JSON.stringify(c.a)} b=${JSON.stringify(c.b)}`;
    assert.equal(apply(c.doc, c.a), c.after_a, where);
    assert.equal(apply(c.doc, c.b), c.after_b, where);
    const [a2, b2] = transform(c.a, c.b);
    assert.deepEqual(a2, c.a2, where);
    assert.deepEqual(b2, c.b2, where);
    assert.equal(apply(c.after_a, b2), c.converged, where);
    assert.equal(apply(c.after_b, a2), c.converged, where);
  });
});

test("transformIndex moves cursors exactly as ot.py's transform_index, own or not", () => {
  let n = 0;
  for (const c of V.cases) {
    for (const [i, other, own] of c.cursors) {
      assert.equal(transformIndex(c.a, i, false), other, `${JSON.stringify(c.a)} @${i}`);
      assert.equal(transformIndex(c.a, i, true), own, `${JSON.stringify(c.a)} @${i} own`);
      n++;
    }
  }
  assert.ok(n >= 1000);
});

test("compose(a, then) applies as ot.py applying a and then `then` in turn", () => {
  V.cases.forEach((c, i) => {
    const ab = compose(c.a, c.then);
    assert.equal(apply(c.doc, ab), c.after_then, `case ${i}`);
    assert.equal(baseLength(ab), cpLength(c.doc));
  });
});

test("what ot.py refuses, ot.js refuses with the same reason", () => {
  assert.ok(V.refusals.length >= 10);
  for (const r of V.refusals) {
    const call = { apply: () => apply(r.doc, r.op), transform: () => transform(r.a, r.b), check: () => check(r.op) }[r.call];
    assert.throws(call, (e) => e instanceof OTError && e.message === r.why, JSON.stringify(r).slice(0, 200));
  }
});

// ---- properties on random operations --------------------------------------------------------------

function rng(seed) { // mulberry32: the same cases on every run
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [..."abxy \n", "é", "日", "\u{1F600}", "\u{1F389}", "e\u0301"];

function randomText(r, n) {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomOp(r, doc) {
  const op = [];
  const put = (c) => { // merged like ot.py's _push
    const last = op[op.length - 1];
    if (op.length && typeof last === typeof c && (typeof c === "string" || (last > 0) === (c > 0))) op[op.length - 1] = last + c;
    else op.push(c);
  };
  let left = cpLength(doc);
  while (left > 0) {
    const x = r();
    if (x < 0.2) put(randomText(r, 1 + Math.floor(r() * 3)));
    const n = 1 + Math.floor(r() * Math.min(left, 5));
    put(x < 0.6 ? n : -n);
    left -= n;
  }
  if (r() < 0.4 || !op.length) put(randomText(r, 1 + Math.floor(r() * 3)));
  return op;
}

test("concurrent operations converge: apply(apply(d, a), b') == apply(apply(d, b), a') (3000 pairs)", () => {
  const r = rng(1);
  for (let i = 0; i < 3000; i++) {
    const d = randomText(r, Math.floor(r() * 25));
    const a = randomOp(r, d), b = randomOp(r, d);
    const [a2, b2] = transform(a, b);
    assert.equal(apply(apply(d, a), b2), apply(apply(d, b), a2), JSON.stringify({ d, a, b }));
    assert.equal(baseLength(a2), targetLength(b));
  }
});

test("compose of a chain of edits is the chain (1000 chains), and has no zero or split components", () => {
  const r = rng(2);
  for (let i = 0; i < 1000; i++) {
    let d = randomText(r, Math.floor(r() * 20));
    const start = d;
    let all = null;
    for (let k = 0; k < 4; k++) {
      const op = randomOp(r, d);
      d = apply(d, op);
      all = all === null ? op : compose(all, op);
    }
    assert.equal(apply(start, all), d);
    check(all, Infinity);
    for (let k = 1; k < all.length; k++) {
      const same = typeof all[k] === typeof all[k - 1] && (typeof all[k] === "string" || (all[k] > 0) === (all[k - 1] > 0));
      assert.ok(!same, `unmerged components in ${JSON.stringify(all)}`);
    }
  }
});

test("a composed buffer transformed against a remote edit converges like its parts (1000 cases)", () => {
  const r = rng(3);
  for (let i = 0; i < 1000; i++) {
    const d = randomText(r, Math.floor(r() * 15));
    const a1 = randomOp(r, d), a2 = randomOp(r, apply(d, a1)), b = randomOp(r, d);
    const [b2, ab] = transform(b, compose(a1, a2)); // the server's edit goes first
    assert.equal(apply(apply(d, b), ab), apply(apply(apply(d, a1), a2), b2), JSON.stringify({ d, a1, a2, b }));
  }
});

test("cursors: an insert before moves them on, after leaves them, at a caret only when own; deletes pull them back", () => {
  assert.equal(transformIndex([2, "xy", 3], 4), 6);
  assert.equal(transformIndex([2, "xy", 3], 1), 1);
  assert.equal(transformIndex([2, "xy", 3], 2), 2);
  assert.equal(transformIndex([2, "xy", 3], 2, true), 4);
  assert.equal(transformIndex([1, -3, 1], 3), 1); // inside the deleted span: to its start
  assert.equal(transformIndex([1, -3, 1], 5), 2);
  assert.equal(transformIndex(["\u{1F600}", 2], 1), 2); // an emoji is one position
  const r = rng(4);
  for (let i = 0; i < 1000; i++) { // a cursor stays on the same character when that character survives
    const d = randomText(r, 1 + Math.floor(r() * 15));
    const chars = Array.from(d);
    const op = randomOp(r, d);
    const at = Math.floor(r() * chars.length);
    const marked = apply(chars.map((c, k) => (k === at ? "\u0000" : c)).join(""), op);
    const kept = Array.from(marked).indexOf("\u0000");
    if (kept >= 0) assert.equal(transformIndex(op, at, true), kept); // own: past text inserted right there
    assert.ok(transformIndex(op, at) <= cpLength(apply(d, op)));
  }
});

test("diff turns one textarea change into an operation, counting code points", () => {
  assert.deepEqual(diff("hello", "help me"), [3, -2, "p me"]);
  assert.deepEqual(diff("", "x"), ["x"]);
  assert.deepEqual(diff("abc", "abc"), [3]);
  assert.deepEqual(diff("a\u{1F600}b", "ab"), [1, -1, 1]);
  assert.deepEqual(diff("\u{1F600}", "\u{1F601}"), [-1, "\u{1F601}"]); // same high surrogate: not split
  assert.deepEqual(diff("aa", "aaa", 2), [1, "a", 1]); // typed after the first "a": the caret says where
  assert.deepEqual(diff("aa", "aaa"), [2, "a"]);
  const r = rng(5);
  for (let i = 0; i < 2000; i++) {
    const before = randomText(r, Math.floor(r() * 12)), after = randomText(r, Math.floor(r() * 12));
    const caret = Math.floor(r() * (cpLength(after) + 1));
    for (const op of [diff(before, after), diff(before, after, caret)]) {
      assert.equal(apply(before, op), after, JSON.stringify({ before, after, caret }));
      check(op, Infinity);
    }
  }
});

test("UTF-16 and code point positions convert both ways", () => {
  const s = "a\u{1F600}b\u{1F389}";
  assert.equal(cpLength(s), 4);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => utf16Index(s, i)), [0, 1, 3, 4, 6]);
  assert.deepEqual([0, 1, 3, 4, 6].map((i) => cpIndex(s, i)), [0, 1, 2, 3, 4]);
  assert.equal(utf16Index(s, 99), s.length);
});

// ---- the client scheme around a simulated server ----------------------------------------------------

// The server of gamesync/games/notes.py, minus the network: transforms a late edit through the
// history since its version, applies it, and broadcasts it to everyone, the author included.
class Server {
  constructor() { this.text = ""; this.history = []; this.out = new Map(); }
  join(id) { this.out.set(id, []); return { text: this.text, v: this.history.length }; }
  receive(from, { op, v, ref }) {
    for (const done of this.history.slice(v)) [, op] = transform(done, op);
    this.text = apply(this.text, op);
    this.history.push(op);
    for (const q of this.out.values()) q.push({ ops: op, v: this.history.length, from, ref });
  }
}

test("three clients typing at random, with messages crossing in flight, converge on the server's text", () => {
  const r = rng(6);
  for (let round = 0; round < 60; round++) {
    const server = new Server();
    const clients = [1, 2, 3].map((id) => {
      const { text, v } = server.join(id);
      return { id, c: new OTClient(text, v), up: [] };
    });
    for (let step = 0; step < 120; step++) {
      const who = clients[Math.floor(r() * clients.length)];
      const x = r();
      if (x < 0.4) { // a local edit
        const before = who.c.text;
        const op = randomOp(r, before);
        const msg = who.c.local(op);
        assert.equal(who.c.text, apply(before, op));
        if (msg) who.up.push(msg);
      } else if (x < 0.7 && who.up.length) { // the server takes its next message
        server.receive(who.id, who.up.shift());
      } else { // it receives the next broadcast
        const ev = server.out.get(who.id).shift();
        if (!ev) continue;
        const before = who.c.text;
        const res = who.c.remote(ev, who.id);
        assert.equal(res.gap, false);
        if (res.apply) assert.equal(who.c.text, apply(before, res.apply));
        else assert.equal(who.c.text, before);
        if (res.send) who.up.push(res.send);
        assert.ok(who.c.inflight !== null || who.c.buffer === null, "a buffer only behind an edit in flight");
      }
    }
    for (let busy = true; busy;) { // deliver everything
      busy = false;
      for (const who of clients) {
        while (who.up.length) { server.receive(who.id, who.up.shift()); busy = true; }
        for (let ev; (ev = server.out.get(who.id).shift());) {
          const res = who.c.remote(ev, who.id);
          if (res.send) who.up.push(res.send);
          busy = true;
        }
      }
    }
    for (const who of clients) {
      assert.equal(who.c.text, server.text);
      assert.equal(who.c.server, server.text);
      assert.equal(who.c.state, "synchronized");
      assert.equal(who.c.v, server.history.length);
    }
  }
});

test("an edit in flight is one message; later ones wait composed in the buffer until the echo", () => {
  const c = new OTClient("ab", 4);
  assert.deepEqual(c.local([2, "c"]), { op: [2, "c"], v: 4, ref: 1 });
  assert.equal(c.local([3, "d"]), null);
  assert.equal(c.local(["<", 4]), null);
  assert.equal(c.state, "buffering");
  assert.deepEqual(c.buffer, ["<", 3, "d"]);
  const res = c.remote({ ops: [2, "c"], v: 5, from: 7, ref: 1 }, 7);
  assert.deepEqual(res, { apply: null, send: { op: ["<", 3, "d"], v: 5, ref: 2 }, gap: false });
  assert.equal(c.text, "<abcd");
  assert.equal(c.server, "abc");
});

test("a remote edit is transformed through the edit in flight and the buffer; positions map to the local text", () => {
  const c = new OTClient("abc", 0);
  c.local(["X", 3]);
  c.local([1, "Y", 3]); // "XYabc"
  assert.equal(c.localIndex(3), 5); // the server's "abc|" is after the local "XYabc"
  const res = c.remote({ ops: [3, "!"], v: 1, from: 9, ref: 1 }, 7);
  assert.deepEqual(res.apply, [5, "!"]);
  assert.equal(c.text, "XYabc!");
  assert.deepEqual(c.inflight, ["X", 4]);
  assert.deepEqual(c.buffer, [1, "Y", 4]);
  assert.deepEqual(c.remote({ ops: [4, "?"], v: 1, from: 9, ref: 1 }, 7).apply, null); // seen already
  assert.equal(c.remote({ ops: [4, "?"], v: 3, from: 9, ref: 1 }, 7).gap, true); // version 2 was missed
});

test("rebase keeps pending edits when the fresh document allows it, and drops them otherwise", () => {
  let c = new OTClient("abc", 3);
  c.local([3, "d"]); c.local([4, "e"]);
  assert.deepEqual(c.rebase("abc", 3), { send: { op: [3, "de"], v: 3, ref: 2 }, dropped: false }); // never reached the server
  assert.equal(c.text, "abcde");

  c = new OTClient("abc", 3);
  c.local([3, "d"]); c.local([4, "e"]);
  assert.deepEqual(c.rebase("abcd", 4), { send: { op: [4, "e"], v: 4, ref: 2 }, dropped: false }); // applied, echo lost
  assert.equal(c.text, "abcde");

  c = new OTClient("abc", 3);
  c.local([3, "d"]);
  assert.deepEqual(c.rebase("xyz", 9), { send: null, dropped: true });
  assert.equal(c.text, "xyz");
  assert.equal(c.state, "synchronized");
});
