// The byte-level codec of the gamesync wire protocol (docs/protocol.md): MessagePack in and
// out with the protocol's limits, the value checks messages are held to, the welcome's schema,
// typed arrays from `bin` values, and inflating compressed snapshot payloads.
// Plain ES module, no build step: in a browser, map the bare specifier with an import map, e.g.
//   <script type="importmap">
//     {"imports": {"@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs"}}
//   </script>
// The Python side: gamesync/core/protocol.py (msgpack), schema.py, delta.py (decompress_payload).

import { Decoder, Encoder } from "@msgpack/msgpack";
import { DesyncError, GamesyncError, ProtocolViolation } from "./errors.js";

export const FLAG_DEFLATE = 1; // snapshot flags bit 0: the payload is zlib-compressed
export const MAX_INFLATE = 64 << 20; // bytes a payload may inflate to

// ---- value checks ------------------------------------------------------------------------------

const codePoints = (s) => [...s].length; // lengths count code points, not UTF-16 units
/** A string of 1..limit code points. */
export const isStr = (v, limit) => typeof v === "string" && v.length > 0 && codePoints(v) <= limit;
/** A safe integer >= lo (0..2^53-1 by default). */
export const isInt = (v, lo = 0) => Number.isSafeInteger(v) && v >= lo;
/** An unsigned 32-bit integer. */
export const isBits = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
/** A msgpack map (a plain object, not an array or bin). */
export const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);

/** ProtocolViolation(reason) unless `cond`. */
export function need(cond, reason) {
  if (!cond) throw new ProtocolViolation(reason);
}

// ---- msgpack -----------------------------------------------------------------------------------

const encoder = new Encoder(); // integral Numbers become msgpack ints, others float64
/** One value to msgpack bytes. */
export const pack = (value) => encoder.encode(value);

// Extensions are refused anywhere in a message, as the Python client refuses them.
const NO_EXT = {
  encode: () => null,
  decode: () => { throw new ProtocolViolation("msgpack extension types are not accepted"); },
};
const mapKey = (k) => {
  if (typeof k !== "string") throw new ProtocolViolation("map keys must be strings");
  return k;
};
const messageDecoder = new Decoder({ extensionCodec: NO_EXT, mapKeyConverter: mapKey });

/** msgpack bytes to a value; ProtocolViolation when they are not valid msgpack. */
export function unpackValue(bytes) {
  try {
    return messageDecoder.decode(bytes);
  } catch (e) {
    if (e instanceof GamesyncError) throw e;
    throw new ProtocolViolation(`malformed msgpack: ${e.message}`);
  }
}

/** A decoder bounded as a payload is (no maps, extensions or long strings; arrays of at most
 * `maxArrayLength` items), so a small deflated payload cannot unpack into a huge tree. */
export function boundedDecoder(maxArrayLength) {
  return new Decoder({ extensionCodec: NO_EXT, maxArrayLength, maxMapLength: 0, maxExtLength: 0, maxStrLength: 16 });
}

// ---- typed arrays ------------------------------------------------------------------------------

/** Wire dtype code -> TypedArray constructor (little-endian host assumed, as every mainstream one is). */
export const DTYPES = { "<i1": Int8Array, "<i2": Int16Array, "<i4": Int32Array,
                        "<u1": Uint8Array, "<u2": Uint16Array, "<u4": Uint32Array };

/** `code` when it is one of `allowed`, else DesyncError. */
export function dtype(code, allowed) {
  if (!allowed.includes(code)) throw new DesyncError(`bad dtype ${JSON.stringify(code)}`);
  return code;
}

/** bin -> typed array of `code` (of `count` values when given), else DesyncError. Copies
 * first: a decoded bin is a view at any offset, and a typed array needs an aligned one. */
export function readArray(bin, code, count) {
  const T = DTYPES[code];
  if (!T || !(bin instanceof Uint8Array) || bin.byteLength % T.BYTES_PER_ELEMENT) throw new DesyncError("bad array");
  const a = new T(new Uint8Array(bin).buffer);
  if (count !== undefined && a.length !== count) throw new DesyncError(`expected ${count} values, got ${a.length}`);
  return a;
}

// ---- schema (section 6.1.1) --------------------------------------------------------------------

const PREPARED = Symbol("gamesync.preparedSchema");
const IDENT = /^[\p{XID_Start}_]\p{XID_Continue}*$/u; // Python's str.isidentifier(), near enough

// smallest unsigned wire dtype holding 0..top (gamesync.core.schema._unsigned_for)
function unsignedFor(top) {
  if (!(top <= 0xffffffff)) throw new ProtocolViolation(`${top} quantisation levels do not fit in 32 bits`);
  return top <= 0xff ? "<u1" : top <= 0xffff ? "<u2" : "<u4";
}

