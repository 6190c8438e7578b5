// The ARENA.md scenario as a Colyseus room (see /work/shared/ARENA.md and
// gamesync/games/arena.py): the state schema, the rules, and the server's own counters.
// The big world (bigworld.mjs) is the same room on a larger square with interest on top.

import { mulberry32 } from "./rng.mjs";
import { performance } from "node:perf_hooks";

import { Room } from "@colyseus/core";
import { schema, t } from "@colyseus/schema";

// ---- ARENA.md constants (same names and values as gamesync/games/arena.py) ----
export const SIZE = 1000.0;
const PLAYER_SPEED = 200.0;
const NPC_SPEED = 100.0;
const WALK_S = 2.0;
const CYCLE_S = 4.0;
export const SEED = 20261125;
const KIND_NPC = 0;
const KIND_PLAYER = 1;
export const RATE_HZ = 30;
const DT = 1 / RATE_HZ;              // every simulation tick (and every input) advances 1/30 s
const PERIOD_MS = 1000 / RATE_HZ;
const DIAG = 1 / Math.sqrt(2);
const TWO_PI = 2 * Math.PI;

let quiet = false;
export function setQuiet(q) { quiet = q; }
export function log(...a) { if (!quiet) console.error("[colyseus]", ...a); }

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
export const stats = {
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

/** Room options: npcs (E), size (side of the square world), seed, patchMode. */
export class ArenaRoom extends Room {
  createState() { return new ArenaState(); }

  onCreate(options = {}) {
    this.autoDispose = false;
    const nNpcs = Number(options.npcs ?? 1000);
    const size = this.size = Number(options.size ?? SIZE);
    this.rng = mulberry32(options.seed ?? SEED);
    this.time = 0;
    this.state = this.createState();

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
      this.npcX[i] = rng() * size;
      this.npcY[i] = rng() * size;
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

    // Optional (the big world's --dormant): NPC i's schema fields are written only while
    // npcLive(i) holds; otherwise npcStale[i] is set and the arrays alone move on.
    this.npcLive = null;
    this.npcStale = null;
    this.npcHeading = null;   // with npcLive: every NPC's current heading

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

    const patchMode = options.patchMode ?? "timer";
    if (patchMode === "after-tick") {
      this.setPatchRate(null);
      this.setSimulationInterval(() => { this.step(); this.broadcastPatch(); }, PERIOD_MS);
    } else if (patchMode === "timer") {
      this.setSimulationInterval(() => this.step(), PERIOD_MS);
      this.setPatchRate(PERIOD_MS);
    } else {
      throw new Error("--patch-mode is timer or after-tick");
    }
    log(`room ${this.roomId} created: ${nNpcs} NPCs on ${size.toFixed(0)} x ${size.toFixed(0)}, ` +
        `sim ${RATE_HZ} Hz, patch ${RATE_HZ} Hz (${patchMode})`);
  }

  onJoin(client) {
    const e = new Entity();
    const x = this.rng() * this.size, y = this.rng() * this.size;
    e.x = x; e.y = y; e.heading = 0; e.hp = 100; e.ack = 0; e.kind = KIND_PLAYER;
    const p = { e, x, y, queue: [], maxSeq: 0 };
    this.players.set(client.sessionId, p);
    this.state.entities.set(client.sessionId, e);
    stats.joins++;
    stats.clients = this.clients.length;
    return p;
  }

  onLeave(client) {
    this.players.delete(client.sessionId);
    this.state.entities.delete(client.sessionId);
    stats.leaves++;
    stats.clients = this.clients.length;
  }

  step() {
    const t0 = performance.now();
    const size = this.size;
    const clamp = (v) => (v < 0 ? 0 : v > size ? size : v);
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
    const live = this.npcLive, stale = this.npcStale, headings = this.npcHeading;
    for (let i = 0; i < n; i++) {
      const before = (phase[i] + time) % CYCLE_S;
      const after = (phase[i] + time + DT) % CYCLE_S;
      const write = live === null || live(i);
      const e = this.npcs[i];
      if (after < before) {            // wrapped into a new cycle: a new walk begins
        const h = rng() * TWO_PI;
        dxs[i] = Math.cos(h); dys[i] = Math.sin(h);
        if (headings !== null) headings[i] = h;
        if (write) e.heading = h; else stale[i] = 1;
      }
      if (after < WALK_S) {
        const x = clamp(xs[i] + dxs[i] * stepLen), y = clamp(ys[i] + dys[i] * stepLen);
        xs[i] = x; ys[i] = y;
        if (write) { e.x = x; e.y = y; } else stale[i] = 1;
      }
    }
    this.time += DT;
    this.afterStep();

    const ms = performance.now() - t0;
    stats.ticks++;
    stats.sim_ms_total += ms;
    if (ms > stats.sim_ms_max) stats.sim_ms_max = ms;
    if (ms + stats.last_patch_ms > PERIOD_MS) stats.tick_overruns++;
  }

  /** Runs at the end of every simulation step, inside its timing (the big world's interest). */
  afterStep() {}

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
