// The client's copy of a view room (docs/protocol.md section 18): the cells it watches, each
// with its members (by ascending slot) and their values at the newest snapshot and at the
// one before, turned by each view payload into the next snapshot's. The JavaScript twin of
// gamesync/core/viewmirror.py (ViewMirror, ViewStates): the same states, bit for bit.
//
// `decodeView` is the pure step (held cells + an inflated payload -> the next cells);
// `ViewMirror` holds them behind the interface of mirror.js's Mirror (apply, latest, entity,
// ids...), so a page handles a view room's snapshots as it does any other room's.

import { boundedDecoder, inflate as defaultInflate, isInt, isMap, need, prepareSchema } from "./codec.js";
import { predictValue } from "./delta.js";
import { DesyncError } from "./errors.js";
import { NO_TICK } from "./messages.js";
import { Entities } from "./mirror.js";
import { emptyMembers, GET_WIRE, readChunk, readRecords, recordLayout, viewOf } from "./viewwire.js";

export const VIEW_FLAGS = 2; // a view room's snapshot flags: bit 1, never deflated as a whole
export const MAX_CELLS = 1 << 24; // cell ids a client accepts
export const MAX_RECORD_BYTES = 64 << 20; // a deflated record list inflates to at most this

const payloadDecoder = boundedDecoder(MAX_CELLS);

// ---- member lists ------------------------------------------------------------------------------

// the members at `idx` (positions) of `m`
function pick(m, idx) {
  const k = idx.length;
  const take = (a, T) => { const o = new T(k); for (let j = 0; j < k; j++) o[j] = a[idx[j]]; return o; };
  return { k, slots: take(m.slots, Uint32Array), ids: take(m.ids, Uint32Array), hasRef: take(m.hasRef, Uint8Array),
           val: m.val.map((c) => take(c, Float64Array)), ref: m.ref.map((c) => take(c, Float64Array)) };
}

// member lists merged by ascending slot (stable: equal slots keep their order)
function join(parts, nf) {
  const busy = parts.filter((p) => p.k);
  if (busy.length <= 1) return busy[0] ?? parts[0] ?? emptyMembers(nf);
  const all = { k: 0, slots: [], ids: [], hasRef: [], val: Array.from({ length: nf }, () => []),
                ref: Array.from({ length: nf }, () => []) };
  for (const p of busy) {
    for (let j = 0; j < p.k; j++) {
      all.slots.push(p.slots[j]); all.ids.push(p.ids[j]); all.hasRef.push(p.hasRef[j]);
      for (let i = 0; i < nf; i++) { all.val[i].push(p.val[i][j]); all.ref[i].push(p.ref[i][j]); }
    }
  }
  all.k = all.slots.length;
  const order = Array.from({ length: all.k }, (_, j) => j).sort((a, b) => all.slots[a] - all.slots[b] || a - b);
  return pick(all, order);
}

// predicted values at the new snapshot (section 10; `steps` [T - B, B - R], or null without
// a reference); the old values become the reference, of every member
function advance(schema, m, steps) {
  let val = m.val;
  if (steps && m.k && m.hasRef.some((x) => x)) {
    const [tb, br] = steps;
    val = schema.map((f, i) => {
      const b = m.val[i], r = m.ref[i], out = new Float64Array(m.k);
      for (let j = 0; j < m.k; j++) out[j] = f.hold || !m.hasRef[j] ? b[j] : predictValue(f, b[j], r[j], tb, br);
      return out;
    });
  }
  return { k: m.k, slots: m.slots, ids: m.ids, val, ref: m.val, hasRef: new Uint8Array(m.k).fill(1) };
}

// a chunk's residuals on the merged members; members whose record came in this snapshot
// (`fresh`, by slot) keep their record's values
function addResiduals(schema, m, changed, fresh) {
  const { pos, res } = changed;
  const val = schema.map((f, i) => {
    const v = Float64Array.from(m.val[i]);
    if (res[i]) for (let j = 0; j < pos.length; j++) v[pos[j]] += res[i][j];
    for (let j = 0; j < m.k; j++) v[j] = fresh.has(m.slots[j]) ? m.val[i][j] : f.fit(v[j]);
    return v;
  });
  return { ...m, val };
}

// ---- one payload -------------------------------------------------------------------------------

