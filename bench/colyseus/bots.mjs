// Arena bot swarm for the Colyseus 0.18 baseline: N bots in ONE process, each a real
// @colyseus/sdk 0.18 client that joins the "arena" room (or, with --game bigworld, the
// "big" room) with joinOrCreate.
//
//   node bots.mjs ws://127.0.0.1:PORT --count N --duration S --warmup W --ramp R [--game bigworld]
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
//   visible entities    entities in the bot's state, sampled twice a second in the window
// One JSON line goes to stdout at the end; everything else goes to stderr.

import { parseArgs } from "node:util";
import { mulberry32 } from "./rng.mjs";
import { performance } from "node:perf_hooks";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
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
    // arena: every bot receives the same patches (shared decode applies). bigworld: each
    // bot's patches are its own (StateView), so every bot decodes for itself.
    game: { type: "string", default: "arena" },
    room: { type: "string" },                      // default: "arena", or "big" for bigworld
    // Which WebSocket class the SDK uses. The SDK takes globalThis.WebSocket when present
    // (Node >= 22: the built-in undici client) and falls back to the `ws` package.
    "ws-impl": { type: "string", default: "native" },
    "connect-timeout": { type: "string", default: "15" },
    "no-shared-decode": { type: "boolean", default: false },
    // check mode: bots on the shared chain also decode every patch themselves and compare acks
    "verify-shared-decode": { type: "boolean", default: false },
    // optional: read the server's CPU (utime+stime from /proc) and peak RSS over the window
    "server-pid": { type: "string" },
    // optional: a file written once every bot has joined or failed to (its warm-up starts then)
    "ready-file": { type: "string" },
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
if (args.game !== "arena" && args.game !== "bigworld") throw new Error("--game is arena or bigworld");
const ROOM = args.room ?? (args.game === "bigworld" ? "big" : "arena");
const SHARED = !args["no-shared-decode"] && args.game === "arena";
const SAMPLE_S = 0.5;              // visible entities are sampled this often in the window
const VERIFY = args["verify-shared-decode"];
const ROOM_STATE = 14, ROOM_STATE_PATCH = 15, PROTOCOL_CODE_MASK = 31;

// stdout carries exactly one JSON line: the SDK's own console output goes to stderr
console.log = console.info = console.debug = (...a) => console.error(...a);

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

// ---- shared decode ----
// Every bot receives byte-identical patches (the room has no per-client filters) and, once
// joined, the same sequence of them. As in gamesync's swarm (DecodeCache), bots that receive
// identical payload bytes against the identical baseline share the decode: one schema Decoder
// (the SDK's own, taken from the first bot to receive a patch) applies each patch once, and
// every bot reads its own `ack` from a per-patch snapshot. A bot is "on the chain" at version
// v once one of its patches matched a decoded patch byte for byte; until then it decodes with
// its own SDK decoder. --no-shared-decode makes every bot decode every patch itself.
const RING = 256;
const bytesEqual = (a, b) => a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
const chain = {
  decoder: null,      // the shared @colyseus/schema Decoder
  entities: null,     // its state's `entities` MapSchema
  latest: -1,         // newest decoded version
  ring: new Array(RING),   // version % RING -> { bytes, acks: Float64Array(COUNT) }
  hits: 0, decodes: 0, own: 0, mismatches: 0, verifyErrors: 0,
  entry(v) {
    return v >= 0 && v <= this.latest && this.latest - v < RING ? this.ring[v % RING] : undefined;
  },
  snapshot(bytes) {
    const acks = new Float64Array(bots.length);
    for (let i = 0; i < bots.length; i++) {
      const b = bots[i];
      if (b.room === null) continue;
      let e = b.sharedSelf;
      if (e === null) { e = this.entities.get(b.room.sessionId) ?? null; b.sharedSelf = e; }
      if (e !== null) acks[i] = e.ack;
    }
    this.latest++;
    this.ring[this.latest % RING] = { bytes, acks };
  },
  bootstrap(room) {
    this.decoder = room.serializer.decoder;
    this.entities = room.state.entities;
    this.snapshot(null);          // version 0: the leader's state as it is now
    return 0;
  },
  // bot on the chain at version v received patch `bytes`: returns its new version, or -1
  advance(v, bytes) {
    if (v < this.latest) {
      const e = this.entry(v + 1);
      if (e !== undefined && bytesEqual(e.bytes, bytes)) { this.hits++; return v + 1; }
      return -1;
    }
    this.decoder.decode(bytes, { offset: 1 });
    this.decodes++;
    this.snapshot(bytes);
    return this.latest;
  },
  find(bytes) {
    for (let v = this.latest; v > this.latest - RING && v > 0; v--) {
      const e = this.ring[v % RING];
      if (e !== undefined && e.bytes !== null && bytesEqual(e.bytes, bytes)) return v;
    }
    return -1;
  },
};

