// Keyboard steering: WASD or the arrow keys held down send one input [dx, dy] per tick (the
// server moves a player one tick's worth per input), each fed to the predictor as well, so the
// own player moves at once. Keys typed into a text field do not steer.

export const KEYS = Object.freeze({
  KeyW: [0, -1], ArrowUp: [0, -1], KeyS: [0, 1], ArrowDown: [0, 1],
  KeyA: [-1, 0], ArrowLeft: [-1, 0], KeyD: [1, 0], ArrowRight: [1, 0],
});

export class Steering {
  /**
   * @param conn        the Connection inputs go through
   * @param predictorOf () -> the page's current Predictor (or null)
   */
  constructor(conn, predictorOf) {
    this.conn = conn;
    this.predictorOf = predictorOf;
    this.held = new Set(); // key codes down
    this.heading = 0; // radians, of the last move sent
    this._timer = null;
    window.addEventListener("keydown", (e) => {
      if (!(e.code in KEYS) || e.target.closest("input, textarea")) return;
      e.preventDefault();
      this.held.add(e.code);
    });
    window.addEventListener("keyup", (e) => this.held.delete(e.code));
    window.addEventListener("blur", () => this.held.clear());
  }

  /** Send at `tickRate` from now on (call on every welcome). */
  start(tickRate) {
    clearInterval(this._timer);
    this._timer = setInterval(() => this._tick(), 1000 / tickRate);
  }

  _tick() {
    let dx = 0, dy = 0;
    for (const k of this.held) { dx += KEYS[k][0]; dy += KEYS[k][1]; }
    dx = Math.sign(dx); dy = Math.sign(dy);
    if (dx === 0 && dy === 0) return;
    this.heading = Math.atan2(dy, dx);
    const seq = this.conn.sendInput([dx, dy]);
    const predictor = this.predictorOf();
    if (seq !== null && predictor) predictor.input(seq, dx, dy);
  }
}
