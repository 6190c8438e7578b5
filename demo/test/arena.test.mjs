// Unit tests of the arena page's logic that needs no browser: prediction and reconciliation,
// interpolation, and the reconnect backoff. (That the prediction's movement rule is the
// server's own is checked against gamesync/games/arena.py by tests/demo/test_js_client.py.)

import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffMs } from "../js/connection.js";
import { Interpolator } from "../js/interpolation.js";
import { ARENA, Predictor, moveFor } from "../js/prediction.js";

test("a prediction replays the inputs the server has not applied on top of its position", () => {
  const p = new Predictor(30);
  p.reconcile(100, 100, 0); // the server places us
  const [mx] = moveFor(1, 0, 30);
  for (let seq = 1; seq <= 5; seq++) p.input(seq, 1, 0);
  assert.equal(p.x, 100 + 5 * mx);
  // the server applied inputs 1..3 exactly as predicted: nothing to correct
  p.reconcile(100 + 3 * mx, 100, 3);
  assert.equal(p.x, 100 + 5 * mx);
  assert.equal(p.error, 0);
  assert.equal(p.corrections, 0);
  assert.deepEqual(p.pending.map(([s]) => s), [4, 5]);
});

test("a server that disagrees wins: the error is measured and the rest replayed from its position", () => {
  const p = new Predictor(30);
  p.reconcile(100, 100, 0);
  const [mx] = moveFor(1, 0, 30);
  for (let seq = 1; seq <= 4; seq++) p.input(seq, 1, 0);
  p.reconcile(100, 100, 2); // say the server blocked us: inputs 1 and 2 moved nothing
  assert.equal(p.error, 2 * mx);
  assert.equal(p.corrections, 1);
  assert.equal(p.x, 100 + 2 * mx); // 3 and 4 replayed from where the server put us
  // the drawn position glides from the old prediction towards the new one
  const [drawn] = p.drawn(0);
  assert.equal(drawn, 100 + 4 * mx);
  const [later] = p.drawn(1000);
  assert.ok(Math.abs(later - p.x) < 1e-6);
});

test("prediction clamps at the walls as the server does", () => {
  const p = new Predictor(30);
  p.reconcile(ARENA.size - 1, 0, 0);
  p.input(1, 1, -1);
  assert.deepEqual([p.x, p.y], [ARENA.size, 0]);
});

test("moves are whole 1/64 steps and diagonals are normalised", () => {
  for (const rate of [10, 20, 30, 60]) {
    const [x, y] = moveFor(1, 1, rate);
    assert.equal(x * 64, Math.round(x * 64));
    assert.ok(Math.abs(Math.hypot(x, y) - 200 / rate) < 1 / 64);
  }
});

const frame = (ids, xs) => ({ x: Float64Array.from(xs), y: Float64Array.from(xs), heading: new Float64Array(ids.length),
                              kind: new Float64Array(ids.length), owner: new Float64Array(ids.length) });

test("interpolation blends the two snapshots around the render time, entity by entity", () => {
  const it = new Interpolator(10, { delayMs: 100 }); // 100 ms per tick: the render time is one tick back
  it.push(1, [7, 8], frame([7, 8], [0, 50]), 100);
  it.push(2, [8, 7], frame([8, 7], [60, 10]), 200); // order changed: matched by id
  const s = it.sample(250); // render tick 1.5
  assert.equal(s.tick, 2);
  assert.deepEqual([...s.ids], [8, 7]);
  assert.deepEqual([...s.x], [55, 5]);
});

test("a new entity appears where it is; past the newest snapshot the newest is held", () => {
  const it = new Interpolator(10, { delayMs: 100 });
  it.push(1, [1], frame([1], [0]), 100);
  it.push(2, [1, 2], frame([1, 2], [10, 500]), 200);
  assert.deepEqual([...it.sample(250).x], [5, 500]);
  assert.deepEqual([...it.sample(900).x], [10, 500]);
});

test("headings turn the short way round", () => {
  const it = new Interpolator(10, { delayMs: 100 });
  const a = frame([1], [0]), b = frame([1], [0]);
  a.heading[0] = 2 * Math.PI - 0.1;
  b.heading[0] = 0.1;
  it.push(1, [1], a, 100);
  it.push(2, [1], b, 200);
  const h = it.sample(250).heading[0];
  assert.ok(Math.abs(h - 2 * Math.PI) < 1e-9 || Math.abs(h) < 1e-9, `heading ${h}`);
});

test("the tick clock follows early arrivals at once and late ones slowly", () => {
  const it = new Interpolator(10, { delayMs: 0 });
  it.push(1, [], frame([], []), 150); // 50 ms late
  it.push(2, [], frame([], []), 200); // on time
  assert.equal(it.renderTick(200), 2);
  it.push(3, [], frame([], []), 400); // 100 ms late: barely moves the clock
  assert.ok(it.renderTick(400) > 3.9);
});

