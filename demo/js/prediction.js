// Client-side prediction of the player's own movement, with reconciliation.
//
// The arena (docs/games.md) moves a player one tick's worth per input, on the 1/64 grid the
// snapshots carry, so the same rule here lands exactly where the server does: a move is a
// whole number of grid steps per axis, positions clamp to the world. On every snapshot the
// predicted position restarts from the server's (the player's entity in that state, which
// includes every input up to the snapshot's input ack) and replays the inputs the server has
// not applied yet. Any gap between what was predicted for an input and what the server made
// of it is the prediction error (0 while the two agree, as they should).

export const ARENA = Object.freeze({ size: 1000, speed: 200, grid: 1 / 64 });

// numpy's rint: halves to even, as the server's Field.snap rounds
function rint(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One input's move [mx, my] in world units at `tickRate`, exactly as the arena computes it. */
export function moveFor(dx, dy, tickRate, { speed, grid } = ARENA) {
  const step = (dx !== 0 && dy !== 0 ? Math.SQRT1_2 : 1) * speed / tickRate;
  return [rint((dx * step) / grid) * grid, rint((dy * step) / grid) * grid];
}

const clamp = (v, hi) => Math.min(hi, Math.max(0, v));

export class Predictor {
  constructor(tickRate, rules = ARENA) {
    this.tickRate = tickRate;
    this.rules = rules;
    this.pending = []; // [seq, dx, dy] sent, not yet applied by the server
    this.predictedAt = new Map(); // seq -> [x, y] this client predicted after that input
    this.x = null; this.y = null; // predicted position (null until the server placed us)
    this.error = 0; // distance between the last checked prediction and the server's result
    this.corrections = 0; // predictions that were off
    this.offset = [0, 0]; // visual smoothing of a correction, decays to 0
  }

  _apply(x, y, dx, dy) {
    const [mx, my] = moveFor(dx, dy, this.tickRate, this.rules);
    return [clamp(x + mx, this.rules.size), clamp(y + my, this.rules.size)];
  }

  /** A new input sent with `seq`: move the prediction now. */
  input(seq, dx, dy) {
    if (this.x === null) return;
    this.pending.push([seq, dx, dy]);
    [this.x, this.y] = this._apply(this.x, this.y, dx, dy);
    this.predictedAt.set(seq, [this.x, this.y]);
  }

  /** The server's position for our entity in a snapshot whose input ack is `inputAck`. */
  reconcile(sx, sy, inputAck) {
    const guess = this.predictedAt.get(inputAck);
    if (guess) {
      this.error = Math.hypot(guess[0] - sx, guess[1] - sy);
      if (this.error > 1e-9) this.corrections += 1;
    }
    for (const s of this.predictedAt.keys()) if (s <= inputAck) this.predictedAt.delete(s);
    this.pending = this.pending.filter(([s]) => s > inputAck);
    let x = sx, y = sy;
    for (const [s, dx, dy] of this.pending) { // the replay is now what is predicted for each
      [x, y] = this._apply(x, y, dx, dy);
      this.predictedAt.set(s, [x, y]);
    }
    if (this.x !== null) { // show a correction as a short glide, not a jump
      this.offset[0] += this.x - x;
      this.offset[1] += this.y - y;
      if (Math.hypot(...this.offset) > 50) this.offset = [0, 0]; // a teleport: no glide
    }
    this.x = x; this.y = y;
  }

  /** Where to draw the player: the prediction plus a correction fading over ~100 ms. */
  drawn(dtMs) {
    const k = Math.exp(-dtMs / 60);
    this.offset[0] *= k; this.offset[1] *= k;
    return [this.x + this.offset[0], this.y + this.offset[1]];
  }

  /** A fresh seat or a new entity: forget everything predicted. */
  reset() {
    this.pending = []; this.predictedAt.clear();
    this.x = this.y = null; this.offset = [0, 0]; this.error = 0;
  }
}
