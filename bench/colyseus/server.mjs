// Colyseus 0.18 baseline for the gamesync arena benchmark: one "arena" room that runs the
// ARENA.md scenario (see /work/shared/ARENA.md and gamesync/games/arena.py).
//
//   node server.mjs --port 0 --port-file /tmp/cport [--npcs 1000] [--stats-file F]
//
// Listens on 127.0.0.1. The room is created at start-up (autoDispose off) so that every
// bot's joinOrCreate("arena") lands in the same room and NPCs run from the first second.
// Progress goes to stderr; with --stats-file a JSON object with the server's own counters
// (bytes written to client sockets, ticks, patches, timings) is rewritten once a second
// and on exit.

import { createServer } from "node:http";
import { mulberry32 } from "./rng.mjs";
import { writeFileSync, renameSync } from "node:fs";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";

import { Server, Room, matchMaker } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { schema, t } from "@colyseus/schema";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "2567" },
    "port-file": { type: "string" },
    npcs: { type: "string", default: "1000" },
    "stats-file": { type: "string" },
    // "timer" (default, the idiomatic Colyseus setup): setPatchRate(1000/30), a patch timer
    // independent of the simulation timer. "after-tick": no patch timer; broadcastPatch()
    // runs at the end of every simulation tick (removes the drifting sim->patch phase).
    "patch-mode": { type: "string", default: "timer" },
    quiet: { type: "boolean", default: false },
  },
});

// ---- ARENA.md constants (same names and values as gamesync/games/arena.py) ----
const SIZE = 1000.0;
const PLAYER_SPEED = 200.0;
const NPC_SPEED = 100.0;
const WALK_S = 2.0;
const CYCLE_S = 4.0;
const SEED = 20261125;
const KIND_NPC = 0;
const KIND_PLAYER = 1;
const RATE_HZ = 30;
const DT = 1 / RATE_HZ;              // every simulation tick (and every input) advances 1/30 s
const PERIOD_MS = 1000 / RATE_HZ;
const DIAG = 1 / Math.sqrt(2);
const TWO_PI = 2 * Math.PI;

function log(...a) { if (!args.quiet) console.error("[colyseus-arena]", ...a); }


const clamp = (v) => (v < 0 ? 0 : v > SIZE ? SIZE : v);

// ---- state ----
export const Entity = schema({
  x: t.float32(),
  y: t.float32(),
  heading: t.float32(),
  hp: t.uint8(),
  ack: t.uint32(),
  kind: t.uint8(),
}, "Entity");

export const ArenaState = schema({
  entities: t.map(Entity),   // NPCs keyed "n<i>", players keyed by their sessionId
}, "ArenaState");

// ---- server-side counters ----
const stats = {
  started_at: Date.now(),
  ticks: 0,
  tick_overruns: 0,      // ticks whose simulation step + the latest patch took > 1/30 s
  sim_ms_total: 0,
  sim_ms_max: 0,
  patches: 0,
  patch_ms_total: 0,
  patch_ms_max: 0,
  last_patch_ms: 0,
  inputs_received: 0,
  inputs_applied: 0,
  inputs_dropped: 0,
  joins: 0,
  leaves: 0,
  clients: 0,
};

