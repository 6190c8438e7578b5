// The client's copy of the world: the states it holds, by tick, and the newest one.
//
// The JavaScript twin of gamesync/core/mirror.py (Mirror): the same retention rule
// (docs/protocol.md section 12.2), the same ack bits (section 12.3), the same errors. The
// server's baseline for a client only moves forward, and its reference is either the tick
// before the baseline or the state the baseline was decoded from. So once a snapshot on
// baseline B has been applied, the mirror keeps the states from B - 1 on, plus the
// baselines those were decoded from (after a full snapshot at T: from T - history on).

import { dequantise, inflate as defaultInflate, prepareSchema } from "./codec.js";
import { decodeDelta } from "./delta.js";
import { DesyncError } from "./errors.js";
import { ACK_BITS, NO_TICK } from "./messages.js";

/**
 * The entities of the newest state a mirror holds, by id (shared by Mirror and view.js's
 * ViewMirror). A state with `live` (a ViewState) is read through its compact form: slot
 * `live[j]` holds entity `liveIds[j]` with values `liveCols[i][j]`.
 */
export class Entities {
  constructor(schema) {
    this.schema = schema;
    this.latest = null; // newest state, or null before the first snapshot
    this._index = null; // entity id -> [slot, where its values are in the columns], built on first lookup
  }

  _setLatest(st) {
    this.latest = st;
    this._index = null;
  }

  _lookup(id) {
    const st = this.latest;
    if (!st) return null;
    if (!this._index) {
      this._index = new Map();
      if (st.live) st.live.forEach((s, j) => this._index.set(st.liveIds[j], [s, j]));
      else for (let s = 0; s < st.n; s++) if (st.alive[s]) this._index.set(st.ids[s], [s, s]);
    }
    return this._index.get(id) ?? null;
  }

  /** Slot of the live entity `id` in the newest state, or -1. */
  slotOf(id) {
    const hit = this._lookup(id);
    return hit ? hit[0] : -1;
  }

  /**
   * The live entity `id` in the newest state, or null:
   * {id, slot, q: {field: quantised value}, v: {field: game value}}.
   */
  entity(id) {
    const hit = this._lookup(id);
    if (!hit) return null;
    const [slot, at] = hit, cols = this.latest.live ? this.latest.liveCols : this.latest.cols;
    const q = {}, v = {};
    this.schema.forEach((f, i) => {
      q[f.name] = cols[i][at];
      v[f.name] = dequantise(f, q[f.name]);
    });
    return { id, slot, q, v };
  }

  /** Ids of the live entities in the newest state, in slot order. */
  ids() {
    const st = this.latest, out = [];
    if (st && st.live) return [...st.liveIds];
    if (st) for (let s = 0; s < st.n; s++) if (st.alive[s]) out.push(st.ids[s]);
    return out;
  }
}

export class Mirror extends Entities {
  /**
   * @param schema  the welcome's schema (wire entries, or prepareSchema's result)
   * @param history the welcome's `history`: what a full snapshot keeps behind it
   * @param options.inflate  zlib inflater for compressed payloads (default: codec.inflate)
   */
  constructor(schema, history, { inflate = defaultInflate } = {}) {
    super(prepareSchema(schema));
    this.history = history;
    this.inflate = inflate;
    this._states = new Map(); // tick -> {state, base: the tick it was decoded from}
    this._chain = Promise.resolve(); // applies run strictly one after another
  }

  /** Newest tick held (-1 before the first snapshot): the one to acknowledge. */
  get tick() {
    return this.latest ? this.latest.tick : NO_TICK;
  }

  /** Number of states held. */
  get size() {
    return this._states.size;
  }

  /** The held state at `tick`, or null. */
  get(tick) {
    const hit = this._states.get(tick);
    return hit ? hit.state : null;
  }

  /** The tick the held state at `tick` was decoded from (-1: a full snapshot), or undefined. */
  baseOf(tick) {
    return this._states.get(tick)?.base;
  }

  /** The ticks held, ascending. */
  ticks() {
    return [...this._states.keys()].sort((a, b) => a - b);
  }

  /**
   * Decode one snapshot and keep its state: resolves to the new state, or null when it is
   * not newer than the latest (ignored, nothing decoded). Rejects with DesyncError when its
   * baseline or reference is not held or its payload does not decode; the mirror is then
   * unchanged. Calls are queued: each runs after the previous one has finished, since
   * inflating is asynchronous and a snapshot may build on the one before it.
   */
  apply(tick, base, ref, flags, payload) {
    const run = this._chain.then(() => this._apply(tick, base, ref, flags, payload));
    this._chain = run.catch(() => {});
    return run;
  }

  /** apply() for a snapshot from parseServer. */
  applySnapshot(s) {
    return this.apply(s.tick, s.base, s.ref, s.flags, s.payload);
  }

  async _apply(tick, base, ref, flags, payload) {
    if (tick <= this.tick) return null;
    const b = this._need(base, "baseline");
    const r = b ? this._need(ref, "reference") : null; // no baseline: the reference is not used
    const raw = flags & 1 ? await this.inflate(payload) : payload;
    const st = decodeDelta(this.schema, raw, tick, b, r);
    this._states.set(tick, { state: st, base });
    this._setLatest(st);
    this._prune(base !== NO_TICK ? base - 1 : tick - this.history);
    return st;
  }

  _need(tick, what) {
    if (tick === NO_TICK) return null;
    const st = this.get(tick);
    if (!st) throw new DesyncError(`snapshot needs ${what} tick ${tick}, which this client does not hold`);
    return st;
  }

  // keep the states from `floor` on, and the states those were decoded from. Exactly as
  // mirror.py's _prune, which only prunes when the set to keep differs in size from what is
  // held; that set also counts a full snapshot's base (-1), so a prune is sometimes put off
  // until the next snapshot. Keeping more is harmless (section 12.2), and the ack bits then
  // report the same ticks as the Python client's.
  _prune(floor) {
    const keep = new Set();
    for (const t of this._states.keys()) if (t >= floor) keep.add(t);
    for (const t of [...keep]) keep.add(this._states.get(t).base);
    if (keep.size === this._states.size) return;
    for (const t of [...this._states.keys()]) if (!keep.has(t)) this._states.delete(t);
  }

  /** Bit i set when the mirror holds tick `this.tick - 1 - i` (i < 32); unsigned. */
  ackBits() {
    const top = this.tick;
    let bits = 0;
    for (const t of this._states.keys()) {
      const d = top - 1 - t;
      if (d >= 0 && d < ACK_BITS) bits |= 1 << d;
    }
    return bits >>> 0; // 1 << 31 is negative in JavaScript
  }
}