test("backoff doubles up to its cap, with jitter in the upper half", () => {
  assert.equal(backoffMs(1, 250, 4000, () => 0), 125);
  assert.equal(backoffMs(1, 250, 4000, () => 1), 250);
  assert.equal(backoffMs(3, 250, 4000, () => 1), 1000);
  assert.equal(backoffMs(10, 250, 4000, () => 1), 4000);
  assert.equal(backoffMs(10, 250, 4000, () => 0), 2000);
});

test("under jitter, a steadily moving entity is drawn moving steadily: never backwards, on its path", () => {
  // snapshots every 33.3 ms, each delayed by 0..40 ms at random (some overtaking nothing:
  // order kept, as on one TCP stream); frames drawn at 60 Hz
  const it = new Interpolator(30, { delayMs: 100 });
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const arrivals = [];
  let last = 0;
  for (let tick = 0; tick < 300; tick++) {
    last = Math.max(last, tick * 1000 / 30 + rand() * 40);
    arrivals.push([last, tick]);
  }
  let prev = -Infinity, worst = 0, k = 0;
  for (let now = 200; now < 9800; now += 1000 / 60) {
    while (k < arrivals.length && arrivals[k][0] <= now) {
      const tick = arrivals[k][1];
      it.push(tick, [1], frame([1], [tick * 3]), arrivals[k][0]); // 3 units per tick
      k++;
    }
    const s = it.sample(now);
    const x = s.x[0];
    assert.ok(x >= prev - 1e-9, `moved backwards at ${now.toFixed(1)} ms: ${prev} -> ${x}`);
    prev = x;
    worst = Math.max(worst, Math.abs(x - it.renderTick(now) * 3)); // where it was at the render time
  }
  assert.ok(worst < 1e-6, `off its path by ${worst}`); // 100 ms covers 40 ms of jitter: never starved
});

test("after a correction the replayed inputs are the prediction: a server agreeing with them is no new error", () => {
  const p = new Predictor(30);
  p.reconcile(100, 100, 0);
  const [mx] = moveFor(1, 0, 30);
  for (let seq = 1; seq <= 4; seq++) p.input(seq, 1, 0);
  p.reconcile(100, 100, 2); // blocked once: one correction, 3 and 4 replayed from x = 100
  assert.equal(p.corrections, 1);
  p.reconcile(100 + mx, 100, 3); // the server applied 3 from where it had put us: as replayed
  assert.equal(p.error, 0);
  assert.equal(p.corrections, 1);
  p.reconcile(100 + 2 * mx, 100, 4);
  assert.deepEqual([p.error, p.corrections, p.x], [0, 1, 100 + 2 * mx]);
});

// ---- the connection, against a scripted WebSocket ------------------------------------------------

import { deflateSync } from "node:zlib";
import { decode, encode } from "@msgpack/msgpack";
import { Connection } from "../js/connection.js";

const SCHEMA = [{ name: "x", kind: "float", wire: "<u2", predict: "linear", lo: 0.0, hi: 1000.0, step: 0.015625 }];
const EMPTY = encode([0, new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), [new Uint8Array(0)], [[0]], null]);
const nextTask = () => new Promise((r) => setImmediate(r));

/** A WebSocket the test plays the server of: every socket the connection opens is in `sockets`. */
function fakeServer() {
  const sockets = [];
  class FakeWS {
    constructor(url) { Object.assign(this, { url, readyState: 0, sent: [], closedWith: null }); sockets.push(this); }
    send(b) { this.sent.push(decode(b)); }
    close(code = 1000) { if (this.readyState < 2) { this.readyState = 3; this.closedWith = code; } }
    // the server's side; each arrives in a task of its own, as in a browser
    async open() { this.readyState = 1; this.onopen?.(); await nextTask(); }
    async msg(m) { this.onmessage?.({ data: encode(m).slice().buffer }); await nextTask(); }
    async shut(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); await nextTask(); }
  }
  return { sockets, FakeWS };
}
const welcome = (cid, token, resumed = false) => [2, 3, cid, "r", "arena", 30, 0, SCHEMA, 32, token, resumed];