class ArenaRoom extends Room {
  onCreate(options = {}) {
    this.autoDispose = false;
    const nNpcs = Number(options.npcs ?? 1000);
    this.rng = mulberry32(options.seed ?? SEED);
    this.time = 0;
    this.state = new ArenaState();

    // NPCs: seeded positions, random initial heading, random phase in the 4 s cycle.
    const rng = this.rng;
    this.npcs = new Array(nNpcs);
    this.npcPhase = new Float64Array(nNpcs);
    this.npcDirX = new Float64Array(nNpcs);
    this.npcDirY = new Float64Array(nNpcs);
    this.npcX = new Float64Array(nNpcs);   // authoritative positions (schema sends float32)
    this.npcY = new Float64Array(nNpcs);
    for (let i = 0; i < nNpcs; i++) {
      const e = new Entity();
      this.npcX[i] = rng() * SIZE;
      this.npcY[i] = rng() * SIZE;
      const h = rng() * TWO_PI;
      e.x = this.npcX[i];
      e.y = this.npcY[i];
      e.heading = h;
      e.hp = 100;
      e.ack = 0;
      e.kind = KIND_NPC;
      this.npcDirX[i] = Math.cos(h);
      this.npcDirY[i] = Math.sin(h);
      this.npcs[i] = e;
      this.state.entities.set("n" + i, e);
    }
    for (let i = 0; i < nNpcs; i++) this.npcPhase[i] = rng() * CYCLE_S;

    /** sessionId -> { e, x, y, queue: [{seq,dx,dy}], maxSeq } */
    this.players = new Map();

    this.onMessage("input", (client, msg) => {
      stats.inputs_received++;
      const p = this.players.get(client.sessionId);
      if (p === undefined || msg === null || typeof msg !== "object") { stats.inputs_dropped++; return; }
      const { seq, dx, dy } = msg;
      if (!Number.isInteger(seq) || seq <= p.maxSeq || seq > 0xFFFFFFFF ||
          (dx !== -1 && dx !== 0 && dx !== 1) || (dy !== -1 && dy !== 0 && dy !== 1)) {
        stats.inputs_dropped++;   // duplicate, old, or malformed
        return;
      }
      p.maxSeq = seq;
      p.queue.push(msg);
    });

    if (args["patch-mode"] === "after-tick") {
      this.setPatchRate(null);
      this.setSimulationInterval(() => { this.step(); this.broadcastPatch(); }, PERIOD_MS);
    } else if (args["patch-mode"] === "timer") {
      this.setSimulationInterval(() => this.step(), PERIOD_MS);
      this.setPatchRate(PERIOD_MS);
    } else {
      throw new Error("--patch-mode is timer or after-tick");
    }
    log(`room ${this.roomId} created: ${nNpcs} NPCs, sim ${RATE_HZ} Hz, patch ${RATE_HZ} Hz (${args["patch-mode"]})`);
  }

  onJoin(client) {
    const e = new Entity();
    const x = this.rng() * SIZE, y = this.rng() * SIZE;
    e.x = x; e.y = y; e.heading = 0; e.hp = 100; e.ack = 0; e.kind = KIND_PLAYER;
    this.players.set(client.sessionId, { e, x, y, queue: [], maxSeq: 0 });
    this.state.entities.set(client.sessionId, e);
    stats.joins++;
    stats.clients = this.clients.length;
  }

  onLeave(client) {
    this.players.delete(client.sessionId);
    this.state.entities.delete(client.sessionId);
    stats.leaves++;
    stats.clients = this.clients.length;
  }

  step() {
    const t0 = performance.now();
    // Players: every queued input is one tick of movement, applied in seq order.
    for (const p of this.players.values()) {
      const q = p.queue;
      if (q.length === 0) continue;
      if (q.length > 1) q.sort((a, b) => a.seq - b.seq);
      let x = p.x, y = p.y, heading = p.e.heading, ack = p.e.ack;
      for (let k = 0; k < q.length; k++) {
        const { seq, dx, dy } = q[k];
        if (dx !== 0 || dy !== 0) {
          const s = (dx !== 0 && dy !== 0 ? DIAG : 1.0) * PLAYER_SPEED * DT;
          x = clamp(x + dx * s);
          y = clamp(y + dy * s);
          heading = Math.atan2(dy, dx);
          if (heading < 0) heading += TWO_PI;
        }
        ack = seq;
      }
      stats.inputs_applied += q.length;
      q.length = 0;
      p.x = x; p.y = y;
      const e = p.e;
      e.x = x; e.y = y; e.heading = heading; e.ack = ack;
    }

    // NPCs: walk 2 s / rest 2 s with a per-NPC phase; a new random heading at each walk start.
    const n = this.npcs.length, time = this.time, rng = this.rng;
    const phase = this.npcPhase, dxs = this.npcDirX, dys = this.npcDirY, xs = this.npcX, ys = this.npcY;
    const stepLen = NPC_SPEED * DT;
    for (let i = 0; i < n; i++) {
      const before = (phase[i] + time) % CYCLE_S;
      const after = (phase[i] + time + DT) % CYCLE_S;
      const e = this.npcs[i];
      if (after < before) {            // wrapped into a new cycle: a new walk begins
        const h = rng() * TWO_PI;
        dxs[i] = Math.cos(h); dys[i] = Math.sin(h);
        e.heading = h;
      }
      if (after < WALK_S) {
        const x = clamp(xs[i] + dxs[i] * stepLen), y = clamp(ys[i] + dys[i] * stepLen);
        xs[i] = x; ys[i] = y;
        e.x = x; e.y = y;
      }
    }
    this.time += DT;

    const ms = performance.now() - t0;
    stats.ticks++;
    stats.sim_ms_total += ms;
    if (ms > stats.sim_ms_max) stats.sim_ms_max = ms;
    if (ms + stats.last_patch_ms > PERIOD_MS) stats.tick_overruns++;
  }