// ---- SDK hook: count every WebSocket message a room receives, then check the own ack ----
const botOfRoom = new WeakMap();
const origOnMessageCallback = Room.prototype.onMessageCallback;
Room.prototype.onMessageCallback = function (event) {
  const bot = botOfRoom.get(this);
  if (bot === undefined) { origOnMessageCallback.call(this, event); return; }
  const bytes = new Uint8Array(event.data);   // binaryType = "arraybuffer": one buffer per message
  const first = bytes.byteLength > 0 ? bytes[0] : -1;
  const code = first & PROTOCOL_CODE_MASK;
  if (bot.measuring) bot.bytes += bytes.byteLength;
  if (code !== ROOM_STATE && code !== ROOM_STATE_PATCH) { origOnMessageCallback.call(this, event); return; }
  if (bot.measuring) bot.states++;
  let ack;
  if (SHARED && first === ROOM_STATE_PATCH) {
    ack = bot.sharedPatch(this, bytes, event);
  } else {
    if (code === ROOM_STATE) bot.version = -1;   // a full state (re)baselines the bot's own decoder
    origOnMessageCallback.call(this, event);
    ack = bot.ownAck();
  }
  if (ack >= 0) bot.onAck(ack);
};

class Bot {
  constructor(idx, rng) {
    this.idx = idx;
    this.rng = rng;
    this.room = null;
    this.self = null;           // own entity in the bot's own decoded state
    this.sharedSelf = null;     // own entity in the shared decoded state
    this.version = -1;          // position on the shared-decode chain (-1: off the chain)
    this.leader = false;        // its SDK decoder is the shared one
    this.lastOwn = null;        // the last patch this bot decoded itself (while off the chain)
    this.seq = 0;
    this.dx = 0; this.dy = 0;
    this.nextTurn = 0;
    this.pending = [];          // [seq, t] in seq order; head index below
    this.head = 0;
    this.measuring = false;
    this.states = 0;
    this.bytes = 0;
    this.inputs = 0;
    this.latencies = [];
    this.visible = 0;           // sum of sampled entity counts, and the number of samples
    this.samples = 0;
    this.farthest = 0;          // the largest distance from its own entity to one it holds
    this.joined = false;
    this.lost = null;
  }

