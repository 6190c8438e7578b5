// The snapshot payload decoder (docs/protocol.md sections 9 and 10; Appendix A): a payload
// applied to the baseline (and reference) it names gives the state at its tick.
// The JavaScript twin of gamesync/core/delta.py (decode_delta), step for step.
//
// A state is {tick, n, alive: Uint8Array, ids: Uint32Array, cols: Float64Array[]}: one column
// per schema field holding each slot's quantised value as its wire dtype reads it (<u4
// unsigned, <i4 signed); dead slots hold id 0 and zeros. Every value and intermediate is an
// integer below 2^53, so Numbers are exact; the modulo-2^32 reductions use >>> 0 and | 0,
// only ever on sums and differences (never on d * (T - Bt) before its floor division).

import { boundedDecoder, dtype, prepareSchema, readArray, wrap } from "./codec.js";
import { DesyncError } from "./errors.js";
import { NO_TICK } from "./messages.js";

export const MAX_SLOTS = 1 << 24; // entity slots a payload may declare (bounds memory)

const RESIDUAL = ["<i1", "<i2", "<i4"], INDEX = ["<u2", "<u4"], GAPS = ["<u1", "<u2", "<u4"];

// exact floor(a / b) for b > 0 and integers below 2^53, even when a / b rounds
function floorDiv(a, b) {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q;
}

/** The empty world a full snapshot is decoded against. */
export function emptyState(nf, tick = NO_TICK) {
  return { tick, n: 0, alive: new Uint8Array(0), ids: new Uint32Array(0),
           cols: Array.from({ length: nf }, () => new Float64Array(0)) };
}

/**
 * Decode one (decompressed) payload into the state at `tick` (section 9.5). `base` and `ref`
 * are held states, or null (no baseline: a full snapshot, decoded against the empty world).
 * Throws DesyncError for anything that does not fit.
 */
export function decodeDelta(schema, payload, tick, base, ref) {
  schema = prepareSchema(schema);
  try {
    return decode(schema, payload, tick, base, ref);
  } catch (e) {
    if (e instanceof DesyncError) throw e;
    throw new DesyncError(`malformed payload: ${e.name}: ${e.message}`); // as decode_delta, nothing else
  }
}

function decode(schema, payload, tick, base, ref) {
  const nf = schema.length;
  const [n, rmB, crB, idsB, createdVals, fields, changed] = unpackPayload(payload, nf);
  if (!base) { base = emptyState(nf); ref = null; }
  if (!Number.isInteger(n) || n < 0 || n > MAX_SLOTS || !Array.isArray(fields) || fields.length !== nf
      || !Array.isArray(createdVals) || createdVals.length !== nf) throw new DesyncError("bad payload header");
  if (n < base.n) throw new DesyncError("entity count shrank below the baseline");
  const { kept, alive, ids, created } = layout(base, n, rmB, crB, idsB);
  const at = changedPositions(changed, kept.length); // changed entity j is kept entity at[j]
  const predict = predictor(base, ref, kept, tick);
  const cols = schema.map((f, i) => {
    const v = keptValues(f, i, fields[i], predict, at);
    return column(f, n, kept, v, created, createdVals[i]);
  });
  return { tick, n, alive, ids, cols };
}

// One decoder per field count: the payload is unpacked with bounds on what it can hold
// (as the Python decoder does), so a small deflated payload cannot unpack into a huge tree.
const payloadDecoders = new Map();

// the payload's seven top-level items
function unpackPayload(payload, nf) {
  let d = payloadDecoders.get(nf);
  if (!d) {
    d = boundedDecoder(Math.max(7, nf));
    payloadDecoders.set(nf, d);
  }
  let top;
  try {
    top = d.decode(payload);
  } catch (e) {
    throw new DesyncError(`undecodable payload: ${e.message}`);
  }
  if (!Array.isArray(top) || top.length !== 7) throw new DesyncError("payload is not a 7-element array");
  return top;
}

// kept list (the baseline's live slots that were not removed, section 9.2), alive and ids
// at the new tick, and the created slots
function layout(base, n, rmB, crB, idsB) {
  const removed = readArray(rmB, "<u4"), created = readArray(crB, "<u4");
  const cids = readArray(idsB, "<u4", created.length);
  if (!ascending(removed) || !ascending(created)) throw new DesyncError("removed and created slots must ascend");
  const gone = new Uint8Array(base.n);
  for (const s of removed) {
    if (s >= base.n || !base.alive[s]) throw new DesyncError("bad removed slot");
    gone[s] = 1;
  }
  const kept = [];
  for (let s = 0; s < base.n; s++) if (base.alive[s] && !gone[s]) kept.push(s);
  const alive = new Uint8Array(n), ids = new Uint32Array(n);
  for (const s of kept) { alive[s] = 1; ids[s] = base.ids[s]; }
  created.forEach((s, i) => {
    if (s >= n || alive[s]) throw new DesyncError("bad created slot");
    alive[s] = 1;
    ids[s] = cids[i];
  });
  return { kept, alive, ids, created };
}