test("connection: a redirect loop goes offline after 5 redirects in a row; Retry follows redirects again", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { game: "arena", WebSocket: FakeWS, baseDelayMs: 1, maxDelayMs: 2 });
  const statuses = [];
  c.on("status", (s) => statuses.push(s));
  c.start();
  const redirect = async (ws, to) => {
    await ws.open();
    await ws.msg([10, "redirect", `room 'r' is hosted at ${to}`]);
    await ws.msg([12, to, "r", 10000]);
    await ws.shut(4012, "redirect");
  };
  for (let i = 0; i < 6; i++) await redirect(sockets[i], i % 2 ? "ws://a/?resv=1" : "ws://b/?resv=1");
  assert.equal(sockets.length, 6, "the 6th redirect is not followed");
  assert.equal(c.status, "offline");
  assert.match(statuses.at(-1).reason, /redirects in a row/);
  c.retry();
  assert.equal(sockets[6].url, "ws://a/");
  await redirect(sockets[6], "ws://b/?resv=2");
  assert.equal(sockets[7].url, "ws://b/?resv=2", "after Retry, a redirect is followed at once");
  await sockets[7].open();
  assert.deepEqual(sockets[7].sent[0].slice(0, 5), [1, 5, "r", "ann", "arena"]); // the same join
  c.close();
});

test("connection: a redirect still queued behind a snapshot being inflated is followed when the close comes", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { game: "arena", WebSocket: FakeWS, baseDelayMs: 1000 });
  c.start();
  const ws = sockets[0];
  await ws.open();
  await ws.msg(welcome(3, "tok-1"));
  // a compressed snapshot: inflating takes a few turns of the event loop, during which the
  // server's error, redirect and close arrive
  const z = new Uint8Array(deflateSync(EMPTY));
  ws.onmessage({ data: encode([4, 0, -1, -1, 0, 1, z, []]).slice().buffer });
  ws.onmessage({ data: encode([10, "redirect", "room 'r' moved"]).slice().buffer });
  ws.onmessage({ data: encode([12, "ws://b/", "r", 10000]).slice().buffer });
  ws.onclose({ code: 4012, reason: "redirect" });
  // (zlib works off the main thread: wait by the clock, below the first backoff of 500 ms or more)
  for (let t0 = Date.now(); sockets.length < 2 && Date.now() - t0 < 400;) await new Promise((r) => setTimeout(r, 5));
  assert.equal(sockets.length, 2);
  assert.equal(sockets[1].url, "ws://b/");
  assert.equal(c.status, "reconnecting");
  await sockets[1].open();
  assert.equal(sockets[1].sent[0][6], "tok-1"); // with the resume token
  c.close();
});

test("connection: a socket that never opens is given up after staleMs; an orphan keeps its seat meanwhile", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { WebSocket: FakeWS, staleMs: 60, baseDelayMs: 1, maxDelayMs: 2 });
  c.start();
  await sockets[0].open();
  await sockets[0].msg(welcome(3, "tok-1"));
  // the server freezes: silence, so the heartbeat gives the socket up, leaving it open
  await new Promise((r) => setTimeout(r, 150));
  assert.ok(sockets.length >= 2, "reconnecting");
  assert.equal(sockets[0].closedWith, null, "the silent socket keeps the seat");
  // the new socket's handshake never completes (a frozen server still accepts TCP): not forever
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(sockets.length >= 3, `a connection that does not open is retried (${sockets.length} sockets)`);
  assert.equal(sockets[1].closedWith, 1000);
  assert.equal(sockets[0].closedWith, null);
  const last = sockets.at(-1);
  await last.open();
  assert.equal(last.sent[0][6], "tok-1");
  await last.msg(welcome(3, "tok-2", true));
  assert.equal(c.status, "connected");
  assert.equal(sockets[0].closedWith, 1000, "once the seat has moved, the orphan goes");
  c.close();
});

test("connection: pongs queued for a resumed seat from before the outage are no RTT sample", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { WebSocket: FakeWS, baseDelayMs: 1, maxDelayMs: 2, pingMs: 10 });
  c.start();
  await sockets[0].open();
  await sockets[0].msg(welcome(3, "tok-1"));
  await new Promise((r) => setTimeout(r, 30));
  const pings = sockets[0].sent.filter((m) => m[0] === 8).map((m) => m[1]);
  assert.ok(pings.length >= 1);
  await sockets[0].shut(1006); // lost, pings unanswered; a while later the seat comes back
  await new Promise((r) => setTimeout(r, 100));
  const ws = sockets.at(-1);
  await ws.open();
  await ws.msg(welcome(3, "tok-2", true));
  await ws.msg([4, 0, -1, -1, 0, 0, EMPTY, pings.map((t) => [5, t])]); // events queued for the seat
  assert.equal(c.rtt, null, "no sample spans the outage");
  const t = performance.now();
  await ws.msg([4, 1, 0, -1, 0, 0, EMPTY, [[5, t]]]);
  assert.ok(c.rtt !== null && c.rtt < 50);
  c.close();
});

