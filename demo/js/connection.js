// One player's connection to a gamesync room: join, snapshots into a Mirror, acks, inputs,
// messages with delivery acks, RTT, traffic figures, and reconnecting by itself.
//
// Speaks exactly docs/protocol.md (version 4) through messages.js and mirror.js (view.js in a
// view room, whose welcome has a `view`):
// - every snapshot is decoded, in order (mirror.js queues them): under version 3 the server builds
//   on what it wrote to this connection, so no snapshot is acknowledged (section 12.1);
// - inputs are numbered from 1;
// - a lost connection is retried with capped exponential backoff and jitter, joining
//   with the newest resume token so the seat (client id, entity, applied inputs) comes back
//   (section 4.1); after a resumed welcome the inputs the server has not applied are sent
//   again, after a fresh one they are dropped;
// - a silent server (nothing for `staleMs`) counts as lost: the heartbeat, which also bounds
//   how long a connection may take to open and be welcomed;
// - errors that retrying does not cure (wrong version, unknown game...: errors.js) stop the retries;
// - a redirect (the room is hosted by another node of a cluster, docs/protocol.md) is
//   followed at once, keeping the resume token; later reconnects start from `url` again.
//   More than MAX_REDIRECTS in a row (no other failure in between) is a loop: offline.
//
// The page sees it through `on(type, fn)`:
//   "status"   {status, attempt, delayMs, reason}   connecting|connected|reconnecting|offline
//   "welcome"  the parsed welcome ({clientId, resumed, tickRate, ...})
//   "snapshot" {state, tick, inputAck, mirror}      after the mirror applied it
//   "event"    game data sent to this client (protocol event kinds 0 and 1)
//   "joined"   {clientId, name}   "left" {clientId}
//   "error"    {code, reason}     what the server said before closing
//   "redirect" {url, room, ttlMs} the room lives elsewhere: the next connection goes there

import { Mirror } from "./mirror.js";
import { ViewMirror } from "./view.js";
import { DesyncError, ERRORS, shouldRetry } from "./errors.js";
import {
  Ev, Msg, NO_TICK, PACKED_VERSION, packInput, packJoin, packLeave, packMessage, packMessageAck, packPing, parseEvent,
  parseServer,
} from "./messages.js";

export const Status = Object.freeze({
  CONNECTING: "connecting", CONNECTED: "connected", RECONNECTING: "reconnecting", OFFLINE: "offline",
});

// Inputs in flight (sent, not yet reported applied) at most, and so also re-sent after a
// resume: a server with more than 128 waiting closes the client with rate_limited and gives
// its seat up (section 5.2). A server that stalls for a few seconds and then reads them all
// at once would otherwise see every input sent meanwhile (30 a second) waiting.
const IN_FLIGHT_MAX = 120;
const MAX_REDIRECTS = 5; // redirects followed in a row (more: a loop between nodes)

/** Backoff before attempt `n` (1, 2, ...): a capped exponential, jittered over its upper half. */
export function backoffMs(n, baseMs, maxMs, random = Math.random) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, n - 1));
  return Math.round(cap / 2 + random() * cap / 2);
}

/** Rates over a sliding window of one second (count and bytes per second). */
class Rate {
  constructor() { this.events = []; }
  add(now, bytes = 0) { this.events.push([now, bytes]); this._trim(now); }
  _trim(now) { while (this.events.length && this.events[0][0] < now - 1000) this.events.shift(); }
  perSecond(now) { this._trim(now); return this.events.length; }
  bytesPerSecond(now) { this._trim(now); return this.events.reduce((s, e) => s + e[1], 0); }
}

