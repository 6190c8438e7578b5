// The byte layouts of view payloads (docs/protocol.md section 18): entity records (18.3),
// LEB128 counts and each kept cell's chunk (18.5), read with bounds checks: anything that
// does not fit is a DesyncError. The JavaScript twin of gamesync/core/viewwire.py.
//
// A cell's members are a "member list": {k, slots: Uint32Array, ids: Uint32Array,
// val: Float64Array[] and ref: Float64Array[] (one per schema field, k values each: the
// quantised value now and at the snapshot before), hasRef: Uint8Array}.

import { DTYPES, wrapInto } from "./codec.js";
import { DesyncError } from "./errors.js";

export const F_LEFT = 1, F_ARRIVED = 2, F_SPAWNED = 4, F_CHANGED = 8; // a chunk's flags
const CODE_BYTES = [0, 1, 2, 4]; // a field mask's 2-bit code -> residual width

/** Wire dtype code -> (DataView, offset) -> its little-endian value. */
export const GET_WIRE = {
  "<i1": (v, o) => v.getInt8(o), "<i2": (v, o) => v.getInt16(o, true), "<i4": (v, o) => v.getInt32(o, true),
  "<u1": (v, o) => v.getUint8(o), "<u2": (v, o) => v.getUint16(o, true), "<u4": (v, o) => v.getUint32(o, true),
};
const SIGNED = { 1: "<i1", 2: "<i2", 4: "<i4" };

/** A little-endian reader over a bin (a Uint8Array view at any offset). */
export const viewOf = (bin) => new DataView(bin.buffer, bin.byteOffset, bin.byteLength);

/** Bytes of a position in a member list of `k` entries: 1, 2 or 4. */
export const widthFor = (k) => (k <= 0x100 ? 1 : k <= 0x10000 ? 2 : 4);

export const MASK_VARINT = 9; // bytes a chunk's field mask (a varint) may take
export const MAX_VIEW_FIELDS = 31; // two bits per field in at most 63 bits

/**
 * The field mask at `at` (a varint of two bits per field, field i in bits 2i and 2i + 1,
 * section 18.5) -> [each field's residual width code (0 none, 1 <i1, 2 <i2, 3 <i4), offset
 * after it]. Read bit by bit from its 7-bit groups: it may hold more bits than a Number can.
 */
export function readMask(bytes, at, end, nf) {
  const groups = [];
  for (;;) {
    if (groups.length === MASK_VARINT) throw new DesyncError(`field mask longer than ${MASK_VARINT} bytes`);
    if (at >= end) throw new DesyncError("chunk ends inside its field mask");
    const b = bytes[at++];
    groups.push(b & 0x7f);
    if (!(b & 0x80)) break;
  }
  const bit = (i) => (i < 7 * groups.length ? (groups[Math.floor(i / 7)] >> (i % 7)) & 1 : 0);
  for (let i = 2 * nf; i < 7 * groups.length; i++) {
    if (bit(i)) throw new DesyncError("field mask names a field the schema does not have");
  }
  return [Array.from({ length: nf }, (_, i) => bit(2 * i) | (bit(2 * i + 1) << 1)), at];
}

/**
 * Where each part of a record sits (section 18.3): slot <u4, id <u4, ref <u1, every field's
 * value in its wire dtype, then every linear field's back-difference, signed, as wide.
 */
export function recordLayout(schema) {
  let at = 9;
  const value = schema.map((f) => { const o = at; at += f.size; return o; });
  const back = schema.map((f) => {
    if (f.hold) return -1;
    const o = at;
    at += f.size;
    return o;
  });
  return { size: at, value, back, get: schema.map((f) => GET_WIRE[f.wire]), getBack: schema.map((f) => GET_WIRE[SIGNED[f.size]]),
           cast: schema.map((f) => wrapInto(f.wire)) };
}

/**
 * A packed record list (section 18.3.1, version 5) of `n` records at `at` -> [the same records
 * in section 18.3's fixed layout (a Uint8Array for readRecords), offset after the list].
 * Columns in record order, two bits of code each: 0 its base alone, 1 base + <u1 offsets,
 * 2 base + <u2 offsets, 3 the values in the column's width. A slot is stored as the step from
 * the previous record's, an id as (id - slot) mod 2**32.
 */
