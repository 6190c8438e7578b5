// gamesync wire protocol, version 2 (docs/protocol.md), for browsers and Node.
//
// Message builders for everything a client sends, validating parsers for everything the
// server sends, the constants of the protocol, and the snapshot payload decoder of the
// document's Appendix A. Plain ES module, no build step: in a browser, map the bare
// specifier with an import map, e.g.
//   <script type="importmap">
//     {"imports": {"@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs"}}
//   </script>
// The Python side of all this is gamesync/core/protocol.py, clientproto.py and delta.py;
// tests/vectors/snapshots.json holds what that side produces, and demo/test checks this
// module against it byte for byte.

import { Decoder, Encoder } from "@msgpack/msgpack";

// ---- constants (docs/protocol.md sections 5, 7, 13, 14) --------------------------------------

export const PROTOCOL_VERSION = 2;
export const NO_TICK = -1; // baseline / reference "none" in a snapshot header
export const MAX_NAME = 64; // room, name and game: 1..64 code points
export const MAX_ROOM = 64;
export const MAX_TOKEN = 2048; // join token and resume token
export const MAX_URL = 2048; // a redirect's URL
export const MAX_INT = Number.MAX_SAFE_INTEGER; // 2^53 - 1: the largest int a client may send
export const ACK_BITS = 32; // ticks before the acked one that an ack also reports
export const MAX_DEPTH = 32; // nesting of arrays and maps in a client's game data
export const FLAG_DEFLATE = 1; // snapshot flags bit 0: the payload is zlib-compressed
export const MAX_SLOTS = 1 << 24; // entity slots a payload may declare (bounds memory)
export const MAX_INFLATE = 64 << 20; // bytes a payload may inflate to

/** Message types, the first element of every message. Type 9 is unused. */
export const Msg = Object.freeze({
  JOIN: 1, WELCOME: 2, INPUT: 3, SNAPSHOT: 4, ACK: 5, MESSAGE: 6, MESSAGE_ACK: 7, PING: 8, ERROR: 10, LEAVE: 11,
  REDIRECT: 12,
});

/** Kinds of the entries of a snapshot's event list (section 7). */
export const Ev = Object.freeze({ EVENT: 0, RELIABLE: 1, JOINED: 2, LEFT: 3, MESSAGE_ACK: 4, PONG: 5 });

/** WebSocket close codes (section 13). 1006 is what a browser reports without a close frame. */
export const Close = Object.freeze({
  NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL: 1002, UNSUPPORTED_DATA: 1003, ABNORMAL: 1006, RATE_LIMITED: 1008,
  TOO_BIG: 1009, INTERNAL: 1011, VERSION: 4001, ROOM_FULL: 4002, SERVER_FULL: 4003, UNKNOWN_GAME: 4004,
  TIMEOUT: 4008, SLOW_CONSUMER: 4009, DESYNC: 4010, UNAUTHORIZED: 4011,
});

/** Error code of an `error` message -> the close code that follows it. */
export const ERROR_CLOSE = Object.freeze({
  going_away: 1001, protocol: 1002, unsupported_data: 1003, rate_limited: 1008, too_big: 1009, internal: 1011,
  version: 4001, room_full: 4002, server_full: 4003, unknown_game: 4004, timeout: 4008, slow_consumer: 4009,
  desync: 4010, unauthorized: 4011, redirect: 4012, unavailable: 4013,
});

/** Error codes that retrying does not cure (bugs or configuration; as the Python client's FATAL_CODES). */
export const FATAL_ERRORS = new Set(["version", "unknown_game", "protocol", "unsupported_data", "too_big"]);

// ---- errors --------------------------------------------------------------------------------

/** Base error: `code` as in an `error` message, `closeCode` for the WebSocket close. */
export class GamesyncError extends Error {
  constructor(code, closeCode, reason) {
    super(reason || code);
    this.name = this.constructor.name;
    this.code = code;
    this.closeCode = closeCode;
    this.reason = reason || code;
  }
}