export class Connection {
  /**
   * @param url   ws:// or wss:// URL of the server, or a list of them (the nodes of a
   *              cluster: the first is tried first, reconnect attempts go round the list)
   * @param room  room to join; `name` the player's name; `game` the game for a new room
   * @param opts  token (join token), maxAttempts (failed attempts in a row before going
   *              offline), baseDelayMs / maxDelayMs (backoff), staleMs (heartbeat),
   *              pingMs, WebSocket (constructor, for Node)
   */
  constructor(url, room, name, {
    game = null, token = null, maxAttempts = 8, baseDelayMs = 250, maxDelayMs = 4000, staleMs = 5000,
    pingMs = 1000, WebSocket: WS = globalThis.WebSocket,
  } = {}) {
    const urls = [].concat(url);
    if (!urls.length) throw new Error("no server URL");
    Object.assign(this, { urls, url: urls[0], room, name, game, token, maxAttempts, baseDelayMs, maxDelayMs,
                          staleMs, pingMs });
    this.WS = WS;
    this.status = Status.OFFLINE;
    this.ws = null;
    this.welcome = null;
    this.mirror = null;
    this.clientId = null;
    this.resumeToken = null;
    this.inputAck = 0; // newest applied input seq the server reported
    this.seq = 0; // last input seq used; carries over to a resumed seat
    this.unacked = []; // [seq, data] sent and not yet applied
    this.rtt = null; // ms, smoothed
    this.lastError = null;
    this.attempt = 0;
    this._handlers = new Map();
    this._queue = Promise.resolve(); // messages are handled strictly in order
    this._nextAckId = 1;
    this._pending = new Map(); // ack id -> {resolve, timer}
    this._timers = [];
    this._retryTimer = null;
    this._lastHeard = 0;
    this._welcomedAt = 0; // performance.now() at the current connection's welcome
    this._closing = false;
    this._orphans = new Set(); // sockets left open so that their seat can be resumed
    this._redirect = null; // where the room is, from a redirect message: the next connection's URL
    this._hops = 0; // redirects followed since the last welcome
    this.hostUrl = null; // the server the current connection is to (after redirects)
    this._down = new Rate(); this._up = new Rate(); this._snaps = new Rate();
  }

  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, []);
    this._handlers.get(type).push(fn);
    return this;
  }

  _emit(type, detail) {
    for (const fn of this._handlers.get(type) ?? []) {
      try { fn(detail); } catch (e) { console.error(`gamesync: ${type} handler failed`, e); }
    }
  }

  _setStatus(status, extra = {}) {
    this.status = status;
    this._emit("status", { status, attempt: this.attempt, ...extra });
  }

  /** Connect (again). Also what the page's "retry" button calls once offline. */
  start() {
    this._closing = false;
    this.attempt = 0;
    this._hops = 0;
    this._redirect = null;
    clearTimeout(this._retryTimer);
    this._open(Status.CONNECTING);
  }

  retry() { this.start(); }

  /** Leave the room for good: `leave`, then the close; no reconnecting. */
  close() {
    this._closing = true;
    clearTimeout(this._retryTimer);
    this._closeOrphans();
    if (this.ws && this.ws.readyState === 1) {
      this._sendRaw(packLeave());
      this.ws.close(1000, "leaving");
    }
    this._teardown();
    this._setStatus(Status.OFFLINE, { reason: "left" });
  }

  _open(status, url = this.url) {
    this._setStatus(status);
    this.hostUrl = url;
    const ws = new this.WS(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.lastError = null;
    this._lastHeard = performance.now(); // a socket that never opens, or is never welcomed, is lost too
    this._timers.push(setInterval(() => this._heartbeat(), Math.min(1000, this.staleMs / 2)));
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this._lastHeard = performance.now();
      this._sendRaw(packJoin(this.room, this.name, { game: this.game, token: this.token, resume: this.resumeToken }));
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      const bytes = new Uint8Array(e.data);
      this._lastHeard = performance.now();
      this._down.add(this._lastHeard, bytes.byteLength);
      this._queue = this._queue.then(() => this._onMessage(ws, bytes)).catch((err) => this._fail(ws, err));
    };
    ws.onclose = (e) => { // after the messages before it: an error or a redirect may still be queued
      if (ws !== this.ws) return;
      this._queue = this._queue.then(() => { if (ws === this.ws) this._lost(e.code, e.reason); });
    };
    ws.onerror = () => {}; // onclose follows
  }

  // Drop the current socket. `keepSeat`: it may still be open (a desync, a silent server),
  // and a close frame from us would give the seat up (section 4.1), so it is left open
  // until the next connection has taken the seat back (the server then closes it itself).
  // A socket that never opened sent no join and holds no seat. One that sent a join and got
  // no answer yet may hold the seat already, and so may the orphans before it: all are kept.
  _teardown(keepSeat = false) {
    for (const t of this._timers) clearInterval(t);
    this._timers = [];
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === 1 && keepSeat && this.resumeToken) this._orphans.add(ws);
      else if (ws.readyState <= 1) ws.close(1000);
    }
    this.mirror = null;
  }

  _closeOrphans() {
    for (const ws of this._orphans) ws.close(1000);
    this._orphans.clear();
  }

  _fail(ws, err) {
    if (ws !== this.ws) return;
    // a desync or a message we cannot read: start a fresh stream, keeping the seat
    console.warn("gamesync: reconnecting after", err);
    this._lost(err instanceof DesyncError ? ERRORS.desync.close : ERRORS.protocol.close, String(err.message ?? err), true);
  }

  _lost(code, reason, keepSeat = false) {
    const wasWelcomed = this.status === Status.CONNECTED;
    this._teardown(keepSeat);
    if (this._closing) return;
    const offline = (why) => {
      this._closeOrphans();
      this._setStatus(Status.OFFLINE, { reason: why });
    };
    if (this._redirect) { // the room is on another node: go there now
      const url = this._redirect;
      this._redirect = null;
      if (this._hops >= MAX_REDIRECTS) { // section 4.2: stop and report
        offline(`more than ${MAX_REDIRECTS} redirects in a row (last to ${url})`);
        return;
      }
      this._hops += 1;
      this._open(wasWelcomed ? Status.RECONNECTING : this.status, url);
      return;
    }
    this._hops = 0; // a failure of another kind ends a row of redirects
    // a resume the server refuses (the seat belongs to another player): join afresh next time
    if (this.lastError?.code === "unauthorized" && this.resumeToken) this.resumeToken = null;
    const fatal = this.lastError && !shouldRetry(this.lastError.code); // a bug or a configuration error
    if (fatal) {
      offline(`${this.lastError.code}: ${this.lastError.reason}`);
      return;
    }
    if (wasWelcomed) this.attempt = 0;
    this.attempt += 1;
    if (this.attempt > this.maxAttempts) {
      offline(this.lastError?.reason || reason || `closed (${code})`);
      return;
    }
    const delayMs = backoffMs(this.attempt, this.baseDelayMs, this.maxDelayMs);
    this._setStatus(Status.RECONNECTING, { delayMs, reason: this.lastError?.reason || reason || `closed (${code})` });
    const url = this.urls[(this.attempt - 1) % this.urls.length];
    this._retryTimer = setTimeout(() => this._open(Status.RECONNECTING, url), delayMs);
  }

  _sendRaw(bytes) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(bytes);
    this._up.add(performance.now(), bytes.byteLength);
    return true;
  }

  async _onMessage(ws, bytes) {
    if (ws !== this.ws) return;
    const m = parseServer(bytes);
    if (m.type === Msg.WELCOME) return this._onWelcome(m);
    if (m.type === Msg.REDIRECT) { // a close (4012) follows; the next connection goes there
      this._redirect = m.url;
      this._emit("redirect", m);
      return;
    }
    if (m.type === Msg.ERROR) {
      this.lastError = { code: m.code, reason: m.reason };
      this._emit("error", this.lastError);
      return;
    }
    if (!this.mirror) throw new DesyncError("snapshot before welcome");
    const state = await this.mirror.applySnapshot(m);
    if (ws !== this.ws) return;
    if (state) {
      this._snaps.add(performance.now());
      this.inputAck = m.inputAck;
      this.unacked = this.unacked.filter(([s]) => s > m.inputAck);
    }
    for (const raw of m.events) this._onEvent(parseEvent(raw));
    if (state) this._emit("snapshot", { state, tick: m.tick, inputAck: m.inputAck, mirror: this.mirror });
  }

  _onWelcome(m) {
    this.welcome = m;
    this.clientId = m.clientId;
    this.resumeToken = m.resumeToken;
    // a view room (section 18) holds the cells it watches, any other room the whole world
    this.mirror = m.view ? new ViewMirror(m.schema, m.view, { packed: m.version >= PACKED_VERSION }) : new Mirror(m.schema, m.history);
    this.attempt = 0;
    this._hops = 0;
    this._closeOrphans(); // the seat is on this connection now (or was given up)
    if (m.resumed) {
      for (const [s, d] of this.unacked.slice(-IN_FLIGHT_MAX)) this._sendRaw(packInput(s, d));
    } else {
      this.unacked = [];
      this.inputAck = 0;
      this.seq = 0;
      for (const [, p] of this._pending) { clearTimeout(p.timer); p.resolve(false); }
      this._pending.clear();
    }
    this._welcomedAt = performance.now();
    this._timers.push(setInterval(() => this._sendRaw(packPing(performance.now())), this.pingMs));
    this._setStatus(Status.CONNECTED);
    this._emit("welcome", m);
  }

  _heartbeat() {
    if (this.ws && performance.now() - this._lastHeard > this.staleMs) {
      this._lost(4008, `no word from the server for ${this.staleMs} ms`, true);
    }
  }

  _onEvent(ev) {
    switch (ev.kind) {
      case Ev.EVENT: this._emit("event", ev.data); break;
      case Ev.RELIABLE:
        this._sendRaw(packMessageAck(ev.ackId));
        this._emit("event", ev.data);
        this._emit("request", { data: ev.data, ackId: ev.ackId }); // answer with reply(ackId, ...)
        break;
      case Ev.JOINED: this._emit("joined", { clientId: ev.clientId, name: ev.name }); break;
      case Ev.LEFT: this._emit("left", { clientId: ev.clientId }); break;
      case Ev.MESSAGE_ACK: {
        const p = this._pending.get(ev.ackId);
        if (p) { clearTimeout(p.timer); this._pending.delete(ev.ackId); p.resolve(true); }
        break;
      }
      case Ev.PONG: { // a resumed seat's first snapshot may answer pings from before the outage: not a sample
        const sample = performance.now() - ev.time;
        if (sample >= 0 && ev.time >= this._welcomedAt) this.rtt = this.rtt === null ? sample : this.rtt + (sample - this.rtt) * 0.2;
        break;
      }
      default: break;
    }
  }

  // ---- what the game sends ---------------------------------------------------------------

  /**
   * Send one input; returns its seq (null when not connected, or when IN_FLIGHT_MAX inputs
   * are in flight already: nothing is sent or kept).
   */
  sendInput(data) {
    if (this.status !== Status.CONNECTED || this.unacked.length >= IN_FLIGHT_MAX) return null;
    const seq = ++this.seq;
    this.unacked.push([seq, data]);
    this._sendRaw(packInput(seq, data));
    return seq;
  }

  /** Answer the game's request (a `request` event's `ackId`) with `data`. False when not connected. */
  reply(ackId, data) {
    return this.status === Status.CONNECTED && this._sendRaw(packMessageAck(ackId, data));
  }

  /** A message to the game, no confirmation. False when not connected. */
  send(data) {
    return this.status === Status.CONNECTED && this._sendRaw(packMessage(data));
  }

  /**
   * A message the server confirms: resolves true on its message_ack, false when none came
   * within `timeoutMs` (or the connection was not up, or a fresh seat replaced this one).
   */
  sendReliable(data, timeoutMs = 5000) {
    if (this.status !== Status.CONNECTED) return Promise.resolve(false);
    const id = this._nextAckId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this._pending.delete(id); resolve(false); }, timeoutMs);
      this._pending.set(id, { resolve, timer });
      if (!this._sendRaw(packMessage(data, id))) { clearTimeout(timer); this._pending.delete(id); resolve(false); }
    });
  }

  /** Traffic over the last second, for the net overlay. */
  stats() {
    const now = performance.now();
    return {
      rtt: this.rtt, tick: this.mirror ? this.mirror.tick : NO_TICK,
      snapshotsPerS: this._snaps.perSecond(now),
      bytesDownPerS: this._down.bytesPerSecond(now), bytesUpPerS: this._up.bytesPerSecond(now),
      inputAck: this.inputAck, unacked: this.unacked.length,
    };
  }
}
