// The big-world page (game `bigworld`, a view room: docs/protocol.md section 18): the arena's
// rules on a world too big to send whole. The server sends each client only the cells near its
// player; this page draws them with a camera that follows the player, a minimap of the whole
// world with the cells it receives, and the net overlay with what is in view. The connection,
// prediction, interpolation, drawing, chat and chrome are the arena page's modules.

import { Connection } from "./connection.js";
import { Predictor } from "./prediction.js";
import { Interpolator } from "./interpolation.js";
import { draw, drawMinimap } from "./render.js";
import { ChatPanel } from "./chat.js";
import { bindRoomForm, bindStatus, pageParams, pollLobby, renderOverlay, serverUrl } from "./ui.js";
import { Steering } from "./steering.js";
import { KIND_PLAYER, liveColumns, playerIn } from "./world.js";

const GAME = "bigworld";
const SPEED = 200; // a player's units per second, as the arena's rules move it

/** The movement rules of the world a schema describes (its x field spans the square). */
export function rulesOf(schema) {
  const x = schema.find((f) => f.name === "x");
  return { size: x.hi - x.lo, speed: SPEED, grid: x.step };
}

/** The largest distance from (x, y) to an entity of `world` (liveColumns' result), 0 if none. */
export function farthestFrom(world, x, y) {
  let d = 0;
  for (let i = 0; i < world.ids.length; i++) d = Math.max(d, Math.hypot(world.x[i] - x, world.y[i] - y));
  return d;
}