/** The server sent something off-spec (or a builder was given a value the server refuses). */
export class ProtocolError extends GamesyncError {
  constructor(reason) { super("protocol", Close.PROTOCOL, reason); }
}

/** A snapshot needs a state this client does not hold, or its payload does not decode:
 * close (4010 is the client's own code for it) and reconnect (section 4.1). */
export class Desync extends GamesyncError {
  constructor(reason) { super("desync", Close.DESYNC, reason); }
}

// ---- small checks --------------------------------------------------------------------------

const codePoints = (s) => [...s].length; // lengths count code points, not UTF-16 units
const isStr = (v, limit) => typeof v === "string" && v.length > 0 && codePoints(v) <= limit;
const isInt = (v, lo = 0) => Number.isSafeInteger(v) && v >= lo; // 0..2^53-1 by default
const isBits = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);

function need(cond, reason) {
  if (!cond) throw new ProtocolError(reason);
}

// Game data a client sends: any msgpack value but an extension (a Date would become the
// timestamp extension, which the server refuses), nested at most MAX_DEPTH deep. Walked
// with an explicit stack, as the server does.
function checkData(v) {
  const stack = [[v, 0]];
  while (stack.length) {
    const [x, depth] = stack.pop();
    need(!(x instanceof Date) && typeof x !== "bigint" && typeof x !== "function" && typeof x !== "symbol",
      "game data must be plain msgpack values (no Date, BigInt or function)");
    if (x !== null && typeof x === "object" && !ArrayBuffer.isView(x)) {
      need(depth < MAX_DEPTH, `game data nested deeper than ${MAX_DEPTH} levels`);
      for (const y of Array.isArray(x) ? x : Object.values(x)) stack.push([y, depth + 1]);
    }
  }
  return v;
}

// ---- builders: client -> server (section 5) ---------------------------------------------------

const encoder = new Encoder(); // integral Numbers become msgpack ints, others float64
const pack = (msg) => encoder.encode(msg);

/**
 * join (1): `[1, version, room, name]`, plus the optional game, join token and resume token
 * (nil where an earlier one is missing, trailing nils left out).
 */
export function packJoin(room, name, { game = null, token = null, resume = null, version = PROTOCOL_VERSION } = {}) {
  need(isInt(version), "version must be an integer");
  need(isStr(room, MAX_ROOM), `room must be a string of 1..${MAX_ROOM} characters`);
  need(isStr(name, MAX_NAME), `name must be a string of 1..${MAX_NAME} characters`);
  need(game == null || isStr(game, MAX_ROOM), `game must be a string of 1..${MAX_ROOM} characters`);
  need(token == null || isStr(token, MAX_TOKEN), `token must be a string of 1..${MAX_TOKEN} characters`);
  need(resume == null || isStr(resume, MAX_TOKEN), `resume token must be a string of 1..${MAX_TOKEN} characters`);
  const tail = [game ?? null, token ?? null, resume ?? null];
  while (tail.length && tail[tail.length - 1] === null) tail.pop();
  return pack([Msg.JOIN, version, room, name, ...tail]);
}

/** input (3): `[3, seq, data]`, or with the newest held tick (and its ack bits unless 0). */
export function packInput(seq, data, ack = null, ackBits = 0) {
  need(isInt(seq, 1), "input seq must be an integer >= 1");
  need(ack == null || isInt(ack), "ack tick must be an integer >= 0");
  need(isBits(ackBits), "ack bits must be an unsigned 32-bit integer");
  checkData(data);
  if (ack == null) return pack([Msg.INPUT, seq, data]);
  return pack(ackBits ? [Msg.INPUT, seq, data, ack, ackBits] : [Msg.INPUT, seq, data, ack]);
}

/** ack (5): `[5, tick]` or `[5, tick, bits]` (bits left out when 0). */
export function packAck(tick, bits = 0) {
  need(isInt(tick), "ack tick must be an integer >= 0");
  need(isBits(bits), "ack bits must be an unsigned 32-bit integer");
  return pack(bits ? [Msg.ACK, tick, bits] : [Msg.ACK, tick]);
}