export function unpackRecords(schema, layout, bytes, at, n, end = bytes.byteLength) {
  const out = new Uint8Array(n * layout.size);
  if (n === 0) return [out, at];
  const cols = [[0, "<u4"], [4, "<u4"], [8, "<u1"]];
  schema.forEach((f, i) => cols.push([layout.value[i], f.wire]));
  schema.forEach((f, i) => { if (layout.back[i] >= 0) cols.push([layout.back[i], SIGNED[f.size]]); });
  const nb = Math.ceil((2 * cols.length) / 8);
  if (at + nb > end) throw new DesyncError("record list ends inside its column codes");
  const codes = bytes.subarray(at, at + nb);
  at += nb;
  for (let i = 2 * cols.length; i < 8 * nb; i++) {
    if ((codes[i >> 3] >> (i & 7)) & 1) throw new DesyncError("record list codes name a column the records do not have");
  }
  const v = viewOf(bytes), o = viewOf(out), slots = new Float64Array(n);
  cols.forEach(([off, wire], c) => {
    const code = (codes[(2 * c) >> 3] >> ((2 * c) & 7)) & 3, w = +wire.slice(2), get = GET_WIRE[wire];
    const [lo, hi] = wire[1] === "i" ? [-(2 ** (8 * w - 1)), 2 ** (8 * w - 1) - 1] : [0, 2 ** (8 * w) - 1];
    let base = 0;
    if (code !== 3) {
      if (at + w > end) throw new DesyncError("record list ends inside a column's base");
      base = get(v, at);
      at += w;
    }
    const ow = [0, 1, 2, w][code];
    if (at + n * ow > end) throw new DesyncError("record list ends inside a column");
    let prev = 0;
    for (let j = 0; j < n; j++) {
      let x = code === 0 ? base : code === 3 ? get(v, at + j * w) : base + (ow === 1 ? v.getUint8(at + j) : v.getUint16(at + 2 * j, true));
      if (c === 0) { x += prev; prev = x; slots[j] = x; }
      else if (c === 1) x = (x + slots[j]) % 2 ** 32;
      if (x < lo || x > hi) throw new DesyncError(`record column ${c} holds a value its type cannot`);
      const put = j * layout.size + off;
      if (w === 1) o.setUint8(put, x & 0xff);
      else if (w === 2) o.setUint16(put, x & 0xffff, true);
      else o.setUint32(put, x >>> 0, true);
    }
    at += n * ow;
  });
  return [out, at];
}

/** Records (bytes, a Uint8Array) -> a member list; their slots must strictly ascend. */
export function readRecords(schema, layout, bytes) {
  const nf = schema.length, size = layout.size;
  if (bytes.byteLength % size) throw new DesyncError("records do not fill whole entries");
  const k = bytes.byteLength / size, v = viewOf(bytes);
  const m = { k, slots: new Uint32Array(k), ids: new Uint32Array(k), hasRef: new Uint8Array(k),
              val: Array.from({ length: nf }, () => new Float64Array(k)), ref: Array.from({ length: nf }, () => new Float64Array(k)) };
  for (let j = 0, o = 0; j < k; j++, o += size) {
    const slot = v.getUint32(o, true), flag = v.getUint8(o + 8);
    if (j && slot <= m.slots[j - 1]) throw new DesyncError("record slots must ascend");
    if (flag > 1) throw new DesyncError(`bad record reference flag ${flag}`);
    m.slots[j] = slot;
    m.ids[j] = v.getUint32(o + 4, true);
    m.hasRef[j] = flag;
    for (let i = 0; i < nf; i++) {
      const x = layout.get[i](v, o + layout.value[i]);
      m.val[i][j] = x;
      // the value at the previous snapshot: value - back, wrapped into the wire dtype
      m.ref[i][j] = flag && layout.back[i] >= 0 ? layout.cast[i](x - layout.getBack[i](v, o + layout.back[i])) : x;
    }
  }
  return m;
}

