// Operational transformation for plain text, and the client side of the notes pad's protocol.
//
// The JavaScript twin of gamesync/games/ot.py: an operation is an array of components that
// walks the whole document, a positive int retains that many characters, a negative int
// deletes that many, a string inserts itself. Positions and lengths count Unicode code
// points (`Array.from(text)`), never UTF-16 units. apply, transform and transformIndex give
// exactly what ot.py gives (tests/vectors/ot.json holds its answers); compose has no Python
// twin, and is checked against applying the two operations one after the other.
//
// OTClient is the ot.js client scheme of docs/games.md ("notes"): at most one edit in flight,
// later local edits composed into a buffer, the author's own edit coming back as its
// acknowledgement, remote edits transformed through the in-flight edit and the buffer. It
// does no I/O: the page sends what it returns.

export class OTError extends Error {}

/** Length of `s` in code points. */
export function cpLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || !isHigh(s.charCodeAt(i - 1))) n++;
  }
  return n;
}

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/** UTF-16 index in `s` of code point index `cp` (clamped to the string). */
export function utf16Index(s, cp) {
  let i = 0;
  for (let n = 0; n < cp && i < s.length; n++) i += isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1)) ? 2 : 1;
  return i;
}

/** Code point index of UTF-16 index `i` in `s` (the middle of a pair counts as its start). */
export function cpIndex(s, i) {
  return cpLength(s.slice(0, i));
}

/** `op` if it is a valid operation (no zero components, at most `maxInsert` inserted), else OTError. */
export function check(op, maxInsert = 10_000) {
  if (!Array.isArray(op)) throw new OTError("an operation is a list of components");
  let total = 0;
  for (const c of op) {
    if (Number.isInteger(c)) {
      if (c === 0) throw new OTError("zero-length component");
    } else if (typeof c === "string") {
      if (!c) throw new OTError("empty insert");
      total += cpLength(c);
    } else {
      throw new OTError("a component is an int (retain > 0, delete < 0) or a string (insert)");
    }
  }
  if (total > maxInsert) throw new OTError(`inserts more than ${maxInsert} characters`);
  return op;
}

const isInsert = (c) => typeof c === "string";
const isRetain = (c) => typeof c === "number" && c > 0;
const isDelete = (c) => typeof c === "number" && c < 0;

/** Length of the document `op` applies to. */
export function baseLength(op) {
  let n = 0;
  for (const c of op) if (!isInsert(c)) n += Math.abs(c);
  return n;
}

/** Length of the document `op` makes. */
export function targetLength(op) {
  let n = 0;
  for (const c of op) n += isInsert(c) ? cpLength(c) : isRetain(c) ? c : 0;
  return n;
}

/** True when `op` changes nothing. */
export function isNoop(op) {
  return op.every(isRetain);
}

/** The document `doc` after `op`. */
export function apply(doc, op) {
  const chars = Array.from(doc);
  const span = baseLength(op);
  if (span !== chars.length) {
    throw new OTError(`operation spans ${span} characters, the document has ${chars.length}`);
  }
  const out = [];
  let i = 0;
  for (const c of op) {
    if (isInsert(c)) out.push(c);
    else if (c > 0) { out.push(chars.slice(i, i + c).join("")); i += c; }
    else i -= c;
  }
  return out.join("");
}

// append `c`, merging with the last component of the same kind (ot.py's _push)
function push(op, c) {
  const last = op[op.length - 1];
  if (op.length && typeof last === typeof c && (isInsert(c) || (last > 0) === (c > 0))) op[op.length - 1] = last + c;
  else op.push(c);
}