async function main() {
  const params = pageParams("big");
  const $ = (sel) => document.querySelector(sel);
  bindRoomForm($("#room-form"), params);
  $("#room-name").textContent = params.room;
  pollLobby($("#lobby"), GAME, params.room);

  const url = await serverUrl(params.server);
  const conn = new Connection(url, params.room, params.name, { game: GAME, maxAttempts: params.retries });
  const names = new Map(); // client id -> name
  const chat = new ChatPanel($("#chat"), conn, names);
  let predictor = null, interp = null, me = null; // me: our entity id
  let rules = null, grid = null; // the world's size and grid, from the welcome
  let lastWorld = null, players = 0;
  let farthest = 0, farthestNow = 0; // entity farthest from our player: ever, and in the newest state
  let rosterComing = true;
  const steering = new Steering(conn, () => predictor);

  bindStatus(conn, $("#status"), $("#retry"));

  conn.on("welcome", (w) => {
    rosterComing = true;
    if (!w.view) chat.notice(`room ${w.room} runs ${w.game} without interest management: everything is sent`);
    rules = rulesOf(conn.mirror.schema);
    grid = conn.mirror.grid ?? null;
    if (!w.resumed || !predictor) {
      me = null;
      names.clear();
      predictor = new Predictor(w.tickRate, rules);
      chat.notice(`joined ${w.room} as ${params.name}`);
    } else {
      chat.notice("reconnected: same seat");
    }
    names.set(w.clientId, params.name);
    interp = new Interpolator(w.tickRate);
    steering.start(w.tickRate);
  });
  conn.on("status", (s) => {
    if (s.status === "reconnecting" && s.attempt === 1 && s.delayMs !== undefined) chat.notice("connection lost; reconnecting…");
  });
  conn.on("joined", (j) => {
    const known = names.has(j.clientId);
    names.set(j.clientId, j.name);
    if (!known && !rosterComing) chat.notice(`${j.name} joined`);
  });
  conn.on("left", (l) => {
    chat.notice(`${names.get(l.clientId) ?? `player ${l.clientId}`} left`);
    names.delete(l.clientId);
    chat.left(l.clientId);
  });
  conn.on("event", (d) => {
    if (d === null || typeof d !== "object") return;
    if (typeof d.you === "number") { me = d.you; predictor?.reset(); }
    if (d.chat_history) chat.history(d.chat_history);
    if (d.chat) chat.line(d.chat);
    if (d.chat_rejected) chat.rejected(d.chat_rejected);
    if (d.typing) chat.typing(d.typing);
  });
  conn.on("snapshot", ({ state, tick, inputAck, mirror }) => {
    rosterComing = false;
    const world = liveColumns(mirror.schema, state);
    lastWorld = world;
    interp.push(tick, world.ids, world, performance.now());
    players = 0;
    for (let i = 0; i < world.ids.length; i++) if (world.kind[i] === KIND_PLAYER) players++;
    const own = me !== null ? mirror.entity(me) : null;
    if (own) {
      predictor.reconcile(own.v.x, own.v.y, inputAck);
      farthestNow = farthestFrom(world, own.v.x, own.v.y);
      farthest = Math.max(farthest, farthestNow);
    }
  });

  // drawing, every animation frame: the camera on our (predicted) player
  const canvas = $("#world"), minimap = $("#minimap");
  let lastFrame = performance.now();
  const frame = () => {
    const now = performance.now();
    const world = interp ? interp.sample(now) : null;
    let mine = null;
    if (predictor && predictor.x !== null) {
      const [x, y] = predictor.drawn(now - lastFrame);
      mine = { entity: me, x, y, heading: steering.heading, name: params.name, clientId: conn.clientId };
    }
    lastFrame = now;
    if (rules) {
      const radius = grid?.radius ?? 500, cell = grid?.cell ?? 250;
      const camera = mine ? { x: mine.x, y: mine.y, span: 2 * (radius + cell * Math.SQRT2), grid: cell, radius } : null;
      draw(canvas, world, mine, names, rules.size, camera);
      const others = [];
      if (world) {
        for (let i = 0; i < world.ids.length; i++) {
          if (world.kind[i] === KIND_PLAYER && world.ids[i] !== me) others.push({ x: world.x[i], y: world.y[i], owner: world.owner[i] });
        }
      }
      const cells = conn.mirror?.watched ? conn.mirror.watched() : [];
      drawMinimap(minimap, { size: rules.size, grid, cells, me: mine, radius, others });
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  setInterval(() => {
    const s = conn.stats(), m = conn.mirror;
    const cells = m?.watched ? m.watched() : [];
    const gridCells = grid ? cells.filter((c) => c < grid.count).length : 0;
    renderOverlay($("#overlay"), {
      ...s, predictionError: predictor?.error ?? 0, corrections: predictor?.corrections ?? 0,
      interpMs: interp ? interp.lagMs(performance.now()) : 0,
    }, [
      ["in view", `${lastWorld ? lastWorld.ids.length : 0} entities`],
      ["cells", `${gridCells} of ${grid ? grid.count : "–"}`],
      ["farthest", `${farthestNow.toFixed(0)} u`],
    ]);
    $("#players").textContent = `${players} player${players === 1 ? "" : "s"} in view`;
  }, 250);

  // for tests and the curious: the page's state, read-only
  window.demo = {
    conn, names,
    get interp() { return interp; },
    get me() { return me; },
    get predictor() { return predictor; },
    get players() { return players; },
    get grid() { return grid; },
    /** The largest distance from our player to an entity held, over every snapshot so far. */
    get farthest() { return farthest; },
    /** Own entity as the server last sent it, or null. */
    serverSelf() { const e = me !== null && conn.mirror ? conn.mirror.entity(me) : null; return e && e.v; },
    /** A player's entity by client id, as the server last sent it (or null: not in view). */
    playerOf(clientId) { return playerIn(lastWorld, clientId); },
    /** Every entity held, as the server last sent it: [[id, x, y], ...]. */
    entities() { return lastWorld ? lastWorld.ids.map((id, i) => [id, lastWorld.x[i], lastWorld.y[i]]) : []; },
    /** The cells this client receives, ascending. */
    cells() { return conn.mirror?.watched ? conn.mirror.watched() : []; },
  };
  conn.start();
}

if (typeof document !== "undefined") {
  main().catch((e) => {
    const s = document.querySelector("#status");
    s.dataset.status = "offline";
    s.textContent = `offline: ${e.message}`;
    document.querySelector("#retry").hidden = false;
    document.querySelector("#retry").onclick = () => location.reload();
    throw e;
  });
}