/**
 * [dropped, kept, added, enter] of a view payload, their shapes checked, and `private` (a bin)
 * in a room with private fields (`withPrivate`: the payload then has a fifth element), else null.
 */
export function unpackView(payload, withPrivate = false) {
  let top;
  try {
    top = payloadDecoder.decode(payload);
  } catch (e) {
    throw new DesyncError(`undecodable view payload: ${e.message}`);
  }
  const want = withPrivate ? 5 : 4;
  if (!Array.isArray(top) || top.length !== want) throw new DesyncError(`a view payload of this room is an array of ${want}`);
  const [dropped, kept, added, enter, own = null] = top;
  const isBin = (b) => b instanceof Uint8Array;
  if (withPrivate && !isBin(own)) throw new DesyncError("private rows must be a bin");
  if (!isBin(dropped) || !isBin(kept)) throw new DesyncError("dropped and kept must be bins");
  if (!Array.isArray(added)) throw new DesyncError("added cells must be an array");
  for (const a of added) {
    if (!Array.isArray(a) || a.length !== 4 || !a.slice(0, 3).every((x) => isInt(x)) || !isBin(a[3]))
      throw new DesyncError("an added cell is [cell, count, flags, records]");
    if (a[2] & ~1) throw new DesyncError(`bad added-cell flags ${a[2]}`);
  }
  if (!Array.isArray(enter) || enter.length !== 2 || (enter[0] !== 0 && enter[0] !== 1) || !isBin(enter[1]))
    throw new DesyncError("enter records are [flags, records]");
  return { dropped, kept, added, enter, own };
}

/** The payload's record lists inflated where their flags say so (with `inflate`). */
export async function inflateRecords(body, inflate) {
  const raw = async (flags, bin) => (flags & 1 ? inflate(bin, MAX_RECORD_BYTES) : bin);
  const added = [];
  for (const [cell, count, flags, bin] of body.added) added.push([cell, count, await raw(flags, bin)]);
  return { ...body, added, enter: await raw(body.enter[0], body.enter[1]) };
}

function readCells(bin) {
  if (bin.byteLength % 4) throw new DesyncError("cell list is not whole <u4 values");
  const v = viewOf(bin), out = [];
  for (let o = 0; o < bin.byteLength; o += 4) {
    const c = v.getUint32(o, true);
    if (out.length && c <= out[out.length - 1]) throw new DesyncError("cell lists must ascend");
    out.push(c);
  }
  return out;
}

/**
 * One view payload (unpacked, record lists inflated) applied to `held` ({cells: Map cell ->
 * members, tick, prev: the tick before it}) -> the new Map of watched cells (section 18.6).
 * `held` is not changed. DesyncError for anything that does not fit.
 */
export function decodeView(schema, layout, held, tick, base, ref, body) {
  const nf = schema.length;
  let old = held.cells;
  if (base === NO_TICK) old = new Map(); // a full snapshot starts from nothing
  else if (base !== held.tick || tick <= base) throw new DesyncError(`snapshot ${tick} is built on ${base}, but the newest held is ${held.tick}`);
  else if (ref !== NO_TICK && ref !== held.prev) throw new DesyncError(`reference ${ref} is not the snapshot before ${base}`);
  const steps = ref !== NO_TICK ? [tick - base, base - ref] : null;
  const dropped = readCells(body.dropped);
  for (const c of dropped) if (!old.has(c)) throw new DesyncError("dropped a cell not held");
  const gone = new Set(dropped);
  const keptIds = [...old.keys()].filter((c) => !gone.has(c)).sort((a, b) => a - b);
  // the chunks, back to back, one per kept cell; every byte used
  const chunks = [];
  let at = 0;
  for (const c of keptIds) {
    const ch = readChunk(schema, layout, body.kept, at, old.get(c).k);
    chunks.push(ch);
    at = ch.end;
  }
  if (at !== body.kept.byteLength) throw new DesyncError("kept-cells bin has trailing bytes");
  const enter = readRecords(schema, layout, body.enter);
  // where each departed member was held: left members of kept cells, members of dropped ones
  const pool = new Map();
  keptIds.forEach((c, n) => { const m = old.get(c); for (const p of chunks[n].left ?? []) pool.set(m.slots[p], [m, p]); });
  for (const c of dropped) { const m = old.get(c); for (let p = 0; p < m.k; p++) pool.set(m.slots[p], [m, p]); }
  const cells = new Map();
  keptIds.forEach((c, n) => {
    const ch = chunks[n], m = old.get(c);
    cells.set(c, ch.nothing ? advance(schema, m, steps) : keptCell(schema, layout, m, ch, pool, enter, steps));
  });
  let last = -1;
  for (const [c, count, records] of body.added) {
    if (c <= last || c >= MAX_CELLS || old.has(c)) throw new DesyncError("added cells must ascend and be new");
    last = c;
    const m = readRecords(schema, layout, records);
    if (m.k !== count) throw new DesyncError(`cell ${c} lists ${m.k} entities, not ${count}`);
    cells.set(c, m);
  }
  return cells;
}