  broadcastPatch() {
    const t0 = performance.now();
    const r = super.broadcastPatch();
    const ms = performance.now() - t0;
    stats.patches++;
    stats.patch_ms_total += ms;
    stats.last_patch_ms = ms;
    if (ms > stats.patch_ms_max) stats.patch_ms_max = ms;
    return r;
  }
}

// ---- bytes written to client sockets (TCP payload the server handed to the kernel) ----
const httpServer = createServer();
const liveSockets = new Set();
const closedBytes = { all: 0, ws: 0 };
httpServer.on("connection", (sock) => {
  liveSockets.add(sock);
  sock.once("close", () => {
    liveSockets.delete(sock);
    closedBytes.all += sock.bytesWritten;
    if (sock.__isWs) closedBytes.ws += sock.bytesWritten;
  });
});
httpServer.on("upgrade", (_req, sock) => { sock.__isWs = true; });

function bytesWritten() {
  let all = closedBytes.all, ws = closedBytes.ws;
  for (const s of liveSockets) {
    const b = s.bytesWritten;   // includes bytes still queued in user space
    all += b;
    if (s.__isWs) ws += b;
  }
  return { all, ws };
}

function snapshot() {
  const b = bytesWritten();
  const mem = process.memoryUsage();
  return {
    pid: process.pid,
    time: Date.now() / 1000,
    uptime_s: (Date.now() - stats.started_at) / 1000,
    bytes_written: b.all,          // every socket: matchmaking HTTP + WebSocket
    ws_bytes_written: b.ws,        // upgraded (WebSocket) sockets only, incl. frame headers
    ...stats,
    rss_mib: +(mem.rss / 1048576).toFixed(1),
  };
}

function writeStats() {
  if (!args["stats-file"]) return;
  const f = args["stats-file"];
  writeFileSync(f + ".tmp", JSON.stringify(snapshot()) + "\n");
  renameSync(f + ".tmp", f);
}

// ---- boot ----
const gameServer = new Server({
  transport: new WebSocketTransport({ server: httpServer }),
  greet: false,
  gracefullyShutdown: false,   // handled below, so stats are written and exit is prompt
});
gameServer.define("arena", ArenaRoom);

await gameServer.listen(Number(args.port), "127.0.0.1");
const port = httpServer.address().port;
await matchMaker.createRoom("arena", { npcs: Number(args.npcs) });
if (args["port-file"]) {
  writeFileSync(args["port-file"] + ".tmp", String(port));
  renameSync(args["port-file"] + ".tmp", args["port-file"]);
}
log(`listening on 127.0.0.1:${port} (node ${process.version}, pid ${process.pid})`);

let prev = snapshot();
const statsTimer = setInterval(() => {
  writeStats();
}, 1000);
const logTimer = setInterval(() => {
  const s = snapshot();
  const dt = s.time - prev.time;
  const dTicks = s.ticks - prev.ticks, dPatches = s.patches - prev.patches;
  log(`clients ${s.clients} ticks/s ${(dTicks / dt).toFixed(1)} patches/s ${(dPatches / dt).toFixed(1)} ` +
      `sim ${dTicks ? ((s.sim_ms_total - prev.sim_ms_total) / dTicks).toFixed(2) : "-"} ms ` +
      `patch ${dPatches ? ((s.patch_ms_total - prev.patch_ms_total) / dPatches).toFixed(2) : "-"} ms ` +
      `ws out ${((s.ws_bytes_written - prev.ws_bytes_written) / dt / 1024).toFixed(0)} KiB/s rss ${s.rss_mib} MiB`);
  prev = s;
}, 5000);

let stopping = false;
async function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  log(`${sig}: shutting down`);
  clearInterval(statsTimer);
  clearInterval(logTimer);
  writeStats();
  const hard = setTimeout(() => process.exit(0), 3000);
  hard.unref();
  try {
    await gameServer.gracefullyShutdown(false);
  } catch (e) {
    log("shutdown error:", e?.message ?? e);
  }
  process.exit(0);
}
process.once("SIGINT", () => shutdown("SIGINT"));
process.once("SIGTERM", () => shutdown("SIGTERM"));