  async connect(client) {
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error("connect timeout")), CONNECT_TIMEOUT_S * 1000);
    });
    try {
      const room = await Promise.race([client.joinOrCreate(ROOM, { name: `bot${this.idx}` }), timeout]);
      this.room = room;
      botOfRoom.set(room, this);
      room.onLeave((code) => this.fail(`left (code ${code})`));
      room.onError((code, msg) => this.fail(`error ${code ?? "(no code)"}: ${msg ?? "websocket error"}`));
      room.onDrop?.((code, reason) => this.fail(`dropped (code ${code}) ${reason ?? ""}`));
      this.joined = true;
    } catch (e) {
      this.fail(`connect failed: ${e?.message ?? e}`);
    } finally {
      clearTimeout(timer);
    }
  }

  ownAck() {
    let self = this.self;
    if (self === null) {
      self = this.room.state?.entities?.get(this.room.sessionId) ?? null;
      if (self === null) return -1;
      this.self = self;
    }
    return self.ack;
  }

  /** Count the entities this bot holds, and how far from its own the farthest one is. */
  sample() {
    const entities = this.room?.state?.entities;
    if (SHARED) {   // the bots on the shared decode hold what the shared state holds
      if (chain.entities !== null && this.version >= 0) { this.visible += chain.entities.size; this.samples++; }
      return;
    }
    if (entities === undefined) return;
    this.visible += entities.size;
    this.samples++;
    const self = entities.get(this.room.sessionId);
    if (self === undefined) return;
    let far2 = this.farthest * this.farthest;
    entities.forEach((e) => {
      const d2 = (e.x - self.x) ** 2 + (e.y - self.y) ** 2;
      if (d2 > far2) far2 = d2;
    });
    this.farthest = Math.sqrt(far2);
  }

  sharedPatch(room, bytes, event) {
    if (this.version < 0) {
      if (chain.decoder === null) {
        this.version = chain.bootstrap(room);
        this.leader = true;
      } else {
        let v = chain.find(bytes);
        if (v >= 0) {
          chain.hits++;
        } else if (this.lastOwn !== null) {
          // this patch is new to the chain, but the bot's previous one may be on it: then the
          // bot's state is that version and this patch is the next one (advance() counts)
          const u = chain.find(this.lastOwn);
          if (u >= 0) v = chain.advance(u, bytes);
        }
        if (v < 0) {          // not decoded by anyone yet: decode it with the bot's own decoder
          chain.own++;
          this.lastOwn = bytes;
          origOnMessageCallback.call(room, event);
          return this.ownAck();
        }
        this.lastOwn = null;
        this.version = v;
        const ack = chain.ring[v % RING].acks[this.idx];
        if (VERIFY) {
          origOnMessageCallback.call(room, event);
          if (this.ownAck() !== ack) chain.verifyErrors++;
        }
        return ack;
      }
    }
    const v = chain.advance(this.version, bytes);
    if (v < 0) {
      chain.mismatches++;
      this.version = chain.find(bytes);
      if (this.version < 0) { this.fail("shared decode lost track of this bot's patch stream"); return -1; }
      return chain.ring[this.version % RING].acks[this.idx];
    }
    this.version = v;
    const ack = chain.ring[v % RING].acks[this.idx];
    if (VERIFY && !this.leader) {
      origOnMessageCallback.call(room, event);
      if (this.ownAck() !== ack) chain.verifyErrors++;
    }
    return ack;
  }

  onAck(ack) {
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
    if (this.measuring) this.inputs++;
    this.pending.push([this.seq, t]);
    if (this.pending.length - this.head > MAX_PENDING_INPUTS) this.head++;
  }

  fail(why) {
    if (this.lost === null && !finished) {
      this.lost = why;
      log(`bot ${this.idx}: ${why} (at ${now().toFixed(1)} s)`);
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
let skippedSlots = 0;   // slots dropped because the event loop stalled for a whole period
function senderTick() {
  // Send every slot that is due. A late timer catches up on the slots of the current period
  // (each bot still sends at most once per slot pass); a stall of a whole period or more
  // drops those sends instead of bursting.
  const due = Math.floor((now() - sendStart) / slotPeriod);
  if (due - k >= SEND_SLOTS) { skippedSlots += due - SEND_SLOTS + 1 - k; k = due - SEND_SLOTS + 1; }
  const t = now();
  for (; k <= due; k++) {
    for (const b of slots[k % SEND_SLOTS]) if (b.live) b.sendInput(t);
  }
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
if (args["ready-file"]) {
  const f = args["ready-file"];
  writeFileSync(f + ".tmp", JSON.stringify({ joined: bots.filter((b) => b.joined).length, count: COUNT }) + "\n");
  renameSync(f + ".tmp", f);
}
const roomIds = new Set(bots.filter((b) => b.room).map((b) => b.room.roomId));
log(`${bots.filter((b) => b.joined).length}/${COUNT} joined (${roomIds.size} room(s)); warm-up ${WARMUP}s`);

await sleep(WARMUP);
const t0 = now();
const cpu0 = process.cpuUsage();
const srvCpu0 = SERVER_PID ? serverCpuSeconds() : 0;
log(`measuring from unix ${(Date.now() / 1000).toFixed(3)} for ${DURATION}s`);
if (SHARED) {
  log(`shared decode: ${bots.filter((b) => b.version >= 0).length}/${COUNT} bots on the chain`);
  chain.hits = chain.decodes = chain.own = 0;   // the hit rate covers the window only
}
for (const b of bots) { b.measuring = true; b.states = 0; b.bytes = 0; b.inputs = 0; b.latencies = []; }
const sampler = setInterval(() => { for (const b of bots) if (b.live) b.sample(); }, SAMPLE_S * 1000);
for (let s = 0; s < DURATION; s += 5) {
  await sleep(Math.min(5, DURATION - s));
  log(`t=${Math.round(s + Math.min(5, DURATION - s))}s connected ${bots.filter((b) => b.live).length}/${COUNT}`);
}
const t1 = now();
for (const b of bots) b.measuring = false;
clearInterval(sampler);
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
// per-client figures describe the bots that joined (all of them, normally; see all_connected)
const joined = bots.filter((b) => b.joined);
const perBotStates = joined.map((b) => b.states / secs);
const perBotBytes = joined.map((b) => b.bytes / secs);
const round = (x, d) => +x.toFixed(d);
const result = {
  bots: COUNT,
  seconds: round(secs, 2),
  payload_bytes_per_client_s: round(median(perBotBytes), 1),
  states_per_client_s: round(median(perBotStates), 2),
  states_per_client_s_min: perBotStates.length ? round(Math.min(...perBotStates), 2) : 0,
  ack_latency_ms_p50: pct(0.5),
  ack_latency_ms_p99: pct(0.99),
  ack_samples: lat.length,
  all_connected: bots.every((b) => b.live),
  disconnected: bots.filter((b) => !b.live).length,
  joined: joined.length,
  rooms: roomIds.size,
  inputs_per_client_s: round(median(joined.map((b) => b.inputs / secs)), 2),
  bot_process_cpu: round((cpu1.user + cpu1.system) / 1e6 / secs, 3),
};
{
  const sampled = bots.filter((b) => b.samples > 0);
  result.visible_entities_mean = sampled.length
    ? round(sampled.reduce((a, b) => a + b.visible / b.samples, 0) / sampled.length, 1) : null;
  if (!SHARED) result.visible_distance_max = round(Math.max(0, ...bots.map((b) => b.farthest)), 1);
}
if (SHARED) {
  const total = chain.hits + chain.decodes + chain.own;
  result.shared_decode_hit_rate = total ? round(chain.hits / total, 3) : 0;
  if (chain.mismatches) result.shared_decode_mismatches = chain.mismatches;
  if (VERIFY) result.shared_decode_verify_errors = chain.verifyErrors;
}
log(`sender: ${skippedSlots} send slots skipped (event loop stalls)`);
if (SERVER_PID) {
  result.server_cpu = round((srvCpu1 - srvCpu0) / secs, 3);
  result.server_rss_mib = serverPeakRssMiB();
}

finished = true;
for (const b of bots) {
  try { b.room?.connection?.close(); } catch { /* closing anyway */ }
}
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
