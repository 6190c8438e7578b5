// ARENA.md's "Big world" as a Colyseus room: the arena's rules on a square of side
// sqrt(E * 1000) (10,000 units for E = 100,000), with spatial interest through Colyseus's own
// StateView. `entities` is a `.view()` map, so an entity reaches a client only once its
// StateView has it (`view.add`), and leaves it on `view.remove`. Which entities a view
// holds is kept by a uniform grid (interest.mjs): everything within R = 500 of the client's
// player, nothing beyond R + hysteresis + cell * sqrt(2) (< 2R with the defaults).

import { performance } from "node:perf_hooks";
import { Encoder, StateView, schema, t } from "@colyseus/schema";

import { ArenaRoom, Entity, log, stats } from "./arena.mjs";
import { InterestGrid } from "./interest.mjs";

export const RADIUS = 500;
export const CELL = 100;
export const HYSTERESIS = 50;
const AREA_PER_NPC = 1000;       // ARENA.md: one NPC per 1,000 square units
const CHECK_EVERY_TICKS = 30;    // --check-interest: brute-force check once a second
const SEAT_RESERVATION_S = 600;  // instead of Colyseus's 15 s (see onCreate)

export const BigState = schema({
  entities: t.map(Entity).view(),   // NPCs keyed "n<i>", players by sessionId; per-client views
}, "BigState");

const INTEREST_STATS = {
  interest_ms_total: 0,    // grid upkeep (cell changes, view.add / view.remove), inside sim_ms
  views_added: 0,          // view.add calls
  views_removed: 0,        // view.remove calls
  view_entities_mean: 0,   // entities per client view, sampled once a second
  interest_checks: 0,      // --check-interest: (client, entity) pairs checked
  interest_missing: 0,     // ... within R but not in the view (must stay 0)
  interest_leaked: 0,      // ... in the view but farther than 2R (must stay 0)
};

/** Room options: the arena's, plus radius, cell, hysteresis, dormant and checkInterest. */
export class BigWorldRoom extends ArenaRoom {
  createState() { return new BigState(); }

  onCreate(options = {}) {
    // Each client's patch is encoded after the previous one in the encoder's buffer; a large
    // buffer avoids the "buffer overflow" re-encode (and its warning) on the first patches.
    Encoder.BUFFER_SIZE = 256 * 1024;
    Object.assign(stats, INTEREST_STATS);
    // Every join encodes the whole state once more (E entities), and a patch to P views takes
    // seconds at P = 300, when the room admits about one client a second: with the default
    // 15 s seat reservation, most joins expire before their turn.
    this.seatReservationTimeout = SEAT_RESERVATION_S;
    const npcs = Number(options.npcs ?? 100000);
    super.onCreate({ ...options, npcs, size: Math.sqrt(npcs * AREA_PER_NPC) });
    this.radius = Number(options.radius ?? RADIUS);
    this.dormant = Boolean(options.dormant);
    this.grid = new InterestGrid(this.size, {
      cell: Number(options.cell ?? CELL),
      radius: this.radius,
      hysteresis: Number(options.hysteresis ?? HYSTERESIS),
      refresh: this.dormant ? (id) => this._refresh(id) : null,
    });
    if (this.grid.maxSeen >= 2 * this.radius) {
      throw new Error(`interest grid sees up to ${this.grid.maxSeen.toFixed(0)} > 2R: use a smaller cell or hysteresis`);
    }
    for (let i = 0; i < npcs; i++) this.grid.insert(i, this.npcs[i], this.npcX[i], this.npcY[i]);
    if (this.dormant) {
      // NPCs in cells nobody watches move in the typed arrays only; their schema fields are
      // written again once a client may see them (refresh, before view.add).
      const grid = this.grid;   // (its cellOf grows as players join: read it each time)
      this.npcLive = (i) => grid.watched[grid.cellOf[i]] > 0;
      this.npcStale = new Uint8Array(npcs);
      this.npcHeading = new Float64Array(npcs);
      for (let i = 0; i < npcs; i++) this.npcHeading[i] = this.npcs[i].heading;
    }
    this.checkInterest = Boolean(options.checkInterest);
    this.nextId = npcs;          // grid ids: NPC i is i; players get npcs, npcs + 1, ...
    this.freeIds = [];
    this.viewers = new Map();    // sessionId -> { p, id, viewer, view }
    log(`big world: side ${this.size.toFixed(0)}, R ${this.radius}, cell ${this.grid.cell}, ` +
        `hysteresis ${this.grid.hysteresis} (a view holds nothing beyond ${this.grid.maxSeen.toFixed(0)})` +
        (this.dormant ? ", dormant NPCs outside every view" : ""));
  }