// a kept cell after its chunk: the members that stayed, arrivals, spawns, residuals
function keptCell(schema, layout, m, ch, pool, enter, steps) {
  const nf = schema.length;
  const leaving = new Set(ch.left);
  const stay = [];
  for (let p = 0; p < m.k; p++) if (!leaving.has(p)) stay.push(p);
  const came = [], fresh = [];
  for (const s of ch.arrived) {
    const src = pool.get(s);
    if (src) { // held before, in another cell
      pool.delete(s);
      came.push(pick(src[0], [src[1]]));
      continue;
    }
    const j = searchSlot(enter.slots, s);
    if (j < 0) throw new DesyncError(`slot ${s} arrived, but it was neither held nor in the enter records`);
    fresh.push(pick(enter, [j]));
  }
  if (ch.spawned) fresh.push(readRecords(schema, layout, ch.spawned));
  const merged = join([advance(schema, join([pick(m, stay), ...came], nf), steps), ...fresh], nf);
  for (let j = 1; j < merged.k; j++) if (merged.slots[j] === merged.slots[j - 1]) throw new DesyncError("a slot appears twice in one cell");
  if (!ch.changed) return merged;
  const freshSlots = new Set(fresh.flatMap((f) => [...f.slots]));
  return addResiduals(schema, merged, ch.changed, freshSlots);
}

function searchSlot(slots, s) {
  let lo = 0, hi = slots.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (slots[mid] < s) lo = mid + 1; else hi = mid; }
  return lo < slots.length && slots[lo] === s ? lo : -1;
}

/**
 * The watched cells as one state {tick, n, alive, ids, cols} over the slots (a slot not held is
 * dead), with the client's own private field values (`own`, readPrivate's rows) laid over them.
 */
export function viewState(schema, cells, tick, own = null) {
  let n = 0;
  for (const m of cells.values()) if (m.k) n = Math.max(n, m.slots[m.k - 1] + 1);
  const alive = new Uint8Array(n), ids = new Uint32Array(n), cols = schema.map(() => new Float64Array(n));
  for (const m of cells.values()) {
    for (let j = 0; j < m.k; j++) {
      const s = m.slots[j];
      if (alive[s]) throw new DesyncError(`slot ${s} is held in two cells`);
      alive[s] = 1;
      ids[s] = m.ids[j];
      for (let i = 0; i < cols.length; i++) cols[i][s] = m.val[i][j];
    }
  }
  if (own) for (const { slot, values } of own.rows) own.fields.forEach((i, j) => { cols[i][slot] = values[j]; });
  return { tick, n, alive, ids, cols };
}

/**
 * Where a private row's parts sit (section 18.4): slot <u4, then each private field in its wire
 * dtype, schema order. `names`: the welcome's view.private; each must be a schema field.
 */
export function privateLayout(schema, names) {
  for (const name of names) need(schema.some((f) => f.name === name), `view: private field ${JSON.stringify(name)} is not a field`);
  const fields = schema.flatMap((f, i) => (names.includes(f.name) ? [i] : []));
  let at = 4;
  const offsets = fields.map((i) => { const o = at; at += schema[i].size; return o; });
  return { fields, offsets, size: at };
}

