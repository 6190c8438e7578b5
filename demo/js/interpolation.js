// Interpolation of everyone else, drawn a fixed delay (about 100 ms) behind the server.
//
// Snapshots arrive at the tick rate but not evenly (jitter, skipped snapshots). Each one is
// kept with its tick; the page draws the world at a render time `delayMs` behind the newest
// tick the local clock expects, blending the two snapshots around it entity by entity (by
// id). The tick clock is estimated from arrival times: a late snapshot only ever says the
// server is *behind* when it is not, so the estimate follows early arrivals at once and late
// ones slowly.

export class Interpolator {
  constructor(tickRate, { delayMs = 100, keep = 45 } = {}) {
    this.periodMs = 1000 / tickRate;
    this.delayMs = delayMs;
    this.keep = keep;
    this.frames = []; // {tick, ids, x, y, heading, kind, owner, index: Map id -> i}, ascending
    this.offset = null; // local ms at tick 0, estimated
    this._late = 0; // snapshots in a row later than the whole delay
    this._drawn = -Infinity; // the render tick last drawn: drawing never goes back in time
  }

  /**
   * A snapshot's entities: `cols` maps a field name to a Float64Array of game values per
   * live entity, `ids` their ids, in the same order.
   */
  push(tick, ids, cols, now) {
    const est = now - tick * this.periodMs;
    if (this.offset === null || est < this.offset) this.offset = est;
    else this.offset += (est - this.offset) * 0.02;
    // Snapshots late by more than the whole delay, several in a row, are not jitter: the
    // server's ticks fell behind the wall clock (a stall; tick numbers stay consecutive).
    // Re-anchor at once, or the drawing would stay frozen on the newest snapshot for the
    // seconds the slow drift above would take. sample() keeps the drawn time from going back.
    this._late = est - this.offset > this.delayMs ? this._late + 1 : 0;
    if (this._late >= 3) { this.offset = est; this._late = 0; }
    const last = this.frames[this.frames.length - 1];
    if (last && tick <= last.tick) return;
    const index = new Map();
    for (let i = 0; i < ids.length; i++) index.set(ids[i], i);
    this.frames.push({ tick, ids, index, ...cols });
    if (this.frames.length > this.keep) this.frames.shift();
  }

  /** The tick being drawn at local time `now` (fractional). */
  renderTick(now) {
    return this.offset === null ? 0 : (now - this.offset - this.delayMs) / this.periodMs;
  }

  /**
   * The world at render time: {ids, x, y, heading, kind, owner, tick} of the entities of the
   * newer bracketing snapshot, positions blended from the older one where it has them.
   */
  sample(now) {
    const f = this.frames;
    if (!f.length) return null;
    const t = Math.max(this.renderTick(now), this._drawn);
    this._drawn = Math.min(t, f[f.length - 1].tick); // past the newest, the newest is what was drawn
    let b = f.findIndex((fr) => fr.tick >= t);
    if (b === -1) return { ...f[f.length - 1], at: f[f.length - 1].tick }; // past the newest: hold it
    if (b === 0) return { ...f[0], at: f[0].tick };
    const A = f[b - 1], B = f[b];
    const a = (t - A.tick) / (B.tick - A.tick);
    const n = B.ids.length;
    const x = new Float64Array(n), y = new Float64Array(n), heading = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const j = A.index.get(B.ids[i]);
      if (j === undefined) { x[i] = B.x[i]; y[i] = B.y[i]; heading[i] = B.heading[i]; continue; }
      x[i] = A.x[j] + (B.x[i] - A.x[j]) * a;
      y[i] = A.y[j] + (B.y[i] - A.y[j]) * a;
      let dh = B.heading[i] - A.heading[j]; // shortest way round
      dh -= Math.round(dh / (2 * Math.PI)) * 2 * Math.PI;
      heading[i] = A.heading[j] + dh * a;
    }
    return { ids: B.ids, x, y, heading, kind: B.kind, owner: B.owner, tick: B.tick, at: t };
  }

  /** How far behind the newest snapshot the drawing is, in ms (for the overlay). */
  lagMs(now) {
    const f = this.frames;
    return f.length ? (f[f.length - 1].tick - this.renderTick(now)) * this.periodMs : 0;
  }

  reset() { this.frames = []; this.offset = null; this._late = 0; this._drawn = -Infinity; }
}