/** [a2, b2] for concurrent `a` and `b`: apply(apply(d, a), b2) == apply(apply(d, b), a2); at a tie a's insert goes first. */
export function transform(a, b) {
  if (baseLength(a) !== baseLength(b)) throw new OTError("concurrent operations must span the same document");
  const a2 = [], b2 = [];
  let ia = 0, ib = 0;
  let ca = a[ia++], cb = b[ib++];
  while (ca !== undefined || cb !== undefined) {
    if (isInsert(ca)) {
      push(a2, ca); push(b2, cpLength(ca)); ca = a[ia++];
      continue;
    }
    if (isInsert(cb)) {
      push(a2, cpLength(cb)); push(b2, cb); cb = b[ib++];
      continue;
    }
    if (ca === undefined || cb === undefined) throw new OTError("operations end at different places");
    let n;
    if (ca > 0 && cb > 0) { n = Math.min(ca, cb); push(a2, n); push(b2, n); }
    else if (ca < 0 && cb < 0) n = Math.min(-ca, -cb);
    else if (ca < 0) { n = Math.min(-ca, cb); push(a2, -n); }
    else { n = Math.min(ca, -cb); push(b2, -n); }
    ca = (ca > 0 ? ca - n : ca + n) || a[ia++];
    cb = (cb > 0 ? cb - n : cb + n) || b[ib++];
  }
  return [a2, b2];
}

/** One operation doing `a` then `b`: apply(d, compose(a, b)) == apply(apply(d, a), b). */
export function compose(a, b) {
  if (targetLength(a) !== baseLength(b)) throw new OTError("the second operation must span what the first one makes");
  const out = [];
  let ia = 0, ib = 0;
  let ca = a[ia++], cb = b[ib++];
  while (ca !== undefined || cb !== undefined) {
    if (isDelete(ca)) { push(out, ca); ca = a[ia++]; continue; } // gone before b sees it
    if (isInsert(cb)) { push(out, cb); cb = b[ib++]; continue; } // new in b
    if (ca === undefined || cb === undefined) throw new OTError("operations end at different places");
    if (isInsert(ca)) {
      const chars = Array.from(ca);
      if (cb > 0) { // b keeps some of a's text
        const n = Math.min(chars.length, cb);
        push(out, chars.slice(0, n).join(""));
        ca = chars.length > n ? chars.slice(n).join("") : a[ia++];
        cb = cb - n || b[ib++];
      } else { // b deletes some of a's text: neither happens
        const n = Math.min(chars.length, -cb);
        ca = chars.length > n ? chars.slice(n).join("") : a[ia++];
        cb = cb + n || b[ib++];
      }
      continue;
    }
    // a retains
    if (cb > 0) {
      const n = Math.min(ca, cb);
      push(out, n);
      ca = ca - n || a[ia++];
      cb = cb - n || b[ib++];
    } else {
      const n = Math.min(ca, -cb);
      push(out, -n);
      ca = ca - n || a[ia++];
      cb = cb + n || b[ib++];
    }
  }
  return out;
}

/**
 * Where position `index` moves when `op` is applied (a cursor). An insert exactly at the
 * cursor pushes it along only when `own` (your typing moves your caret, someone else's text
 * appears after it).
 */
export function transformIndex(op, index, own = false) {
  let pos = 0, moved = index;
  for (const c of op) {
    if (pos > index) break;
    if (isInsert(c)) {
      if (pos < index || (pos === index && own)) moved += cpLength(c);
    } else if (c > 0) {
      pos += c;
    } else {
      moved -= Math.min(-c, index - pos);
      pos -= c;
    }
  }
  return Math.max(0, moved);
}

/**
 * The operation turning `before` into `after`: one replaced span, found as the common prefix
 * and suffix in code points. `caret` (a code point index in `after`, optional) is where the
 * edit ended, so that typing "a" into "a|a" inserts after the first "a", not at the end.
 */
export function diff(before, after, caret = null) {
  const max = Math.min(before.length, after.length);
  const prefix = (limit) => {
    let p = 0;
    while (p < limit && before.charCodeAt(p) === after.charCodeAt(p)) p++;
    return p > 0 && isHigh(before.charCodeAt(p - 1)) ? p - 1 : p; // never split a surrogate pair
  };
  const suffix = (limit) => {
    let s = 0;
    while (s < limit && before.charCodeAt(before.length - 1 - s) === after.charCodeAt(after.length - 1 - s)) s++;
    return s > 0 && isLow(after.charCodeAt(after.length - s)) ? s - 1 : s;
  };
  let p, s;
  if (caret === null) {
    p = prefix(max);
    s = suffix(max - p);
  } else { // the unchanged tail first, ending no earlier than the caret
    s = suffix(Math.min(max, after.length - utf16Index(after, caret)));
    p = prefix(max - s);
  }
  const head = cpLength(before.slice(0, p));
  const gone = cpLength(before.slice(p, before.length - s));
  const added = after.slice(p, after.length - s);
  const tail = cpLength(before.slice(before.length - s));
  const op = [];
  if (head) op.push(head);
  if (gone) op.push(-gone);
  if (added) op.push(added);
  if (tail) op.push(tail);
  return op;
}