/** The private rows of a payload: {fields, rows: [{slot, values}]}, each row's slot held in `cells`. */
export function readPrivate(schema, layout, bin, cells) {
  if (bin.byteLength % layout.size) throw new DesyncError("private rows do not fill whole entries");
  const v = viewOf(bin), rows = [];
  const held = new Set();
  for (const m of cells.values()) for (let j = 0; j < m.k; j++) held.add(m.slots[j]);
  for (let o = 0; o < bin.byteLength; o += layout.size) {
    const slot = v.getUint32(o, true);
    if (rows.length && slot <= rows[rows.length - 1].slot) throw new DesyncError("private rows must ascend by slot");
    if (!held.has(slot)) throw new DesyncError("private values for an entity not held");
    rows.push({ slot, values: layout.fields.map((i, j) => GET_WIRE[schema[i].wire](v, o + layout.offsets[j])) });
  }
  return { fields: layout.fields, rows };
}

// ---- the grid (section 18.1) -------------------------------------------------------------------

/** The welcome's `view` map, checked: {cell, cols, rows, x0, y0, radius, everyone}. */
export function parseGrid(view) {
  need(isMap(view), "view must be a map");
  const { cell, cols, rows, x0, y0, radius, everyone } = view;
  const num = (x) => typeof x === "number" && Number.isFinite(x);
  need(num(cell) && cell > 0 && num(radius) && radius > 0, "view: cell and radius must be positive numbers");
  need(isInt(cols, 1) && isInt(rows, 1) && cols * rows <= MAX_CELLS, "view: cols and rows must be integers >= 1");
  need(num(x0) && num(y0), "view: x0 and y0 must be numbers");
  need(isInt(everyone, cols * rows), "view: everyone must be a scope cell id (>= cols * rows)");
  const priv = view.private ?? [];
  need(Array.isArray(priv) && priv.every((n) => typeof n === "string"), "view: private must be a list of field names");
  return { cell, cols, rows, x0, y0, radius, everyone, count: cols * rows, private: priv };
}

// ---- the mirror ----------------------------------------------------------------------------------

export class ViewMirror extends Entities {
  /**
   * @param schema  the welcome's schema (wire entries, or prepareSchema's result)
   * @param view    the welcome's `view` map (its grid)
   * @param options.inflate  zlib inflater for deflated record lists (default: codec.inflate)
   */
  constructor(schema, view, { inflate = defaultInflate } = {}) {
    super(prepareSchema(schema));
    this.grid = parseGrid(view);
    this.layout = recordLayout(this.schema);
    // a room with private fields sends the client's own values of them (section 18.4)
    this.own = this.grid.private.length ? privateLayout(this.schema, this.grid.private) : null;
    this.inflate = inflate;
    this.cells = new Map(); // cell id -> its members
    this.prev = NO_TICK; // the tick before the newest (the next snapshot's reference)
    this._tick = NO_TICK;
    this._chain = Promise.resolve();
  }

  /** Newest tick held (-1 before the first snapshot). */
  get tick() { return this._tick; }

  /** States held: the newest only (a view room keeps no history on the client). */
  get size() { return this.latest ? 1 : 0; }

  /** The newest state if it is the one at `tick`, else null. */
  get(tick) { return this.latest && this.latest.tick === tick ? this.latest : null; }

  /** Entities held: those this client may see. */
  get count() {
    let k = 0;
    for (const m of this.cells.values()) k += m.k;
    return k;
  }

  /** The cells watched, ascending (grid cells below grid.count, then scope cells). */
  watched() { return [...this.cells.keys()].sort((a, b) => a - b); }

  /** A view room's clients acknowledge nothing. */
  ackBits() { return 0; }

  /**
   * Decode one snapshot: resolves to the new state, or null when it is not newer than the
   * latest. Rejects with DesyncError when it does not fit what is held (the mirror is then
   * unchanged). Calls are queued, as Mirror's are.
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
    if (flags !== VIEW_FLAGS) throw new DesyncError(`a view room's snapshot has flags ${VIEW_FLAGS}, not ${flags}`);
    const body = await inflateRecords(unpackView(payload, this.own !== null), this.inflate);
    let cells, st;
    try {
      cells = decodeView(this.schema, this.layout, { cells: this.cells, tick: this.tick, prev: this.prev }, tick, base, ref, body);
      const own = this.own ? readPrivate(this.schema, this.own, body.own, cells) : null;
      st = viewState(this.schema, cells, tick, own);
    } catch (e) {
      if (e instanceof DesyncError) throw e;
      throw new DesyncError(`malformed view payload: ${e.name}: ${e.message}`);
    }
    this.cells = cells;
    this.prev = base;
    this._tick = tick;
    this._setLatest(st);
    return st;
  }
}