/** x into [0, m). */
export const mod = (x, m) => x - Math.floor(x / m) * m;
/** d into [-m/2, m/2). */
export const wrap = (d, m) => mod(d + m / 2, m) - m / 2;

// a field's wire dtype, as its kind and range imply (or, for an int, as it names)
function wireDtype(f, name) {
  const { kind } = f;
  if (kind === "float") {
    const { lo, hi, step } = f;
    need([lo, hi, step].every((v) => typeof v === "number" && Number.isFinite(v)) && hi > lo && step > 0,
      `float field ${name}: need numbers with hi > lo and step > 0`);
    return unsignedFor(Math.ceil((hi - lo) / step - 1e-9)); // Field.levels
  }
  if (kind === "angle") {
    need(Number.isInteger(f.bits) && f.bits >= 2 && f.bits <= 32, `angle field ${name}: bits must be in 2..32`);
    return unsignedFor(2 ** f.bits - 1);
  }
  if (kind === "int") {
    need(Object.hasOwn(DTYPES, f.wire), `int field ${name}: unknown wire dtype ${JSON.stringify(f.wire)}`);
    return f.wire;
  }
  throw new ProtocolViolation(`unknown field kind ${JSON.stringify(kind)}`);
}

function prepareField(f, names) {
  need(isMap(f), "schema entries must be maps");
  const { name, kind } = f;
  const predict = f.predict === undefined ? "linear" : f.predict;
  need(typeof name === "string" && IDENT.test(name), `field name ${JSON.stringify(name)} is not an identifier`);
  need(!names.has(name), "duplicate field names");
  need(name !== "id" && name !== "alive", "'id' and 'alive' are reserved");
  names.add(name);
  need(predict === "linear" || predict === "hold", `field ${name}: predict must be "linear" or "hold"`);
  const wire = wireDtype(f, name);
  need(f.wire === wire, `field ${name}: wire dtype ${JSON.stringify(f.wire)}, expected ${wire}`);
  const M = kind === "angle" ? 2 ** f.bits : wire === "<u4" || wire === "<i4" ? 2 ** 32 : 0;
  const red = !M ? null
    : M < 2 ** 32 ? (x) => mod(x, M) // an angle narrower than 32 bits
      : wire === "<i4" ? (x) => x | 0 : (x) => x >>> 0; // modulo 2**32, as int32 / uint32
  const size = DTYPES[wire].BYTES_PER_ELEMENT;
  const cast = wrapInto(wire);
  return { ...f, predict, wire, M, red, hold: predict === "hold", size, cast, fit: red ?? cast };
}

/** x (an integer) wrapped into the range of wire dtype `code`, as a cast to it wraps. */
export function wrapInto(code) {
  const span = 2 ** (8 * DTYPES[code].BYTES_PER_ELEMENT);
  if (span === 2 ** 32) return code === "<i4" ? (x) => x | 0 : (x) => x >>> 0;
  return code[1] === "i" ? (x) => wrap(x, span) : (x) => mod(x, span);
}

/**
 * The welcome's schema entries, checked as Schema.from_wire checks them, each with
 *   M: the modulus of the codec's arithmetic (section 10: 2**bits for angles, 2**32 for the
 *      other <u4/<i4 fields, else 0),
 *   red: reduces modulo M into the wire dtype's range (null without a modulus),
 *   hold: the field is predicted as its baseline value,
 *   size: bytes of the wire dtype, cast: wraps an integer into the wire dtype's range,
 *   fit: red, or cast for a field without a modulus (a view payload's sums, section 18.5).
 * A float's or angle's `wire` must be the one its range implies (the Python client derives
 * it rather than reading it).
 */
export function prepareSchema(wire) {
  if (wire && wire[PREPARED]) return wire;
  need(Array.isArray(wire), "schema must be a list");
  const names = new Set();
  const out = wire.map((f) => prepareField(f, names));
  Object.defineProperty(out, PREPARED, { value: true });
  return Object.freeze(out);
}

/** A quantised value `q` of field `f` as a game value (section 11; floats stay float64). */
export function dequantise(f, q) {
  if (f.kind === "float") return q * f.step + f.lo;
  if (f.kind === "angle") return q * (2 * Math.PI / 2 ** f.bits);
  return q;
}

// ---- compression (section 6.2) -----------------------------------------------------------------

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
        throw new DesyncError("payload inflates past the limit");
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof DesyncError) throw e;
    throw new DesyncError(`bad deflate data: ${e.message}`);
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
    throw new DesyncError(`bad deflate data: ${e.message}`);
  }
}

/** Inflate a payload whose snapshot has flag bit 0 set; DesyncError when it is not valid zlib. */
export const inflate = typeof DecompressionStream === "function" ? inflateStream : inflateNode;
