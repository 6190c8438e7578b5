// Arena bot swarm for the Colyseus 0.18 baseline: N bots in ONE process, each a real
// @colyseus/sdk 0.18 client that joins the "arena" room with joinOrCreate.
//
//   node bots.mjs ws://127.0.0.1:PORT --count N --duration S --warmup W --ramp R
//
// Each bot follows ARENA.md: a new random direction every 1 s, its current input
// {seq, dx, dy} sent 30 times a second (seq +1 per input, random phase per bot). Measured
// over the window that opens `warmup` s after every bot has joined and lasts `duration` s,
// with the same rules as gamesync/client/swarm.py:
//   payload bytes/s     WebSocket message payload bytes received (every message), per bot
//   states/s            state messages received (ROOM_STATE / ROOM_STATE_PATCH), per bot
//   ack latency         time from sending input N to the first state in which the bot's
//                       own entity has ack >= N (inputs sent before the window count when
//                       acknowledged inside it, as in swarm.py)
// One JSON line goes to stdout at the end; everything else goes to stderr.

import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: "string", default: "50" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "5" },
    ramp: { type: "string", default: "2" },
    rate: { type: "string", default: "30" },
    seed: { type: "string", default: "1" },
    room: { type: "string", default: "arena" },
    // Which WebSocket class the SDK uses. The SDK takes globalThis.WebSocket when present
    // (Node >= 22: the built-in undici client) and falls back to the `ws` package.
    "ws-impl": { type: "string", default: "native" },
    "connect-timeout": { type: "string", default: "15" },
    // optional: read the server's CPU (utime+stime from /proc) and peak RSS over the window
    "server-pid": { type: "string" },
    quiet: { type: "boolean", default: false },
  },
});

const url = positionals[0] ?? "ws://127.0.0.1:2567";
const COUNT = Number(args.count);
const DURATION = Number(args.duration);
const WARMUP = Number(args.warmup);
const RAMP = Number(args.ramp);
const RATE = Number(args.rate);
const CONNECT_TIMEOUT_S = Number(args["connect-timeout"]);
const SEND_SLOTS = 8;              // input sends per period are spread over this many slots
const MAX_PENDING_INPUTS = 256;    // inputs awaiting their ack, per bot (older count as lost)
const ROOM_STATE = 14, ROOM_STATE_PATCH = 15, PROTOCOL_CODE_MASK = 31;

function log(...a) { if (!args.quiet) console.error("[colyseus-bots]", ...a); }

// Hard timeout: the process always ends by itself.
const HARD_TIMEOUT_S = RAMP + CONNECT_TIMEOUT_S + WARMUP + DURATION + 30;
setTimeout(() => {
  console.error(`[colyseus-bots] hard timeout after ${HARD_TIMEOUT_S}s, exiting`);
  process.exit(3);
}, HARD_TIMEOUT_S * 1000).unref();

if (args["ws-impl"] === "ws") {
  globalThis.WebSocket = (await import("ws")).WebSocket;
} else if (args["ws-impl"] !== "native") {
  throw new Error("--ws-impl is native or ws");
}
const { Client, Room } = await import("@colyseus/sdk");

// Seeded PRNG (mulberry32) for directions and phases.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const now = () => performance.now() / 1000;   // seconds, monotonic

// server CPU seconds (utime + stime) from /proc/PID/stat, when --server-pid is given
const SERVER_PID = args["server-pid"];
let CLK_TCK = 100;
if (SERVER_PID) {
  try { CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100; } catch { /* 100 */ }
}
function serverCpuSeconds() {
  const stat = readFileSync(`/proc/${SERVER_PID}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");   // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;              // fields 14, 15
}
function serverPeakRssMiB() {
  const m = readFileSync(`/proc/${SERVER_PID}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
  return m ? +(Number(m[1]) / 1024).toFixed(1) : null;
}

// ---- SDK hook: count every WebSocket message a room receives, then check the own ack ----
const botOfRoom = new WeakMap();
const origOnMessageCallback = Room.prototype.onMessageCallback;
Room.prototype.onMessageCallback = function (event) {
  origOnMessageCallback.call(this, event);
  const bot = botOfRoom.get(this);
  if (bot === undefined) return;
  const data = event.data;   // ArrayBuffer (binaryType = "arraybuffer")
  const len = data.byteLength;
  const code = len > 0 ? new Uint8Array(data, 0, 1)[0] & PROTOCOL_CODE_MASK : -1;
  bot.onMessage(len, code === ROOM_STATE || code === ROOM_STATE_PATCH);
};

class Bot {
  constructor(idx, rng) {
    this.idx = idx;
    this.rng = rng;
    this.room = null;
    this.self = null;           // own entity in the decoded state
    this.seq = 0;
    this.dx = 0; this.dy = 0;
    this.nextTurn = 0;
    this.pending = [];          // [seq, t] in seq order; head index below
    this.head = 0;
    this.measuring = false;
    this.states = 0;
    this.bytes = 0;
    this.latencies = [];
    this.joined = false;
    this.lost = null;
  }

  async connect(client) {
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error("connect timeout")), CONNECT_TIMEOUT_S * 1000);
    });
    try {
      const room = await Promise.race([client.joinOrCreate(args.room, { name: `bot${this.idx}` }), timeout]);
      this.room = room;
      botOfRoom.set(room, this);
      room.onLeave((code) => this.fail(`left (code ${code})`));
      room.onError((code, msg) => this.fail(`error ${code}: ${msg}`));
      room.onDrop?.((code, reason) => this.fail(`dropped (code ${code}) ${reason ?? ""}`));
      this.joined = true;
    } catch (e) {
      this.fail(`connect failed: ${e?.message ?? e}`);
    } finally {
      clearTimeout(timer);
    }
  }

  onMessage(len, isState) {
    if (this.measuring) this.bytes += len;
    if (!isState) return;
    if (this.measuring) this.states++;
    let self = this.self;
    if (self === null) {
      self = this.room.state?.entities?.get(this.room.sessionId) ?? null;
      if (self === null) return;
      this.self = self;
    }
    const ack = self.ack;
    const pend = this.pending;
    let h = this.head;
    if (h < pend.length && pend[h][0] <= ack) {
      const t = now();
      while (h < pend.length && pend[h][0] <= ack) {
        if (this.measuring) this.latencies.push(t - pend[h][1]);
        h++;
      }
      this.head = h;
      if (h > 512) { pend.splice(0, h); this.head = 0; }
    }
  }

  sendInput(t) {
    if (t >= this.nextTurn) {
      this.dx = Math.floor(this.rng() * 3) - 1;
      this.dy = Math.floor(this.rng() * 3) - 1;
      this.nextTurn = t + 1.0;
    }
    this.seq++;
    try {
      this.room.send("input", { seq: this.seq, dx: this.dx, dy: this.dy });
    } catch (e) {
      this.fail(`send failed: ${e?.message ?? e}`);
      return;
    }
    this.pending.push([this.seq, t]);
    if (this.pending.length - this.head > MAX_PENDING_INPUTS) this.head++;
  }

  fail(why) {
    if (this.lost === null && !finished) {
      this.lost = why;
      log(`bot ${this.idx}: ${why}`);
    }
  }

  get live() { return this.joined && this.lost === null; }
}