/** message (6): `[6, data]`, or `[6, data, ackId]` to ask for a `message_ack` event. */
export function packMessage(data, ackId = null) {
  need(ackId == null || isInt(ackId), "ack id must be an integer >= 0");
  checkData(data);
  return pack(ackId == null ? [Msg.MESSAGE, data] : [Msg.MESSAGE, data, ackId]);
}

/** message_ack (7): confirms a reliable event `[1, data, ackId]`. */
export function packMessageAck(ackId) {
  need(isInt(ackId), "ack id must be an integer >= 0");
  return pack([Msg.MESSAGE_ACK, ackId]);
}

/** ping (8): the server echoes `time` in a pong event. */
export function packPing(time) {
  need(typeof time === "number" && Number.isFinite(time), "ping time must be a finite number");
  return pack([Msg.PING, time]);
}

/** leave (11). */
export function packLeave() {
  return pack([Msg.LEAVE]);
}

// ---- parsers: server -> client (section 6) ----------------------------------------------------

// Extensions are refused anywhere in a message, as the Python client refuses them.
const NO_EXT = {
  encode: () => null,
  decode: () => { throw new ProtocolError("msgpack extension types are not accepted"); },
};
const mapKey = (k) => {
  if (typeof k !== "string") throw new ProtocolError("map keys must be strings");
  return k;
};
const messageDecoder = new Decoder({ extensionCodec: NO_EXT, mapKeyConverter: mapKey });

/** One message to its array form; ProtocolError unless it is an array starting with an int. */
export function unpack(bytes) {
  let msg;
  try {
    msg = messageDecoder.decode(bytes);
  } catch (e) {
    if (e instanceof GamesyncError) throw e;
    throw new ProtocolError(`malformed msgpack: ${e.message}`);
  }
  need(Array.isArray(msg) && msg.length > 0 && Number.isInteger(msg[0]),
    "a message is an array whose first element is its integer type");
  return msg;
}

function arity(msg, lo, hi, name) {
  need(msg.length >= lo && msg.length <= hi, `${name} takes ${lo - 1}..${hi - 1} fields, got ${msg.length - 1}`);
}

/**
 * One server message, every field checked (as gamesync.core.protocol.parse_server), to one of
 *   {type: Msg.WELCOME, version, clientId, room, game, tickRate, tick, schema, history, resumeToken, resumed}
 *   {type: Msg.SNAPSHOT, tick, base, ref, inputAck, flags, payload, events}
 *   {type: Msg.ERROR, code, reason, closeCode}
 *   {type: Msg.REDIRECT, url, room, ttlMs}  (the room is on another node: join it at `url`)
 * The welcome's schema is the wire list: prepareSchema() checks it and makes it usable.
 * Snapshot events are left raw: parseEvent() reads each one.
 * (msgpack decoders cannot tell 1.0 from 1, so unlike the Python client this one takes an
 * integral float where an int belongs.)
 */