  onJoin(client) {
    const view = client.view = new StateView();
    const p = super.onJoin(client);
    const id = this.freeIds.length ? this.freeIds.pop() : this.nextId++;
    this.grid.insert(id, p.e, p.x, p.y);   // shown to the viewers around it
    const viewer = this.grid.addViewer(view, p.x, p.y);
    this.viewers.set(client.sessionId, { p, id, viewer, view, x: p.x, y: p.y });
    this._count();
    return p;
  }

  onLeave(client) {
    const rec = this.viewers.get(client.sessionId);
    if (rec !== undefined) {
      this.viewers.delete(client.sessionId);
      this.grid.removeViewer(rec.viewer);
      this.grid.erase(rec.id);
      this.freeIds.push(rec.id);
      rec.view.dispose();
    }
    super.onLeave(client);   // deleting it from the map reaches exactly the views that hold it
    this._count();
  }

  afterStep() {
    const t0 = performance.now();
    const grid = this.grid, xs = this.npcX, ys = this.npcY;
    for (let i = 0, n = this.npcs.length; i < n; i++) grid.move(i, xs[i], ys[i]);
    for (const rec of this.viewers.values()) {
      const { p } = rec;
      if (p.x === rec.x && p.y === rec.y) continue;
      rec.x = p.x; rec.y = p.y;
      grid.moveViewer(rec.viewer, p.x, p.y);   // first: its own new cell is always watched
      grid.move(rec.id, p.x, p.y);
    }
    this._count();
    if (stats.ticks % CHECK_EVERY_TICKS === 0) {
      this._sampleViews();
      if (this.checkInterest) this._check();
    }
    stats.interest_ms_total += performance.now() - t0;
  }

  /** --dormant: bring NPC `id`'s schema fields up to date before a view shows it. */
  _refresh(id) {
    if (id >= this.npcs.length || this.npcStale[id] === 0) return;
    this.npcStale[id] = 0;
    const e = this.npcs[id];
    e.x = this.npcX[id]; e.y = this.npcY[id]; e.heading = this.npcHeading[id];
  }

  _count() {
    stats.views_added = this.grid.shown;
    stats.views_removed = this.grid.hidden;
  }

  /** The mean number of entities the views hold (from the grid: the sizes of the watched cells). */
  _sampleViews() {
    if (this.viewers.size === 0) return;
    let total = 0;
    for (const { viewer } of this.viewers.values()) {
      for (const c of viewer.cells) total += this.grid.members[c].length;
    }
    stats.view_entities_mean = +(total / this.viewers.size).toFixed(1);
  }

  /** Every client against every entity: within R must be in its view, beyond 2R must not. */
  _check() {
    const r2 = this.radius * this.radius, far2 = 4 * r2;
    const all = [];
    for (let i = 0; i < this.npcs.length; i++) all.push([this.npcs[i], this.npcX[i], this.npcY[i]]);
    for (const { p } of this.viewers.values()) all.push([p.e, p.x, p.y]);
    for (const { p, view } of this.viewers.values()) {
      for (const [e, x, y] of all) {
        const d2 = (x - p.x) ** 2 + (y - p.y) ** 2;
        const has = view.has(e);
        if (d2 <= r2 && !has) stats.interest_missing++;
        else if (d2 > far2 && has) stats.interest_leaked++;
      }
      stats.interest_checks += all.length;
    }
  }
}
