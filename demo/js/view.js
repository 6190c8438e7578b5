// The client's copy of a view room (docs/protocol.md section 18): the cells it watches, each
// with its members (by ascending slot) and their values at the newest snapshot and at the
// one before, turned by each view payload into the next snapshot's. The JavaScript twin of
// gamesync/core/viewmirror.py (ViewMirror, ViewStates): the same states, bit for bit.
//
// viewdecode.js's `decodeView` is the pure step (held cells + an inflated payload -> the
// next cells); `ViewMirror` holds them behind the interface of mirror.js's Mirror (apply,
// latest, entity, ids...), so a page handles a view room's snapshots as any other room's.

import { boundedDecoder, inflate as defaultInflate, isInt, isMap, need, prepareSchema } from "./codec.js";
import { DesyncError } from "./errors.js";
import { NO_TICK } from "./messages.js";
import { Entities } from "./mirror.js";
import { decodeView, MAX_CELLS, searchSlot } from "./viewdecode.js";
import { GET_WIRE, MAX_VIEW_FIELDS, readVarint, recordLayout, unpackRecords, viewOf } from "./viewwire.js";

export { decodeView, MAX_CELLS };

export const VIEW_FLAGS = 2; // a view room's snapshot flags: bit 1, never deflated as a whole
export const MAX_RECORD_BYTES = 64 << 20; // a deflated record list inflates to at most this

const payloadDecoder = boundedDecoder(MAX_CELLS);

// ---- a payload's parts -------------------------------------------------------------------------

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

/**
 * The payload's record lists inflated where their flags say so (with `inflate`); under version
 * 5 (`packed`: a schema and its recordLayout) also unpacked into section 18.3's fixed records.
 */
export async function inflateRecords(body, inflate, packed = null) {
  const raw = async (flags, bin) => (flags & 1 ? inflate(bin, MAX_RECORD_BYTES) : bin);
  const whole = ([bytes, end], all) => {
    if (end !== all) throw new DesyncError("record list has trailing bytes");
    return bytes;
  };
  const added = [];
  for (const [cell, count, flags, bin] of body.added) {
    let records = await raw(flags, bin);
    if (packed) records = whole(unpackRecords(packed.schema, packed.layout, records, 0, count), records.byteLength);
    added.push([cell, count, records]);
  }
  let enter = await raw(body.enter[0], body.enter[1]);
  if (packed && enter.byteLength) { // a count, then a packed list of that many records
    const [n, at] = readVarint(enter, 0);
    if (n === 0) throw new DesyncError("enter records name no record");
    enter = whole(unpackRecords(packed.schema, packed.layout, enter, at, n), enter.byteLength);
  }
  return { ...body, added, enter };
}

// ---- the state ---------------------------------------------------------------------------------

/**
 * A view room's state at a tick: the entities held, by ascending slot (`live`: their slots,
 * `liveIds`, `liveCols`: one Float64Array per field), and section 8's dense form over the
 * slots 0..n-1 (`alive`, `ids`, `cols`, as Mirror's states; a slot not held is dead), built
 * on first use: in a big world n is the whole world's slot count, and a page that reads
 * `live` never pays for it.
 */
export class ViewState {
  constructor(tick, n, live, liveIds, liveCols) {
    Object.assign(this, { tick, n, live, liveIds, liveCols });
    this._dense = null;
  }

  get alive() { return this._build().alive; }
  get ids() { return this._build().ids; }
  get cols() { return this._build().cols; }

  _build() {
    if (!this._dense) {
      const { n, live } = this, k = live.length;
      const alive = new Uint8Array(n), ids = new Uint32Array(n);
      const cols = this.liveCols.map((v) => { const c = new Float64Array(n); for (let j = 0; j < k; j++) c[live[j]] = v[j]; return c; });
      for (let j = 0; j < k; j++) { alive[live[j]] = 1; ids[live[j]] = this.liveIds[j]; }
      this._dense = { alive, ids, cols };
    }
    return this._dense;
  }
}

/**
 * The watched cells as one ViewState (a slot held in two cells is a desync), with the client's
 * own private field values (`own`, readPrivate's rows) laid over them.
 */
export function viewState(schema, cells, tick, own = null) {
  const parts = [...cells.values()].filter((m) => m.k);
  let k = 0;
  for (const m of parts) k += m.k;
  const from = new Uint32Array(k), at = new Uint32Array(k), slots = new Float64Array(k);
  let j = 0;
  parts.forEach((m, c) => { for (let p = 0; p < m.k; p++, j++) { from[j] = c; at[j] = p; slots[j] = m.slots[p]; } });
  const order = Array.from({ length: k }, (_, i) => i).sort((a, b) => slots[a] - slots[b]);
  const live = new Uint32Array(k), liveIds = new Uint32Array(k), liveCols = schema.map(() => new Float64Array(k));
  order.forEach((o, i) => {
    const m = parts[from[o]], p = at[o];
    live[i] = m.slots[p];
    if (i && live[i] === live[i - 1]) throw new DesyncError(`slot ${live[i]} is held in two cells`);
    liveIds[i] = m.ids[p];
    for (let f = 0; f < liveCols.length; f++) liveCols[f][i] = m.val[f][p];
  });
  for (const { slot, values } of own ? own.rows : []) {
    const j = searchSlot(live, slot);
    if (j < 0) throw new DesyncError("private values for an entity not held");
    own.fields.forEach((f, v) => { liveCols[f][j] = values[v]; });
  }
  return new ViewState(tick, k ? live[k - 1] + 1 : 0, live, liveIds, liveCols);
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

/** The private rows of a payload: {fields, rows: [{slot, values}]} (viewState checks each slot is held). */
export function readPrivate(schema, layout, bin) {
  if (bin.byteLength % layout.size) throw new DesyncError("private rows do not fill whole entries");
  const v = viewOf(bin), rows = [];
  for (let o = 0; o < bin.byteLength; o += layout.size) {
    const slot = v.getUint32(o, true);
    if (rows.length && slot <= rows[rows.length - 1].slot) throw new DesyncError("private rows must ascend by slot");
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
  constructor(schema, view, { inflate = defaultInflate, packed = false } = {}) {
    super(prepareSchema(schema));
    need(this.schema.length <= MAX_VIEW_FIELDS, `a view room's schema has at most ${MAX_VIEW_FIELDS} fields`);
    this.grid = parseGrid(view);
    this.layout = recordLayout(this.schema);
    // a room with private fields sends the client's own values of them (section 18.4)
    this.own = this.grid.private.length ? privateLayout(this.schema, this.grid.private) : null;
    this.inflate = inflate;
    this.packed = packed; // version 5: listings and enter records come as packed record lists
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
    const packed = this.packed ? { schema: this.schema, layout: this.layout } : null;
    const body = await inflateRecords(unpackView(payload, this.own !== null), this.inflate, packed);
    let cells, st;
    try {
      cells = decodeView(this.schema, this.layout, { cells: this.cells, tick: this.tick, prev: this.prev }, tick, base, ref, body);
      const own = this.own ? readPrivate(this.schema, this.own, body.own) : null;
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
