// Spatial interest on a uniform grid, for the big world's StateViews.
//
// The world is cut into square cells. Each entity sits in exactly one cell; each viewer (a
// client's StateView plus its focus, its player's position) watches a set of cells, and sees
// exactly the entities in the cells it watches. A viewer starts watching a cell when the
// cell's nearest point comes within `radius` of its focus, and stops when it gets farther
// than `radius + hysteresis`. So every entity within `radius` is seen, and none farther than
// `radius + hysteresis + cell * sqrt(2)`.
//
// Work happens only on changes, never per (viewer x entity): an entity that changes cell
// is shown to the viewers of its new cell that do not watch its old one, and hidden from
// those of its old cell that do not watch the new one; a viewer that starts (stops)
// watching a cell is shown (hidden) that cell's entities. Showing and hiding are the view's
// own `add(obj)` and `remove(obj)`, i.e. StateView's. An optional `refresh(id)` runs before
// entity `id` is shown to anyone (the big world's --dormant brings its fields up to date).

export class InterestGrid {
  /**
   * @param {number} size side of the square world (units)
   * @param {{cell?: number, radius?: number, hysteresis?: number, refresh?: (id: number) => void}} opts
   */
  constructor(size, { cell = 100, radius = 500, hysteresis = 50, refresh = null } = {}) {
    this.cell = cell;
    this.radius = radius;
    this.hysteresis = hysteresis;
    this.n = Math.max(1, Math.ceil(size / cell));     // cells per side
    const cells = this.n * this.n;
    this.members = Array.from({ length: cells }, () => []);   // cell -> entity ids
    this.watchers = Array.from({ length: cells }, () => []);  // cell -> viewers
    this.watched = new Uint16Array(cells);               // cell -> number of viewers
    this.refresh = refresh;
    this.objs = [];                                     // id -> the object views add/remove
    this.cellOf = new Int32Array(1024).fill(-1);        // id -> cell (-1: not placed)
    this.slot = new Int32Array(1024);                   // id -> index in members[cell]
    this.shown = 0;                                     // view.add calls
    this.hidden = 0;                                    // view.remove calls
  }

  /** The largest distance from its focus at which a viewer can see an entity. */
  get maxSeen() { return this.radius + this.hysteresis + this.cell * Math.SQRT2; }

  cellAt(x, y) {
    const n = this.n;
    let cx = Math.floor(x / this.cell), cy = Math.floor(y / this.cell);
    cx = cx < 0 ? 0 : cx >= n ? n - 1 : cx;
    cy = cy < 0 ? 0 : cy >= n ? n - 1 : cy;
    return cy * n + cx;
  }

  // ---- entities ----

  /** Place entity `id` (its object `obj`) at (x, y) and show it to the viewers of its cell. */
  insert(id, obj, x, y) {
    if (id >= this.cellOf.length) this._grow(id + 1);
    this.objs[id] = obj;
    const c = this.cellAt(x, y);
    this._place(id, c);
    if (this.watched[c] > 0 && this.refresh !== null) this.refresh(id);
    for (const v of this.watchers[c]) { v.view.add(obj); this.shown++; }
  }

  /** Entity `id` is now at (x, y). */
  move(id, x, y) {
    const c = this.cellAt(x, y);
    const old = this.cellOf[id];
    if (c === old) return;
    this._unplace(id, old);
    this._place(id, c);
    const obj = this.objs[id];
    for (const v of this.watchers[old]) if (!v.cells.has(c)) { v.view.remove(obj); this.hidden++; }
    if (this.watched[c] > 0 && this.refresh !== null) this.refresh(id);
    for (const v of this.watchers[c]) if (!v.cells.has(old)) { v.view.add(obj); this.shown++; }
  }

  /** Take entity `id` off the grid. Its viewers are not told: the caller deletes it from the
   *  state, which reaches exactly the views that see it. */
  erase(id) {
    this._unplace(id, this.cellOf[id]);
    this.cellOf[id] = -1;
    this.objs[id] = undefined;
  }

  _place(id, c) {
    const m = this.members[c];
    this.cellOf[id] = c;
    this.slot[id] = m.length;
    m.push(id);
  }

  _unplace(id, c) {
    const m = this.members[c];
    const i = this.slot[id], last = m.pop();
    if (last !== id) { m[i] = last; this.slot[last] = i; }
  }

  _grow(min) {
    let len = this.cellOf.length;
    while (len < min) len *= 2;
    const cellOf = new Int32Array(len).fill(-1), slot = new Int32Array(len);
    cellOf.set(this.cellOf);
    slot.set(this.slot);
    this.cellOf = cellOf;
    this.slot = slot;
  }

  // ---- viewers ----

  /** A new viewer with focus (x, y); `view` has add(obj) and remove(obj). */
  addViewer(view, x, y) {
    const v = { view, cells: new Set(), x, y };
    this.moveViewer(v, x, y);
    return v;
  }

  /** The viewer's focus is now at (x, y): watch the cells that came within the radius and
   *  drop those that went beyond radius + hysteresis. */
  moveViewer(v, x, y) {
    v.x = x; v.y = y;
    const cell = this.cell, n = this.n;
    const far = this.radius + this.hysteresis, far2 = far * far, r2 = this.radius * this.radius;
    for (const c of v.cells) {
      if (this._dist2(c, x, y) > far2) this._unwatch(v, c);
    }
    const r = this.radius;
    const x0 = Math.max(0, Math.floor((x - r) / cell)), x1 = Math.min(n - 1, Math.floor((x + r) / cell));
    const y0 = Math.max(0, Math.floor((y - r) / cell)), y1 = Math.min(n - 1, Math.floor((y + r) / cell));
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        const c = cy * n + cx;
        if (!v.cells.has(c) && this._dist2(c, x, y) <= r2) this._watch(v, c);
      }
    }
  }

  /** Stop watching everything (the client left; its view goes with it). */
  removeViewer(v) {
    for (const c of v.cells) this._dropWatcher(v, c);
    v.cells.clear();
  }

  /** Squared distance from (x, y) to the nearest point of cell c. */
  _dist2(c, x, y) {
    const n = this.n, cell = this.cell;
    const lx = (c % n) * cell, ly = Math.floor(c / n) * cell;
    const dx = x < lx ? lx - x : x > lx + cell ? x - lx - cell : 0;
    const dy = y < ly ? ly - y : y > ly + cell ? y - ly - cell : 0;
    return dx * dx + dy * dy;
  }

  _watch(v, c) {
    v.cells.add(c);
    this.watchers[c].push(v);
    this.watched[c]++;
    const objs = this.objs, refresh = this.refresh;
    for (const id of this.members[c]) {
      if (refresh !== null) refresh(id);
      v.view.add(objs[id]);
      this.shown++;
    }
  }

  _unwatch(v, c) {
    v.cells.delete(c);
    this._dropWatcher(v, c);
    const objs = this.objs;
    for (const id of this.members[c]) { v.view.remove(objs[id]); this.hidden++; }
  }

  _dropWatcher(v, c) {
    const w = this.watchers[c];
    this.watched[c]--;
    const i = w.indexOf(v), last = w.pop();
    if (last !== v) w[i] = last;
  }
}