/**
 * The ot.js client scheme over one document.
 *
 * `text` is the local text (the server's plus the pending edits), `v` the newest server
 * version seen, `server` the text at that version. Methods return what to send: an op
 * message `{op, v, ref}`, or null.
 */
export class OTClient {
  constructor(text = "", v = 0) {
    this.ref = 0; // number of the last edit sent
    this.reset(text, v);
  }

  /** "synchronized", "awaiting" (one edit in flight) or "buffering" (and more waiting). */
  get state() {
    return this.inflight === null ? "synchronized" : this.buffer === null ? "awaiting" : "buffering";
  }

  /** Start again from the server's document, dropping every pending edit. */
  reset(text, v) {
    this.text = text;
    this.server = text;
    this.v = v;
    this.inflight = null;
    this.inflightRef = null;
    this.buffer = null;
  }

  /**
   * Take a fresh copy of the document (after a reconnect, or a resync) and keep the pending
   * edits where that is safe: when the server's text is still the one they were made on
   * they are sent again; when it is that text plus the in-flight edit, that edit was applied
   * (its echo was lost) and only the buffer goes. Otherwise they are dropped.
   * Returns {send, dropped}: the op message to send (or null), and whether edits were lost.
   */
  rebase(text, v) {
    let pending = null;
    if (this.inflight !== null) {
      if (text === this.server) pending = this.buffer ? compose(this.inflight, this.buffer) : this.inflight;
      else if (text === apply(this.server, this.inflight)) pending = this.buffer;
    }
    const dropped = this.inflight !== null && pending === null && text !== this.text;
    this.reset(text, v);
    if (pending === null) return { send: null, dropped };
    this.text = apply(text, pending);
    return { send: this._send(pending), dropped: false };
  }

  /** A local edit (made on `text`); the op message to send now, or null when buffered. */
  local(op, after = null) {
    this.text = after ?? apply(this.text, op);
    if (isNoop(op)) return null;
    if (this.inflight === null) return this._send(op);
    this.buffer = this.buffer === null ? op : compose(this.buffer, op);
    return null;
  }

  /**
   * An `op` event from the server ({ops, v, from, ref}); `me` is this client's id.
   * Returns {apply: op to apply to the local text (or null), send: op message (or null),
   * gap: true when versions were missed and the document must be fetched again}.
   */
  remote({ ops, v, from, ref }, me) {
    if (v <= this.v) return { apply: null, send: null, gap: false }; // already seen
    if (v !== this.v + 1) return { apply: null, send: null, gap: true };
    if (from === me && this.inflight !== null && ref === this.inflightRef) { // ours, acknowledged
      this.server = apply(this.server, ops);
      this.v = v;
      const next = this.buffer;
      this.inflight = this.inflightRef = this.buffer = null;
      return { apply: null, send: next === null ? null : this._send(next), gap: false };
    }
    this.server = apply(this.server, ops);
    this.v = v;
    let incoming = ops;
    if (this.inflight !== null) [incoming, this.inflight] = transform(incoming, this.inflight);
    if (this.buffer !== null) [incoming, this.buffer] = transform(incoming, this.buffer);
    this.text = apply(this.text, incoming);
    return { apply: incoming, send: null, gap: false };
  }

  /** Where a position in the server's text (a remote cursor) is in the local text. */
  localIndex(index) {
    let i = Math.min(index, cpLength(this.server));
    if (this.inflight !== null) i = transformIndex(this.inflight, i);
    if (this.buffer !== null) i = transformIndex(this.buffer, i);
    return i;
  }

  _send(op) {
    this.inflight = op;
    this.inflightRef = ++this.ref;
    return { op, v: this.v, ref: this.ref };
  }
}