// ---- run ----
const seedRng = mulberry32(Number(args.seed));
const bots = Array.from({ length: COUNT }, (_, i) => new Bot(i, mulberry32(Math.floor(seedRng() * 2 ** 32))));
const client = new Client(url);

// input sender: every bot sends at RATE with its own random phase, in SEND_SLOTS groups
const slots = Array.from({ length: SEND_SLOTS }, () => []);
for (const b of bots) slots[Math.floor(b.rng() * SEND_SLOTS)].push(b);
const slotPeriod = 1 / RATE / SEND_SLOTS;
const sendStart = now();
let k = 0;
let senderTimer = null;
function senderTick() {
  const t = now();
  for (const b of slots[k % SEND_SLOTS]) if (b.live) b.sendInput(t);
  k++;
  const behind = Math.floor((now() - sendStart) / slotPeriod) - k;
  if (behind > 0) k += behind;   // never burst to catch up
  senderTimer = setTimeout(senderTick, Math.max(0, (sendStart + k * slotPeriod - now()) * 1000));
}
senderTimer = setTimeout(senderTick, 0);

let finished = false;   // set once results are taken: closing sockets is not a failure
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

log(`connecting ${COUNT} bots to ${url} over ${RAMP}s (ws-impl ${args["ws-impl"]}, node ${process.version})`);
const gap = RAMP / Math.max(1, COUNT);
const joins = [];
for (const b of bots) {
  joins.push(b.connect(client));
  if (gap > 0) await sleep(gap);
}
await Promise.all(joins);
const roomIds = new Set(bots.filter((b) => b.room).map((b) => b.room.roomId));
log(`${bots.filter((b) => b.joined).length}/${COUNT} joined (${roomIds.size} room(s)); warm-up ${WARMUP}s`);

await sleep(WARMUP);
const t0 = now();
const cpu0 = process.cpuUsage();
const srvCpu0 = SERVER_PID ? serverCpuSeconds() : 0;
log(`measuring from unix ${(Date.now() / 1000).toFixed(3)} for ${DURATION}s`);
for (const b of bots) { b.measuring = true; b.states = 0; b.bytes = 0; b.latencies = []; }
for (let s = 0; s < DURATION; s += 5) {
  await sleep(Math.min(5, DURATION - s));
  log(`t=${Math.round(s + Math.min(5, DURATION - s))}s connected ${bots.filter((b) => b.live).length}/${COUNT}`);
}
const t1 = now();
for (const b of bots) b.measuring = false;
const cpu1 = process.cpuUsage(cpu0);
const srvCpu1 = SERVER_PID ? serverCpuSeconds() : 0;
log(`measuring ended at unix ${(Date.now() / 1000).toFixed(3)}`);
clearTimeout(senderTimer);

// ---- results (same fields and rules as gamesync/client/swarm.py) ----
const secs = t1 - t0;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const lat = bots.flatMap((b) => b.latencies).sort((a, b) => a - b);
const pct = (q) => (lat.length ? +(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] * 1e3).toFixed(2) : null);
const perBotStates = bots.map((b) => b.states / secs);
const perBotBytes = bots.map((b) => b.bytes / secs);
const round = (x, d) => +x.toFixed(d);
const result = {
  bots: COUNT,
  seconds: round(secs, 2),
  payload_bytes_per_client_s: round(median(perBotBytes), 1),
  states_per_client_s: round(median(perBotStates), 2),
  states_per_client_s_min: round(Math.min(...perBotStates), 2),
  ack_latency_ms_p50: pct(0.5),
  ack_latency_ms_p99: pct(0.99),
  ack_samples: lat.length,
  all_connected: bots.every((b) => b.live),
  disconnected: bots.filter((b) => !b.live).length,
  rooms: roomIds.size,
  bot_process_cpu: round((cpu1.user + cpu1.system) / 1e6 / secs, 3),
};
if (SERVER_PID) {
  result.server_cpu = round((srvCpu1 - srvCpu0) / secs, 3);
  result.server_rss_mib = serverPeakRssMiB();
}

finished = true;
for (const b of bots) {
  try { b.room?.connection?.close(); } catch { /* closing anyway */ }
}
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
