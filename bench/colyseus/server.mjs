// Colyseus 0.18 baseline for the gamesync benchmarks: one room that runs the ARENA.md
// scenario (`--game arena`, room "arena") or its big world with StateView interest
// (`--game bigworld`, room "big"); see /work/shared/ARENA.md, arena.mjs and bigworld.mjs.
//
//   node server.mjs --port 0 --port-file /tmp/cport [--game arena|bigworld] [--npcs E] [--stats-file F]
//
// Listens on 127.0.0.1. The room is created at start-up (autoDispose off) so that every
// bot's joinOrCreate(room) lands in the same room and NPCs run from the first second.
// Progress goes to stderr; with --stats-file a JSON object with the server's own counters
// (bytes written to client sockets, ticks, patches, timings) is rewritten once a second
// and on exit.

import { createServer } from "node:http";
import { writeFileSync, renameSync } from "node:fs";
import { parseArgs } from "node:util";

import { Server, matchMaker } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";

import { ArenaRoom, log, setQuiet, stats } from "./arena.mjs";
import { BigWorldRoom, CELL, HYSTERESIS, RADIUS } from "./bigworld.mjs";

const GAMES = {
  arena: { room: ArenaRoom, name: "arena", npcs: 1000 },
  bigworld: { room: BigWorldRoom, name: "big", npcs: 100000 },
};

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "2567" },
    "port-file": { type: "string" },
    game: { type: "string", default: "arena" },
    room: { type: "string" },                      // default: "arena", or "big" for bigworld
    npcs: { type: "string" },                      // default: 1000, or 100000 for bigworld
    "stats-file": { type: "string" },
    "stats-interval": { type: "string", default: "1" },   // seconds between stats file rewrites
    // "timer" (default, the idiomatic Colyseus setup): setPatchRate(1000/30), a patch timer
    // independent of the simulation timer. "after-tick": no patch timer; broadcastPatch()
    // runs at the end of every simulation tick (removes the drifting sim->patch phase).
    "patch-mode": { type: "string", default: "timer" },
    // bigworld only: interest radius R, grid cell side and hysteresis (units)
    radius: { type: "string", default: String(RADIUS) },
    cell: { type: "string", default: String(CELL) },
    hysteresis: { type: "string", default: String(HYSTERESIS) },
    // bigworld only: NPCs outside every view are not written to the schema state until a
    // client may see them again (an optimisation on top of the plain StateView setup)
    dormant: { type: "boolean", default: false },
    // bigworld only: once a second, check every view against every entity (slow; for tests)
    "check-interest": { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
setQuiet(args.quiet);
const game = GAMES[args.game];
if (game === undefined) throw new Error(`--game is ${Object.keys(GAMES).join(" or ")}`);
const roomName = args.room ?? game.name;
const npcs = Number(args.npcs ?? game.npcs);

// ---- bytes written to client sockets (TCP payload the server handed to the kernel) ----
const httpServer = createServer();
const liveSockets = new Set();
const closedBytes = { all: 0, ws: 0 };
httpServer.on("connection", (sock) => {
  liveSockets.add(sock);
  sock.once("close", () => {
    liveSockets.delete(sock);
    closedBytes.all += sock.bytesWritten;
    if (sock.__isWs) closedBytes.ws += sock.bytesWritten;
  });
});
httpServer.on("upgrade", (_req, sock) => { sock.__isWs = true; });

function bytesWritten() {
  let all = closedBytes.all, ws = closedBytes.ws;
  for (const s of liveSockets) {
    const b = s.bytesWritten;   // includes bytes still queued in user space
    all += b;
    if (s.__isWs) ws += b;
  }
  return { all, ws };
}

function snapshot() {
  const b = bytesWritten();
  const mem = process.memoryUsage();
  return {
    pid: process.pid,
    time: Date.now() / 1000,
    uptime_s: (Date.now() - stats.started_at) / 1000,
    bytes_written: b.all,          // every socket: matchmaking HTTP + WebSocket
    ws_bytes_written: b.ws,        // upgraded (WebSocket) sockets only, incl. frame headers
    ...stats,
    rss_mib: +(mem.rss / 1048576).toFixed(1),
  };
}

function writeStats() {
  if (!args["stats-file"]) return;
  const f = args["stats-file"];
  writeFileSync(f + ".tmp", JSON.stringify(snapshot()) + "\n");
  renameSync(f + ".tmp", f);
}

// ---- boot ----
const gameServer = new Server({
  transport: new WebSocketTransport({ server: httpServer }),
  greet: false,
  gracefullyShutdown: false,   // handled below, so stats are written and exit is prompt
});
gameServer.define(roomName, game.room);

await gameServer.listen(Number(args.port), "127.0.0.1");
const port = httpServer.address().port;
await matchMaker.createRoom(roomName, {
  npcs, patchMode: args["patch-mode"], radius: Number(args.radius), cell: Number(args.cell),
  hysteresis: Number(args.hysteresis), dormant: args.dormant, checkInterest: args["check-interest"],
});
if (args["port-file"]) {
  writeFileSync(args["port-file"] + ".tmp", String(port));
  renameSync(args["port-file"] + ".tmp", args["port-file"]);
}
log(`listening on 127.0.0.1:${port} (node ${process.version}, pid ${process.pid})`);

let prev = snapshot();
const statsTimer = setInterval(() => {
  writeStats();
}, Number(args["stats-interval"]) * 1000);
const logTimer = setInterval(() => {
  const s = snapshot();
  const dt = s.time - prev.time;
  const dTicks = s.ticks - prev.ticks, dPatches = s.patches - prev.patches;
  log(`clients ${s.clients} ticks/s ${(dTicks / dt).toFixed(1)} patches/s ${(dPatches / dt).toFixed(1)} ` +
      `sim ${dTicks ? ((s.sim_ms_total - prev.sim_ms_total) / dTicks).toFixed(2) : "-"} ms ` +
      `patch ${dPatches ? ((s.patch_ms_total - prev.patch_ms_total) / dPatches).toFixed(2) : "-"} ms ` +
      `ws out ${((s.ws_bytes_written - prev.ws_bytes_written) / dt / 1024).toFixed(0)} KiB/s rss ${s.rss_mib} MiB` +
      (s.view_entities_mean === undefined ? "" :
        ` | interest ${dTicks ? ((s.interest_ms_total - prev.interest_ms_total) / dTicks).toFixed(2) : "-"} ms ` +
        `view ${s.view_entities_mean} entities, +${s.views_added - prev.views_added} -${s.views_removed - prev.views_removed}` +
        (s.interest_checks ? ` checks ${s.interest_checks} missing ${s.interest_missing} leaked ${s.interest_leaked}` : "")));
  prev = s;
}, 5000);

let stopping = false;
async function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  log(`${sig}: shutting down`);
  clearInterval(statsTimer);
  clearInterval(logTimer);
  writeStats();
  const hard = setTimeout(() => process.exit(0), 3000);
  hard.unref();
  try {
    await gameServer.gracefullyShutdown(false);
  } catch (e) {
    log("shutdown error:", e?.message ?? e);
  }
  process.exit(0);
}
process.once("SIGINT", () => shutdown("SIGINT"));
process.once("SIGTERM", () => shutdown("SIGTERM"));