/** Whether `a` strictly increases (so holds no value twice). */
function ascending(a) {
  for (let i = 1; i < a.length; i++) if (a[i] <= a[i - 1]) return false;
  return true;
}

// changed list -> kept positions of the changed entities (section 9.3); null: all k of them
function changedPositions(changed, k) {
  if (changed === null) return null;
  if (!Array.isArray(changed) || changed.length !== 2) throw new DesyncError("bad changed list");
  const gaps = readArray(changed[1], dtype(changed[0], GAPS));
  if (gaps.length > k) throw new DesyncError("changed list longer than the kept list");
  const at = new Array(gaps.length);
  let p = 0;
  for (let j = 0; j < gaps.length; j++) {
    if (j > 0 && gaps[j] === 0) throw new DesyncError("changed positions must increase");
    p += gaps[j];
    at[j] = p;
  }
  if (at.length && p >= k) throw new DesyncError("changed position out of range");
  return at;
}

// (f, i) -> the predicted values at `tick` of field i for every kept entity (section 10)
function predictor(base, ref, kept, tick) {
  const k = kept.length;
  // which kept entities the reference predicts: same slot, alive there, same id
  const useRef = new Uint8Array(k);
  if (ref) {
    for (let j = 0; j < k; j++) {
      const s = kept[j];
      useRef[j] = s < ref.n && ref.alive[s] && ref.ids[s] === base.ids[s] ? 1 : 0;
    }
  }
  const tb = tick - base.tick, br = ref ? base.tick - ref.tick : 1;
  if (ref && br <= 0) throw new DesyncError("the reference must be older than the baseline");
  return (f, i) => {
    const b = base.cols[i], r = ref ? ref.cols[i] : null;
    const v = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const bv = b[kept[j]];
      v[j] = f.hold || !useRef[j] ? bv : predictValue(f, bv, r[kept[j]], tb, br); // hold, or nothing to go by
    }
    return v;
  };
}

/**
 * Section 10's prediction of one `linear` value: `b` (at the baseline, tick Bt) carried on
 * at the rate it changed from `r` (at the reference, tick Rt) to tick T, with tb = T - Bt
 * and br = Bt - Rt; reduced modulo M for a field with a modulus.
 */
export function predictValue(f, b, r, tb, br) {
  let d = b - r;
  if (f.M) d = wrap(d, f.M); // 2**32: the int32 difference
  const p = b + floorDiv(d * tb, br); // scaled before any reduction
  return f.red ? f.red(p) : p;
}

// field i's values for the kept entities: the prediction plus its encoding (section 9.4)
function keptValues(f, i, enc, predict, at) {
  const v = predict(f, i);
  const k = v.length, m = at ? at.length : k;
  const kpos = at ? (j) => at[j] : (j) => j;
  if (!Array.isArray(enc) || !enc.length) throw new DesyncError("bad field encoding");
  const add = (res) => res.forEach((x, j) => { v[kpos(j)] += x; }); // m residuals
  const addAt = (pos, res) => { // at positions of the changed list, ascending (section 9.4)
    if (!ascending(pos)) throw new DesyncError("positions must ascend");
    pos.forEach((j, x) => {
      if (j >= m) throw new DesyncError("position out of range");
      v[kpos(j)] += res[x];
    });
  };
  switch (enc[0]) {
    case 0: break; // same: every residual is zero
    case 1: add(readArray(enc[2], dtype(enc[1], RESIDUAL), m)); break; // dense
    case 2: { // sparse
      const pos = readArray(enc[2], dtype(enc[1], INDEX));
      addAt(pos, readArray(enc[4], dtype(enc[3], RESIDUAL), pos.length));
      break;
    }
    case 3: readArray(enc[1], f.wire, m).forEach((x, j) => { v[kpos(j)] = x; }); break; // absolute
    case 4: { // int8 + outliers
      add(readArray(enc[1], "<i1", m));
      const pos = readArray(enc[3], dtype(enc[2], INDEX));
      addAt(pos, readArray(enc[4], "<i4", pos.length));
      break;
    }
    default: throw new DesyncError(`unknown field mode ${JSON.stringify(enc[0])}`);
  }
  if (f.red && enc[0] !== 3) for (let j = 0; j < k; j++) v[j] = f.red(v[j]); // modulo M
  return v;
}

// field i over all n slots: the kept values and the created entities' (dead slots stay 0)
function column(f, n, kept, v, created, createdBin) {
  const col = new Float64Array(n);
  for (let j = 0; j < kept.length; j++) col[kept[j]] = v[j];
  if (created.length) {
    readArray(createdBin, f.wire, created.length).forEach((x, c) => { col[created[c]] = x; });
  }
  return col;
}