/** (value, offset after it) of the LEB128 count at `at` (at most 5 bytes), reading up to `end`. */
export function readVarint(bytes, at, end = bytes.byteLength) {
  let v = 0;
  for (let j = 0; j < 5; j++) {
    if (at >= end) throw new DesyncError("chunk ends inside a count");
    const b = bytes[at++];
    v += (b & 0x7f) * 2 ** (7 * j); // no bit operators: a count may need 35 bits
    if (!(b & 0x80)) return [v, at];
  }
  throw new DesyncError("count longer than 5 bytes");
}

// n values of dtype `code` at `at`, strictly ascending and below `top` (when given)
function readList(bytes, v, at, end, n, code, top, what) {
  const w = DTYPES[code].BYTES_PER_ELEMENT;
  if (at + n * w > end) throw new DesyncError(`chunk ends inside its ${what}`);
  const out = new Float64Array(n), get = GET_WIRE[code];
  for (let j = 0; j < n; j++) {
    const x = get(v, at + j * w);
    if ((j && x <= out[j - 1]) || x >= top) throw new DesyncError(`${what} must ascend within the cell`);
    out[j] = x;
  }
  return out;
}

const POS = { 1: "<u1", 2: "<u2", 4: "<u4" };

/**
 * The chunk at `at` of the kept-cells bin, for a cell of `k` members at the baseline:
 * {end, left: positions, arrived: slots, spawned: record bytes or null, kAfter, changed}
 * where changed is null or {pos: positions after the membership changes, res: per field
 * null or its residuals}. A lone 0 byte (nothing happened) gives {end, nothing: true}.
 */
export function readChunk(schema, layout, bytes, at, k) {
  const v = viewOf(bytes), end = bytes.byteLength;
  if (at >= end) throw new DesyncError("kept-cells bin ends early");
  const flags = bytes[at++];
  if (flags & ~0xf) throw new DesyncError(`bad chunk flags ${flags}`);
  if (!flags) return { end: at, nothing: true };
  const out = { nothing: false, left: new Float64Array(0), arrived: new Float64Array(0), spawned: null, changed: null };
  let n;
  if (flags & F_LEFT) {
    [n, at] = readVarint(bytes, at, end);
    out.left = readList(bytes, v, at, end, n, POS[widthFor(k)], k, "left positions");
    at += n * widthFor(k);
  }
  if (flags & F_ARRIVED) {
    [n, at] = readVarint(bytes, at, end);
    out.arrived = readList(bytes, v, at, end, n, "<u4", Infinity, "arrived slots");
    at += 4 * n;
  }
  let spawned = 0;
  if (flags & F_SPAWNED) {
    [n, at] = readVarint(bytes, at, end);
    if (at + n * layout.size > end) throw new DesyncError("chunk ends inside its spawned records");
    out.spawned = bytes.subarray(at, at + n * layout.size);
    at += n * layout.size;
    spawned = n;
  }
  out.kAfter = k - out.left.length + out.arrived.length + spawned;
  if (flags & F_CHANGED) [out.changed, at] = readChanged(schema, bytes, v, at, end, out.kAfter);
  out.end = at;
  return out;
}

// the changed section: m positions in the member list after the chunk, the field mask, the
// residual columns (section 18.5)
function readChanged(schema, bytes, v, at, end, k) {
  let m;
  [m, at] = readVarint(bytes, at, end);
  const pos = readList(bytes, v, at, end, m, POS[widthFor(k)], k, "changed positions");
  at += m * widthFor(k);
  let codes;
  [codes, at] = readMask(bytes, at, end, schema.length);
  const res = schema.map((f, i) => {
    const size = CODE_BYTES[codes[i]];
    if (!size) return null;
    if (size > f.size) throw new DesyncError(`field ${f.name}: residuals wider than its wire type`);
    if (at + m * size > end) throw new DesyncError("chunk ends inside its residuals");
    const get = GET_WIRE[SIGNED[size]], col = new Float64Array(m);
    for (let j = 0; j < m; j++) col[j] = get(v, at + j * size);
    at += m * size;
    return col;
  });
  return [{ pos, res }, at];
}