export function parseServer(bytes) {
  const msg = unpack(bytes);
  switch (msg[0]) {
    case Msg.SNAPSHOT: {
      arity(msg, 8, 8, "snapshot");
      const [, tick, base, ref, inputAck, flags, payload, events] = msg;
      need(isInt(tick), "tick must be an integer >= 0");
      need(payload instanceof Uint8Array && Array.isArray(events), "snapshot payload must be bin and events an array");
      need(base === NO_TICK || (isInt(base) && base < tick), "snapshot baseline must be -1 or an earlier tick");
      need(ref === NO_TICK || (isInt(ref) && ref < base), "snapshot reference must be -1 or a tick before the baseline");
      need(isInt(inputAck), "input ack must be an integer >= 0");
      need(isInt(flags), "flags must be an integer >= 0");
      return { type: Msg.SNAPSHOT, tick, base, ref, inputAck, flags, payload, events };
    }
    case Msg.WELCOME: {
      arity(msg, 9, 64, "welcome"); // later versions may append fields: ignore them
      const [, version, clientId, room, game, tickRate, tick, schema, history] = msg;
      const resumeToken = msg.length > 9 ? msg[9] : null;
      const resumed = msg.length > 10 ? msg[10] : false;
      need(resumeToken === null || isStr(resumeToken, MAX_TOKEN), "resume token must be a string");
      need(typeof resumed === "boolean", "resumed must be a boolean");
      need(typeof tickRate === "number" && tickRate > 0, "tick rate must be a positive number");
      need(Array.isArray(schema) && schema.every(isMap), "schema must be an array of maps");
      need(isInt(version), "version must be an integer >= 0");
      need(isInt(clientId, 1), "client id must be an integer >= 1");
      need(isStr(room, MAX_ROOM), `room must be a string of 1..${MAX_ROOM} characters`);
      need(isStr(game, MAX_ROOM), `game must be a string of 1..${MAX_ROOM} characters`);
      need(isInt(tick), "tick must be an integer >= 0");
      need(isInt(history, 1), "history must be an integer >= 1");
      return { type: Msg.WELCOME, version, clientId, room, game, tickRate, tick, schema, history, resumeToken, resumed };
    }
    case Msg.ERROR: {
      arity(msg, 3, 3, "error");
      need(typeof msg[1] === "string" && typeof msg[2] === "string", "error code and reason must be strings");
      return { type: Msg.ERROR, code: msg[1], reason: msg[2], closeCode: ERROR_CLOSE[msg[1]] ?? null };
    }
    case Msg.REDIRECT: {
      arity(msg, 4, 64, "redirect"); // later versions may append fields: ignore them
      const [, url, room, ttlMs] = msg;
      need(isStr(url, MAX_URL) && /^wss?:\/\//.test(url), "redirect url must be a ws:// or wss:// URL");
      need(isStr(room, MAX_ROOM), `room must be a string of 1..${MAX_ROOM} characters`);
      need(isInt(ttlMs), "redirect ttl must be an integer >= 0");
      return { type: Msg.REDIRECT, url, room, ttlMs };
    }
    default:
      throw new ProtocolError(`unknown message type ${msg[0]}`);
  }
}

/**
 * One entry of a snapshot's event list (section 7), checked as the Python client checks it:
 *   {kind: Ev.EVENT, data} | {kind: Ev.RELIABLE, data, ackId} (answer with packMessageAck)
 *   {kind: Ev.JOINED, clientId, name} | {kind: Ev.LEFT, clientId}
 *   {kind: Ev.MESSAGE_ACK, ackId} | {kind: Ev.PONG, time}
 */
export function parseEvent(ev) {
  need(Array.isArray(ev) && ev.length > 0, "bad event entry");
  const [kind] = ev;
  const n = ev.length;
  if (kind === Ev.EVENT && n === 2) return { kind, data: ev[1] };
  if (kind === Ev.RELIABLE && n === 3 && isInt(ev[2])) return { kind, data: ev[1], ackId: ev[2] };
  if (kind === Ev.JOINED && n === 3 && isInt(ev[1]) && typeof ev[2] === "string") return { kind, clientId: ev[1], name: ev[2] };
  if (kind === Ev.LEFT && n === 2 && isInt(ev[1])) return { kind, clientId: ev[1] };
  if (kind === Ev.MESSAGE_ACK && n === 2 && isInt(ev[1])) return { kind, ackId: ev[1] };
  if (kind === Ev.PONG && n === 2 && typeof ev[1] === "number") return { kind, time: ev[1] };
  throw new ProtocolError(`bad event entry of kind ${JSON.stringify(kind)}`);
}

// ---- schema (section 6.1.1) ------------------------------------------------------------------

const DTYPES = { "<i1": Int8Array, "<i2": Int16Array, "<i4": Int32Array,
                 "<u1": Uint8Array, "<u2": Uint16Array, "<u4": Uint32Array };
const PREPARED = Symbol("gamesync.preparedSchema");
const IDENT = /^[\p{XID_Start}_]\p{XID_Continue}*$/u; // Python's str.isidentifier(), near enough

// smallest unsigned wire dtype holding 0..top (gamesync.core.schema._unsigned_for)
function unsignedFor(top) {
  if (!(top <= 0xffffffff)) throw new ProtocolError(`${top} quantisation levels do not fit in 32 bits`);
  return top <= 0xff ? "<u1" : top <= 0xffff ? "<u2" : "<u4";
}

const mod = (x, m) => x - Math.floor(x / m) * m; // into [0, m)
const wrap = (d, m) => mod(d + m / 2, m) - m / 2; // into [-m/2, m/2)

/**
 * The welcome's schema entries, checked as Schema.from_wire checks them, each with
 *   M: the modulus of the codec's arithmetic (section 10: 2**bits for angles, 2**32 for the
 *      other <u4/<i4 fields, else 0),
 *   red: reduces modulo M into the wire dtype's range (null without a modulus),
 *   hold: the field is predicted as its baseline value.
 * A float's or angle's `wire` must be the one its range implies (the Python client derives
 * it rather than reading it).
 */
export function prepareSchema(wire) {
  if (wire && wire[PREPARED]) return wire;
  need(Array.isArray(wire), "schema must be a list");
  const names = new Set();
  const out = wire.map((f) => {
    need(isMap(f), "schema entries must be maps");
    const { name, kind } = f;
    const predict = f.predict === undefined ? "linear" : f.predict;
    need(typeof name === "string" && IDENT.test(name), `field name ${JSON.stringify(name)} is not an identifier`);
    need(!names.has(name), "duplicate field names");
    need(name !== "id" && name !== "alive", "'id' and 'alive' are reserved");
    names.add(name);
    need(predict === "linear" || predict === "hold", `field ${name}: predict must be "linear" or "hold"`);
    let wireDtype;
    if (kind === "float") {
      const { lo, hi, step } = f;
      need([lo, hi, step].every((v) => typeof v === "number" && Number.isFinite(v)) && hi > lo && step > 0,
        `float field ${name}: need numbers with hi > lo and step > 0`);
      wireDtype = unsignedFor(Math.ceil((hi - lo) / step - 1e-9)); // Field.levels
    } else if (kind === "angle") {
      need(Number.isInteger(f.bits) && f.bits >= 2 && f.bits <= 32, `angle field ${name}: bits must be in 2..32`);
      wireDtype = unsignedFor(2 ** f.bits - 1);
    } else if (kind === "int") {
      need(Object.hasOwn(DTYPES, f.wire), `int field ${name}: unknown wire dtype ${JSON.stringify(f.wire)}`);
      wireDtype = f.wire;
    } else {
      throw new ProtocolError(`unknown field kind ${JSON.stringify(kind)}`);
    }
    need(f.wire === wireDtype, `field ${name}: wire dtype ${JSON.stringify(f.wire)}, expected ${wireDtype}`);
    const M = kind === "angle" ? 2 ** f.bits : wireDtype === "<u4" || wireDtype === "<i4" ? 2 ** 32 : 0;
    const red = !M ? null
      : M < 2 ** 32 ? (x) => mod(x, M) // an angle narrower than 32 bits
        : wireDtype === "<i4" ? (x) => x | 0 : (x) => x >>> 0; // modulo 2**32, as int32 / uint32
    return { ...f, predict, wire: wireDtype, M, red, hold: predict === "hold" };
  });
  Object.defineProperty(out, PREPARED, { value: true });
  return Object.freeze(out);
}

/** A quantised value `q` of field `f` as a game value (section 11; floats stay float64). */
export function dequantise(f, q) {
  if (f.kind === "float") return q * f.step + f.lo;
  if (f.kind === "angle") return q * (2 * Math.PI / 2 ** f.bits);
  return q;
}

// ---- snapshot payload (sections 9 and 10; Appendix A) ------------------------------------------
//
// A state is {tick, n, alive: Uint8Array, ids: Uint32Array, cols: Float64Array[]}: one column
// per schema field holding each slot's quantised value as its wire dtype reads it (<u4
// unsigned, <i4 signed); dead slots hold id 0 and zeros. Every value and intermediate is an
// integer below 2^53, so Numbers are exact; the modulo-2^32 reductions use >>> 0 and | 0,
// only ever on sums and differences (never on d * (T - Bt) before its floor division).

const RESIDUAL = ["<i1", "<i2", "<i4"], INDEX = ["<u2", "<u4"], GAPS = ["<u1", "<u2", "<u4"];

function dtype(code, allowed) {
  if (!allowed.includes(code)) throw new Desync(`bad dtype ${JSON.stringify(code)}`);
  return code;
}

// bin -> typed array. Copies first: a decoded bin is a view at any offset, and a typed array
// needs an aligned one (little-endian host assumed, as every mainstream one is).
function readArray(bin, code, count) {
  const T = DTYPES[code];
  if (!T || !(bin instanceof Uint8Array) || bin.byteLength % T.BYTES_PER_ELEMENT) throw new Desync("bad array");
  const a = new T(new Uint8Array(bin).buffer);
  if (count !== undefined && a.length !== count) throw new Desync(`expected ${count} values, got ${a.length}`);
  return a;
}

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

// changed list -> kept positions of the changed entities (section 9.3); null: all k of them
function changedPositions(changed, k) {
  if (changed === null) return null;
  if (!Array.isArray(changed) || changed.length !== 2) throw new Desync("bad changed list");
  const gaps = readArray(changed[1], dtype(changed[0], GAPS));
  if (gaps.length > k) throw new Desync("changed list longer than the kept list");
  const at = new Array(gaps.length);
  let p = 0;
  for (let j = 0; j < gaps.length; j++) {
    if (j > 0 && gaps[j] === 0) throw new Desync("changed positions must increase");
    p += gaps[j];
    at[j] = p;
  }
  if (at.length && p >= k) throw new Desync("changed position out of range");
  return at;
}

// One decoder per field count: the payload is unpacked with bounds on what it can hold
// (as the Python decoder does), so a small deflated payload cannot unpack into a huge tree.
const payloadDecoders = new Map();
function payloadDecoder(nf) {
  let d = payloadDecoders.get(nf);
  if (!d) {
    d = new Decoder({ extensionCodec: NO_EXT, maxArrayLength: Math.max(7, nf), maxMapLength: 0,
                      maxExtLength: 0, maxStrLength: 16 });
    payloadDecoders.set(nf, d);
  }
  return d;
}

/**
 * Decode one (decompressed) payload into the state at `tick` (section 9.5). `base` and `ref`
 * are held states, or null (no baseline: a full snapshot, decoded against the empty world).
 * Throws Desync for anything that does not fit.
 */
export function decodePayload(schema, payload, tick, base, ref) {
  schema = prepareSchema(schema);
  try {
    return decode(schema, payload, tick, base, ref);
  } catch (e) {
    if (e instanceof Desync) throw e;
    throw new Desync(`malformed payload: ${e.name}: ${e.message}`); // as decode_delta, nothing else
  }
}

function decode(schema, payload, tick, base, ref) {
  const nf = schema.length;
  let top;
  try {
    top = payloadDecoder(nf).decode(payload);
  } catch (e) {
    throw new Desync(`undecodable payload: ${e.message}`);
  }
  if (!Array.isArray(top) || top.length !== 7) throw new Desync("payload is not a 7-element array");
  const [n, rmB, crB, idsB, createdVals, fields, changed] = top;
  if (!base) { base = emptyState(nf); ref = null; }
  if (!Number.isInteger(n) || n < 0 || n > MAX_SLOTS || !Array.isArray(fields) || fields.length !== nf
      || !Array.isArray(createdVals) || createdVals.length !== nf) throw new Desync("bad payload header");
  if (n < base.n) throw new Desync("entity count shrank below the baseline");
  const removed = readArray(rmB, "<u4"), created = readArray(crB, "<u4");
  const cids = readArray(idsB, "<u4", created.length);

  // kept list: the baseline's live slots that were not removed (section 9.2)
  const gone = new Uint8Array(base.n);
  for (const s of removed) {
    if (s >= base.n || !base.alive[s]) throw new Desync("bad removed slot");
    gone[s] = 1;
  }
  const kept = [];
  for (let s = 0; s < base.n; s++) if (base.alive[s] && !gone[s]) kept.push(s);
  const k = kept.length;

  const alive = new Uint8Array(n), ids = new Uint32Array(n);
  for (const s of kept) { alive[s] = 1; ids[s] = base.ids[s]; }
  created.forEach((s, i) => {
    if (s >= n || alive[s]) throw new Desync("bad created slot");
    alive[s] = 1;
    ids[s] = cids[i];
  });

  const at = changedPositions(changed, k); // changed entity j is kept entity at[j]
  const m = at ? at.length : k;
  const kpos = at ? (j) => at[j] : (j) => j;

  // which kept entities the reference predicts: same slot, alive there, same id (section 10)
  const useRef = new Uint8Array(k);
  if (ref) {
    for (let j = 0; j < k; j++) {
      const s = kept[j];
      useRef[j] = s < ref.n && ref.alive[s] && ref.ids[s] === base.ids[s] ? 1 : 0;
    }
  }
  const tb = tick - base.tick, br = ref ? base.tick - ref.tick : 1;
  if (ref && br <= 0) throw new Desync("the reference must be older than the baseline");

  const cols = schema.map((f, i) => {
    const { M, red } = f, b = base.cols[i], r = ref ? ref.cols[i] : null;
    const v = new Float64Array(k);
    for (let j = 0; j < k; j++) { // prediction, for every kept entity
      const bv = b[kept[j]];
      if (f.hold || !useRef[j]) { v[j] = bv; continue; } // hold field, or nothing to go by
      let d = bv - r[kept[j]];
      if (M) d = wrap(d, M); // 2**32: the int32 difference
      const p = bv + floorDiv(d * tb, br); // scaled before any reduction
      v[j] = red ? red(p) : p;
    }
    const enc = fields[i];
    if (!Array.isArray(enc) || !enc.length) throw new Desync("bad field encoding");
    const add = (res) => res.forEach((x, j) => { v[kpos(j)] += x; }); // m residuals
    const addAt = (pos, res) => pos.forEach((j, x) => { // at positions of the changed list
      if (j >= m) throw new Desync("position out of range");
      v[kpos(j)] += res[x];
    });
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
      default: throw new Desync(`unknown field mode ${JSON.stringify(enc[0])}`);
    }
    if (red && enc[0] !== 3) for (let j = 0; j < k; j++) v[j] = red(v[j]); // modulo M
    const col = new Float64Array(n); // dead slots stay 0
    for (let j = 0; j < k; j++) col[kept[j]] = v[j];
    if (created.length) {
      readArray(createdVals[i], f.wire, created.length).forEach((x, c) => { col[created[c]] = x; });
    }
    return col;
  });
  return { tick, n, alive, ids, cols };
}

