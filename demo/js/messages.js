// The messages of the gamesync wire protocol, version 5 (docs/protocol.md sections 5 to 7):
// builders for everything a client sends, validating parsers for everything the server
// sends, and their constants. The JavaScript twin of gamesync/core/protocol.py (pack_join ->
// packJoin, parse_server -> parseServer, ...); tests/vectors/snapshots.json holds what the
// Python side produces, and demo/test checks this module against it byte for byte.

import { isBits, isInt, isMap, isStr, need, pack, unpackValue } from "./codec.js";
import { ERROR_CLOSE, ProtocolViolation } from "./errors.js";

export const PROTOCOL_VERSION = 5;
export const VIEW_VERSION = 4; // the first version whose clients may join a view room (section 18)
export const PACKED_VERSION = 5; // the first whose view payloads carry packed record lists (18.3.1)
export const NO_TICK = -1; // baseline / reference "none" in a snapshot header
export const MAX_NAME = 64; // room, name and game: 1..64 code points
export const MAX_ROOM = 64;
export const MAX_TOKEN = 2048; // join token and resume token
export const MAX_URL = 2048; // a redirect's URL
export const MAX_INT = Number.MAX_SAFE_INTEGER; // 2^53 - 1: the largest int a client may send
export const ACK_BITS = 32; // ticks before the acked one that an ack also reports
export const MAX_DEPTH = 32; // nesting of arrays and maps in a client's game data

/** Message types, the first element of every message. Type 9 is unused. */
export const Msg = Object.freeze({
  JOIN: 1, WELCOME: 2, INPUT: 3, SNAPSHOT: 4, ACK: 5, MESSAGE: 6, MESSAGE_ACK: 7, PING: 8, ERROR: 10, LEAVE: 11,
  REDIRECT: 12,
});

/** Kinds of the entries of a snapshot's event list (section 7). */
export const Ev = Object.freeze({ EVENT: 0, RELIABLE: 1, JOINED: 2, LEFT: 3, MESSAGE_ACK: 4, PONG: 5 });

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

/** message_ack (7): confirms a reliable event `[1, data, ackId]`; with a `reply`, answers
 * it (the game's request: docs/protocol.md, section 5.5). */
export function packMessageAck(ackId, ...reply) {
  need(isInt(ackId), "ack id must be an integer >= 0");
  if (reply.length === 0) return pack([Msg.MESSAGE_ACK, ackId]);
  checkData(reply[0]);
  return pack([Msg.MESSAGE_ACK, ackId, reply[0]]);
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

/** One message to its array form; ProtocolViolation unless it is an array starting with an int. */
export function unpack(bytes) {
  const msg = unpackValue(bytes);
  need(Array.isArray(msg) && msg.length > 0 && Number.isInteger(msg[0]),
    "a message is an array whose first element is its integer type");
  return msg;
}

function arity(msg, lo, hi, name) {
  need(msg.length >= lo && msg.length <= hi, `${name} takes ${lo - 1}..${hi - 1} fields, got ${msg.length - 1}`);
}

function parseSnapshot(msg) {
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

function parseWelcome(msg) {
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
  // position 11, only in a view room (section 18), read from version 4 on
  const view = msg.length > 11 && version >= VIEW_VERSION ? msg[11] : null;
  need(view === null || isMap(view), "view must be a map or nil");
  return { type: Msg.WELCOME, version, clientId, room, game, tickRate, tick, schema, history, resumeToken, resumed,
           view };
}

function parseError(msg) {
  arity(msg, 3, 3, "error");
  need(typeof msg[1] === "string" && typeof msg[2] === "string", "error code and reason must be strings");
  return { type: Msg.ERROR, code: msg[1], reason: msg[2], closeCode: ERROR_CLOSE[msg[1]] ?? null };
}

function parseRedirect(msg) {
  arity(msg, 4, 64, "redirect"); // later versions may append fields: ignore them
  const [, url, room, ttlMs] = msg;
  need(isStr(url, MAX_URL) && /^wss?:\/\//.test(url), "redirect url must be a ws:// or wss:// URL");
  need(isStr(room, MAX_ROOM), `room must be a string of 1..${MAX_ROOM} characters`);
  need(isInt(ttlMs), "redirect ttl must be an integer >= 0");
  return { type: Msg.REDIRECT, url, room, ttlMs };
}

const PARSERS = { [Msg.SNAPSHOT]: parseSnapshot, [Msg.WELCOME]: parseWelcome, [Msg.ERROR]: parseError,
                  [Msg.REDIRECT]: parseRedirect };

/**
 * One server message, every field checked (as gamesync.core.protocol.parse_server), to one of
 *   {type: Msg.WELCOME, version, clientId, room, game, tickRate, tick, schema, history, resumeToken, resumed,
 *    view: the grid of a view room (a map, section 18.1), or null}
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
  const parse = Object.hasOwn(PARSERS, msg[0]) ? PARSERS[msg[0]] : null;
  if (!parse) throw new ProtocolViolation(`unknown message type ${msg[0]}`);
  return parse(msg);
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
  throw new ProtocolViolation(`bad event entry of kind ${JSON.stringify(kind)}`);
}
