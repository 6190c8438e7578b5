// The pure step of a view room's decoder (docs/protocol.md sections 18.5 and 18.6): the cells
// a client watches, each with its members, and one view payload (unpacked, its record lists
// inflated) -> the cells after it. The JavaScript twin of gamesync/core/viewmirror.py's
// ViewMirror._apply (kept cells, arrivals, residuals, added cells), step for step.
//
// A member list is {k, slots: Uint32Array, ids: Uint32Array, hasRef: Uint8Array, val and ref:
// one Float64Array per schema field (the quantised value at the newest snapshot and at the one
// before)}, by ascending slot.

import { predictValue } from "./delta.js";
import { DesyncError } from "./errors.js";
import { NO_TICK } from "./messages.js";
import { readChunk, readRecords, viewOf } from "./viewwire.js";

export const MAX_CELLS = 1 << 24; // cell ids a client accepts

// ---- member lists ------------------------------------------------------------------------------

// A kept cell's members after its chunk come from up to four lists, each by ascending slot:
// members that stayed and arrivals held in another cell (both carried on by prediction), then
// arrivals from the enter records and spawns (their records' values). A list is
// {src: [member list per entry] or one member list, pos: [position in it per entry], held}.
const entries = (src, pos, held) => ({ src, pos, held, n: pos.length });
const sourceOf = (l, e) => (Array.isArray(l.src) ? l.src[e] : l.src);

// the lists merged by ascending slot into one member list, held members predicted (section
// 10; `steps` [T - B, B - R], or null without a reference) with their old values as their
// reference; `fresh` marks the members whose record came in this snapshot
function mergeMembers(schema, lists, steps) {
  const nf = schema.length;
  let k = 0;
  for (const l of lists) k += l.n;
  const out = { k, slots: new Uint32Array(k), ids: new Uint32Array(k), hasRef: new Uint8Array(k),
                val: schema.map(() => new Float64Array(k)), ref: schema.map(() => new Float64Array(k)),
                fresh: new Uint8Array(k) };
  const at = lists.map(() => 0);
  for (let j = 0; j < k; j++) {
    let best = -1, slot = Infinity;
    lists.forEach((l, i) => {
      if (at[i] < l.n) {
        const sl = sourceOf(l, at[i]).slots[l.pos[at[i]]];
        if (sl < slot) { slot = sl; best = i; }
      }
    });
    if (j && slot === out.slots[j - 1]) throw new DesyncError("a slot appears twice in one cell");
    const l = lists[best], m = sourceOf(l, at[best]), p = l.pos[at[best]];
    at[best] += 1;
    out.slots[j] = slot;
    out.ids[j] = m.ids[p];
    if (!l.held) { // its record's value and reference
      out.fresh[j] = 1;
      out.hasRef[j] = m.hasRef[p];
      for (let i = 0; i < nf; i++) { out.val[i][j] = m.val[i][p]; out.ref[i][j] = m.ref[i][p]; }
      continue;
    }
    const predict = steps && m.hasRef[p];
    out.hasRef[j] = 1; // it existed at the baseline
    for (let i = 0; i < nf; i++) {
      const f = schema[i], b = m.val[i][p];
      out.val[i][j] = predict && !f.hold ? predictValue(f, b, m.ref[i][p], steps[0], steps[1]) : b;
      out.ref[i][j] = b;
    }
  }
  return out;
}

// a cell where nothing happened: every member carries on
const advance = (schema, m, steps) => mergeMembers(schema, [entries(m, Array.from({ length: m.k }, (_, p) => p), true)], steps);

// a chunk's residuals, in place on a merged member list: members whose record came in this
// snapshot keep their record's values; the others are reduced modulo M or into the wire dtype
function addResiduals(schema, m, changed) {
  const { pos, res } = changed;
  schema.forEach((f, i) => {
    const v = m.val[i];
    if (res[i]) for (let j = 0; j < pos.length; j++) if (!m.fresh[pos[j]]) v[pos[j]] += res[i][j];
    for (let j = 0; j < m.k; j++) if (!m.fresh[j]) v[j] = f.fit(v[j]);
  });
  return m;
}

// ---- one payload -------------------------------------------------------------------------------

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
  const stay = [];
  for (let p = 0, l = 0; p < m.k; p++) {
    if (l < ch.left.length && ch.left[l] === p) l++;
    else stay.push(p);
  }
  const cameFrom = [], camePos = [], entering = [];
  for (const s of ch.arrived) {
    const src = pool.get(s);
    if (src) { // held before, in another cell
      pool.delete(s);
      cameFrom.push(src[0]);
      camePos.push(src[1]);
      continue;
    }
    const j = searchSlot(enter.slots, s);
    if (j < 0) throw new DesyncError(`slot ${s} arrived, but it was neither held nor in the enter records`);
    entering.push(j);
  }
  const lists = [entries(m, stay, true), entries(cameFrom, camePos, true), entries(enter, entering, false)];
  if (ch.spawned) {
    const born = readRecords(schema, layout, ch.spawned);
    lists.push(entries(born, Array.from({ length: born.k }, (_, p) => p), false));
  }
  const merged = mergeMembers(schema, lists, steps);
  return ch.changed ? addResiduals(schema, merged, ch.changed) : merged;
}

/** Index of `s` in ascending `slots`, or -1. */
export function searchSlot(slots, s) {
  let lo = 0, hi = slots.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (slots[mid] < s) lo = mid + 1; else hi = mid; }
  return lo < slots.length && slots[lo] === s ? lo : -1;
}