// ---- compression (section 6.2) ------------------------------------------------------------------

/** zlib (RFC 1950) -> bytes with the Compression Streams API ("deflate" is the zlib format). */
export async function inflateStream(bytes, limit = MAX_INFLATE) {
  const ds = new DecompressionStream("deflate");
  const writer = ds.writable.getWriter();
  writer.write(bytes).catch(() => {}); // errors surface on the reading side
  writer.close().catch(() => {});
  const reader = ds.readable.getReader();
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        reader.cancel().catch(() => {});
        throw new Desync("payload inflates past the limit");
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof Desync) throw e;
    throw new Desync(`bad deflate data: ${e.message}`);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.byteLength; }
  return out;
}

let zlib = null; // node:zlib, loaded on first use (never in a browser)

/** zlib -> bytes with Node's zlib, for hosts without DecompressionStream. */
export async function inflateNode(bytes, limit = MAX_INFLATE) {
  zlib ??= import("node:zlib");
  const { inflateSync } = await zlib;
  try {
    const out = inflateSync(bytes, { maxOutputLength: limit });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new Desync(`bad deflate data: ${e.message}`);
  }
}

/** Inflate a payload whose snapshot has flag bit 0 set; Desync when it is not valid zlib. */
export const inflate = typeof DecompressionStream === "function" ? inflateStream : inflateNode;
