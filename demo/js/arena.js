// The arena page: joins a room, predicts the own player, interpolates everyone else, draws,
// chats, and shows the connection and the net figures. The pieces live in their own modules;
// this one wires them together.

import { Connection } from "./connection.js";
import { Predictor, ARENA } from "./prediction.js";
import { Interpolator } from "./interpolation.js";
import { draw } from "./render.js";
import { ChatPanel } from "./chat.js";
import { bindRoomForm, bindStatus, pageParams, pollLobby, renderOverlay, serverUrl } from "./ui.js";
import { Steering } from "./steering.js";
import { KIND_PLAYER, liveColumns, playerIn } from "./world.js";

async function main() {
  const params = pageParams("arena");
  const $ = (sel) => document.querySelector(sel);
  bindRoomForm($("#room-form"), params);
  $("#room-name").textContent = params.room;
  pollLobby($("#lobby"), "arena", params.room);
  const notesLink = $("#notes-link");
  notesLink.href = `notes.html?${new URLSearchParams({ room: `${params.room}-notes`, name: params.name })}`;

  const url = await serverUrl(params.server);
  const conn = new Connection(url, params.room, params.name, { game: "arena", maxAttempts: params.retries });
  const names = new Map(); // client id -> name
  const chat = new ChatPanel($("#chat"), conn, names);
  let predictor = null, interp = null, me = null; // me: our entity id
  let lastWorld = null, players = 0;
  let rosterComing = true; // the first snapshot after a welcome lists who is already here: no notices
  const steering = new Steering(conn, () => predictor);

  bindStatus(conn, $("#status"), $("#retry"));

  conn.on("welcome", (w) => {
    rosterComing = true;
    if (!w.resumed || !predictor) { // a fresh seat: new id, new entity, nothing to keep
      me = null;
      names.clear();
      predictor = new Predictor(w.tickRate);
      chat.notice(`joined ${w.room} as ${params.name}`);
    } else {
      chat.notice("reconnected: same seat");
    }
    names.set(w.clientId, params.name);
    interp = new Interpolator(w.tickRate);
  });
  conn.on("status", (s) => {
    // once per outage: attempt 1 is reported when it is scheduled (with its delay) and again when it starts
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
    if (me !== null) {
      const e = mirror.entity(me);
      if (e) predictor.reconcile(e.v.x, e.v.y, inputAck);
    }
  });

  conn.on("welcome", (w) => steering.start(w.tickRate)); // one input per tick while a direction is held

  // drawing, every animation frame
  const canvas = $("#arena");
  let lastFrame = performance.now();
  let drawn = null; // where the last frame put the world on the canvas
  const frame = () => {
    const now = performance.now();
    const world = interp ? interp.sample(now) : null;
    let mine = null;
    if (predictor && predictor.x !== null) {
      const [x, y] = predictor.drawn(now - lastFrame);
      mine = { entity: me, x, y, heading: steering.heading, name: params.name, clientId: conn.clientId };
    }
    lastFrame = now;
    drawn = draw(canvas, world, mine, names, ARENA.size);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  setInterval(() => {
    const s = conn.stats();
    renderOverlay($("#overlay"), {
      ...s, predictionError: predictor?.error ?? 0, corrections: predictor?.corrections ?? 0,
      interpMs: interp ? interp.lagMs(performance.now()) : 0,
    });
    $("#players").textContent = `${players} player${players === 1 ? "" : "s"}`;
  }, 250);

  // for tests and the curious: the page's state, read-only
  window.demo = {
    conn, names,
    get interp() { return interp; },
    get me() { return me; },
    get predictor() { return predictor; },
    get players() { return players; },
    /** The world's square on the canvas in the last frame: {left, top, side}, CSS pixels. */
    get drawn() { return drawn; },
    /** Own entity as the server last sent it, or null. */
    serverSelf() { const e = me !== null && conn.mirror ? conn.mirror.entity(me) : null; return e && e.v; },
    /** A player's entity by client id, as the server last sent it (or null). */
    playerOf(clientId) { return playerIn(lastWorld, clientId); },
  };
  conn.start();
}

main().catch((e) => {
  const s = document.querySelector("#status");
  s.dataset.status = "offline";
  s.textContent = `offline: ${e.message}`;
  document.querySelector("#retry").hidden = false;
  document.querySelector("#retry").onclick = () => location.reload();
  throw e;
});