test("connection: sends no snapshot acks (protocol 3); after a resume the unapplied inputs go again, seq goes on", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { WebSocket: FakeWS, baseDelayMs: 1, maxDelayMs: 2 });
  c.start();
  let ws = sockets[0];
  await ws.open();
  assert.deepEqual(ws.sent[0], [1, 5, "r", "ann"]); // no resume token yet
  await ws.msg(welcome(3, "tok-1"));
  assert.equal(ws.sent.length, 1); // nothing else sent yet
  assert.equal(c.sendInput([1, 0]), 1);
  assert.deepEqual(ws.sent.at(-1), [3, 1, [1, 0]]);
  await ws.msg([4, 10, -1, -1, 0, 0, EMPTY, []]);
  await ws.msg([4, 11, 10, -1, 1, 0, EMPTY, []]);
  assert.equal(ws.sent.length, 2); // snapshots are not acknowledged
  assert.equal(c.mirror.tick, 11); // both decoded, in order
  for (let i = 0; i < 3; i++) c.sendInput([0, 1]);
  assert.deepEqual(ws.sent.at(-1), [3, 4, [0, 1]]); // no ack fields either
  await ws.msg([4, 12, 11, 10, 2, 0, EMPTY, []]); // input 2 applied
  assert.deepEqual(c.unacked.map(([s]) => s), [3, 4]);
  await ws.shut(1006);
  assert.equal(c.sendInput([1, 1]), null); // not connected: nothing sent or kept
  for (let i = 0; i < 50 && sockets.length < 2; i++) await new Promise((r) => setTimeout(r, 2));
  ws = sockets[1];
  await ws.open();
  assert.equal(ws.sent[0][6], "tok-1");
  await ws.msg(welcome(3, "tok-2", true));
  assert.deepEqual(ws.sent.slice(1), [[3, 3, [0, 1]], [3, 4, [0, 1]]]); // re-sent
  assert.equal(c.sendInput([1, 0]), 5); // the seat's numbering goes on
  assert.deepEqual(ws.sent.at(-1), [3, 5, [1, 0]]);
  // lost again, and this time the seat is gone: a fresh one drops the old inputs and restarts at 1
  await ws.shut(1006);
  for (let i = 0; i < 50 && sockets.length < 3; i++) await new Promise((r) => setTimeout(r, 2));
  ws = sockets[2];
  await ws.open();
  assert.equal(ws.sent[0][6], "tok-2");
  await ws.msg(welcome(9, "tok-3", false));
  assert.equal(ws.sent.length, 1);
  assert.deepEqual([c.unacked.length, c.clientId], [0, 9]);
  assert.equal(c.sendInput([1, 0]), 1);
  c.close();
});

test("connection: no more than 120 inputs in flight, so a stalled server never finds over 128 waiting", async () => {
  const { sockets, FakeWS } = fakeServer();
  const c = new Connection("ws://a/", "r", "ann", { WebSocket: FakeWS });
  c.start();
  const ws = sockets[0];
  await ws.open();
  await ws.msg(welcome(3, "tok-1"));
  await ws.msg([4, 0, -1, -1, 0, 0, EMPTY, []]);
  const seqs = [];
  for (let i = 0; i < 150; i++) seqs.push(c.sendInput([1, 0])); // 5 s of a held key, nothing applied
  assert.equal(seqs.filter((s) => s !== null).length, 120);
  assert.equal(ws.sent.filter((m) => m[0] === 3).length, 120);
  await ws.msg([4, 1, 0, -1, 30, 0, EMPTY, []]); // the server wakes and applies 30
  assert.equal(c.sendInput([1, 0]), 121);
  c.close();
});

test("after a server stall the drawing is back to interpolating within a few snapshots, never going back", () => {
  // 2 s of snapshots at 30 Hz, then the server stalls for 1 s: its tick numbers go on from
  // where they were (a fixed-step simulation slows down), so every later snapshot is ~1 s
  // "late" by the old clock. Until the clock is re-anchored the page can only show the
  // newest snapshot as it comes (no buffer: every jitter shows).
  const it = new Interpolator(30, { delayMs: 100 });
  const period = 1000 / 30;
  const at = (tick) => (tick < 60 ? tick * period : tick * period + 1000);
  let k = 0, prev = -Infinity, buffered = null;
  for (let now = 0; now < 4000; now += 1000 / 60) {
    while (at(k) <= now) { it.push(k, [1], frame([1], [k * 3]), at(k)); k++; }
    const s = it.sample(now);
    if (!s) continue;
    assert.ok(s.x[0] >= prev - 1e-9, `moved backwards at ${now.toFixed(0)} ms`);
    prev = s.x[0];
    if (now > at(60) && buffered === null && it.lagMs(now) > 30) buffered = now - at(60);
  }
  assert.ok(buffered !== null && buffered < 300,
    `a buffer again ${buffered === null ? "never" : `${buffered.toFixed(0)} ms`} after the stall`);
});
