// The error vocabulary (docs/protocol.md section 13): every error code with the WebSocket
// close code it comes with and whether the client connects again after it, and the errors
// this client throws. The JavaScript twin of gamesync/core/errors.py: ERRORS is the same
// table as its ERRORS (tests/demo/test_js_client.py checks that they are equal).

/** Error code of an `error` message -> {close: the close code that follows it, retry}. */
export const ERRORS = Object.freeze({
  going_away: { close: 1001, retry: true },
  protocol: { close: 1002, retry: false },
  unsupported_data: { close: 1003, retry: false },
  forbidden: { close: 1008, retry: true }, // never sent: the HTTP 403 before the WebSocket opens
  rate_limited: { close: 1008, retry: true },
  too_big: { close: 1009, retry: false },
  internal: { close: 1011, retry: true },
  version: { close: 4001, retry: false },
  room_full: { close: 4002, retry: true },
  server_full: { close: 4003, retry: true },
  unknown_game: { close: 4004, retry: false },
  timeout: { close: 4008, retry: true },
  slow_consumer: { close: 4009, retry: true },
  desync: { close: 4010, retry: true },
  unauthorized: { close: 4011, retry: true },
  redirect: { close: 4012, retry: true }, // followed at once, to the redirect message's URL
  unavailable: { close: 4013, retry: true },
});
for (const e of Object.values(ERRORS)) Object.freeze(e);

/** Error code -> close code (derived from ERRORS). */
export const ERROR_CLOSE = Object.freeze(Object.fromEntries(Object.entries(ERRORS).map(([c, e]) => [c, e.close])));

/** Close code -> whether the client connects again (derived from ERRORS). */
export const CLOSE_RETRY = Object.freeze(Object.fromEntries(Object.values(ERRORS).map((e) => [e.close, e.retry])));

/** Whether the client connects again after an `error` with `code` (an unknown code: yes). */
export function shouldRetry(code) {
  return !Object.hasOwn(ERRORS, code) || ERRORS[code].retry;
}

/** WebSocket close codes (section 13). 1006 is what a browser reports without a close frame. */
export const Close = Object.freeze({
  NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL: 1002, UNSUPPORTED_DATA: 1003, ABNORMAL: 1006, RATE_LIMITED: 1008,
  TOO_BIG: 1009, INTERNAL: 1011, VERSION: 4001, ROOM_FULL: 4002, SERVER_FULL: 4003, UNKNOWN_GAME: 4004,
  TIMEOUT: 4008, SLOW_CONSUMER: 4009, DESYNC: 4010, UNAUTHORIZED: 4011,
});

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
export class ProtocolViolation extends GamesyncError {
  constructor(reason) { super("protocol", Close.PROTOCOL, reason); }
}

/** A snapshot needs a state this client does not hold, or its payload does not decode:
 * close (4010 is the client's own code for it) and reconnect (section 4.1). */
export class DesyncError extends GamesyncError {
  constructor(reason) { super("desync", Close.DESYNC, reason); }
}
