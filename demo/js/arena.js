// The arena page: joins a room, predicts the own player, interpolates everyone else, draws,
// chats, and shows the connection and the net figures. The pieces live in their own modules;
// this one wires them together.

import { dequantise } from "./codec.js";
import { Connection } from "./connection.js";
import { Predictor, ARENA } from "./prediction.js";
import { Interpolator } from "./interpolation.js";
import { draw } from "./render.js";
import { ChatPanel } from "./chat.js";
import { bindRoomForm, bindStatus, pageParams, pollLobby, renderOverlay, serverUrl } from "./ui.js";

const KIND_PLAYER = 1;
const KEYS = {
  KeyW: [0, -1], ArrowUp: [0, -1], KeyS: [0, 1], ArrowDown: [0, 1],
  KeyA: [-1, 0], ArrowLeft: [-1, 0], KeyD: [1, 0], ArrowRight: [1, 0],
};

/** Live entities of a state as game values: {ids, x, y, heading, kind, owner}. */
function liveColumns(schema, st) {
  const want = ["x", "y", "heading", "kind", "owner"];
  const at = Object.fromEntries(want.map((n) => [n, schema.findIndex((f) => f.name === n)]));
  let live = 0;
  for (let s = 0; s < st.n; s++) live += st.alive[s];
  const out = { ids: new Array(live) };
  for (const n of want) out[n] = new Float64Array(live);
  let i = 0;
  for (let s = 0; s < st.n; s++) {
    if (!st.alive[s]) continue;
    out.ids[i] = st.ids[s];
    for (const n of want) if (at[n] >= 0) out[n][i] = dequantise(schema[at[n]], st.cols[at[n]][s]);
    i++;
  }
  return out;
}

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
  const held = new Set(); // keys down

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

  // input: one per tick while a direction is held (the server moves a player per input)
  const keydown = (e) => {
    if (!(e.code in KEYS) || e.target.closest("input, textarea")) return;
    e.preventDefault();
    held.add(e.code);
  };
  window.addEventListener("keydown", keydown);
  window.addEventListener("keyup", (e) => held.delete(e.code));
  window.addEventListener("blur", () => held.clear());
  let heading = 0;
  const sendInput = () => {
    let dx = 0, dy = 0;
    for (const k of held) { dx += KEYS[k][0]; dy += KEYS[k][1]; }
    dx = Math.sign(dx); dy = Math.sign(dy);
    if (dx === 0 && dy === 0) return;
    heading = Math.atan2(dy, dx);
    const seq = conn.sendInput([dx, dy]);
    if (seq !== null && predictor) predictor.input(seq, dx, dy);
  };
  let inputTimer = null;
  conn.on("welcome", (w) => {
    clearInterval(inputTimer);
    inputTimer = setInterval(sendInput, 1000 / w.tickRate);
  });

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
      mine = { entity: me, x, y, heading, name: params.name, clientId: conn.clientId };
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
    playerOf(clientId) {
      const w = lastWorld;
      if (!w) return null;
      for (let i = 0; i < w.ids.length; i++) {
        if (w.kind[i] === KIND_PLAYER && w.owner[i] === clientId) return { id: w.ids[i], x: w.x[i], y: w.y[i] };
      }
      return null;
    },
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
