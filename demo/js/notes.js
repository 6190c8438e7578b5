// The shared notes pad page (notes.html): one plain-text document per room, edited by everyone
// in it at once, over the game `notes` (docs/games.md, "notes").
//
// Wiring only: the Connection (connection.js) carries messages, OTClient (ot.js) keeps the
// edits in order, Pad (pad.js) is the textarea, CursorOverlay (cursors.js) draws the others'
// carets. Edits go as reliable messages {op, v, ref}; the author's own op coming back is
// its acknowledgement. The document comes as {doc} on every fresh join. After a resumed
// seat, or versions missed, the page asks for the document again: the server has no such
// request, but it answers an edit it cannot take with the current document, so the page
// sends a deliberately empty one (ref 0) and rebases its pending edits on the answer.
//
// URL: ?room=NAME&name=NAME&server=ws://host:port/ (all optional).

import { Connection, Status } from "./connection.js";
import { CursorOverlay, hue } from "./cursors.js";
import { OTClient, OTError, diff, utf16Index } from "./ot.js";
import { Pad } from "./pad.js";
import { serverUrl } from "./ui.js";

const CURSOR_EVERY_MS = 100; // cursor updates sent at most this often
const EDIT_ACK_MS = 8000; // sendReliable timeout (the echo is the real acknowledgement)

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const room = (params.get("room") || "notes").slice(0, 64);
const name = (params.get("name") || `writer-${Math.floor(100 + Math.random() * 900)}`).slice(0, 32);

const client = new OTClient();
const roster = new Map(); // client id -> name (the others)
let conn = null;
let ready = false; // the document has arrived (else the pad is read-only)
let resyncing = false; // asked for the document again; edits and ops wait for it
let held = []; // notes events waiting for an IME composition to end
let cursorTimer = null;
let lastCursor = "";

const pad = new Pad($("pad"), { onEdit: localEdit, onSelect: scheduleCursor, onIdle: drainHeld });
const overlay = new CursorOverlay($("pad"));
pad.readOnly = true;

// ---- the page around the pad ---------------------------------------------------------------------

function showStatus({ status, attempt, delayMs, reason }) {
  const el = $("status");
  el.className = `status ${status}`;
  const text = {
    [Status.CONNECTING]: "connecting…",
    [Status.CONNECTED]: "connected",
    [Status.RECONNECTING]: `reconnecting (attempt ${attempt}${delayMs ? `, in ${(delayMs / 1000).toFixed(1)} s` : ""})…`,
    [Status.OFFLINE]: `offline${reason ? `: ${reason}` : ""}`,
  }[status];
  el.textContent = text;
  $("retry").hidden = status !== Status.OFFLINE;
  showSync();
}

function showSync() {
  const el = $("sync");
  if (!ready) el.textContent = "waiting for the document…";
  else if (resyncing) el.textContent = "fetching the document again…";
  else if (client.state === "synchronized") el.textContent = `saved · version ${client.v}`;
  else el.textContent = conn?.status === Status.CONNECTED ? "sending…" : "not sent yet (offline)";
  el.dataset.state = ready && !resyncing ? client.state : "waiting";
}

function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = !text;
}

function showPeople() {
  const ul = $("people");
  const items = [[conn?.clientId ?? 0, `${name} (you)`], ...roster];
  ul.replaceChildren(...items.map(([id, who]) => {
    const li = document.createElement("li");
    li.style.setProperty("--hue", hue(id));
    li.textContent = who;
    return li;
  }));
  $("count").textContent = String(items.length);
}

function drawCursors() {
  const m = conn?.mirror;
  const cursors = [];
  if (m && m.latest && ready) {
    const text = pad.value;
    for (const id of m.ids()) {
      const e = m.entity(id);
      const owner = e.q.owner;
      if (owner === conn.clientId || !roster.has(owner)) continue;
      cursors.push({
        id: owner, name: roster.get(owner),
        anchor: utf16Index(text, client.localIndex(e.q.anchor)), head: utf16Index(text, client.localIndex(e.q.head)),
      });
    }
  }
  overlay.render(pad.value, cursors);
}

// ---- edits -------------------------------------------------------------------------------------------

function send(msg) {
  if (msg) conn.sendReliable(msg, EDIT_ACK_MS); // a lost one is found on the next welcome
}

function editable() {
  pad.readOnly = !ready || resyncing;
}

function localEdit(op, after) {
  if (!ready || resyncing) { pad.setText(client.text); return; } // read-only anyway; undo what slipped through
  send(client.local(op, after));
  lastCursor = ""; // positions moved
  showSync();
  drawCursors();
  scheduleCursor();
}

/** The pad shows `client.text`; a browser normalising line breaks makes that an edit of its own. */
function settle() {
  if (pad.value !== client.text) send(client.local(diff(client.text, pad.value), pad.value));
}

function resync() {
  resyncing = true;
  editable();
  showSync();
  conn.send({ sync: true }); // the server answers with {"doc"} (docs/games.md)
}

function fresh({ text, v }) {
  const { send: msg, dropped } = client.rebase(text, v);
  pad.setText(client.text);
  ready = true;
  resyncing = false;
  editable();
  send(msg);
  settle();
  if (dropped) notice("Your latest changes could not be merged after the reconnect and were dropped.");
}

function onNotesEvent(data) {
  if (pad.composing) { held.push(data); return; }
  if ("doc" in data) {
    fresh(data.doc);
  } else if ("op" in data) {
    if (!ready || resyncing) return; // the document on its way has it
    let res;
    try {
      res = client.remote(data.op, conn.clientId);
    } catch (err) { // an edit that does not fit: never expected, but start again rather than stop
      if (!(err instanceof OTError)) throw err;
      console.warn("notes: resync after", err);
      res = { gap: true };
    }
    if (res.gap) { resync(); return; }
    if (res.apply) { pad.applyRemote(res.apply, client.text); settle(); lastCursor = ""; }
    send(res.send);
  } else if ("sync_rejected" in data) {
    if (resyncing) setTimeout(() => { if (resyncing) resync(); }, 1000); // asked too often: once more, later
  } else if ("op_rejected" in data) {
    const { ref, why, doc } = data.op_rejected;
    if (ref === client.inflightRef) {
      client.reset(doc.text, doc.v);
      pad.setText(client.text);
      settle();
      notice(`The server refused an edit (${why}); the pad now shows the current document.`);
    }
  } else {
    return;
  }
  showSync();
  drawCursors();
}

function drainHeld() {
  const todo = held;
  held = [];
  for (const data of todo) onNotesEvent(data);
}

// ---- cursors -------------------------------------------------------------------------------------------

function scheduleCursor() {
  if (cursorTimer !== null) return;
  cursorTimer = setTimeout(() => {
    cursorTimer = null;
    if (!ready || resyncing || conn?.status !== Status.CONNECTED) return;
    // local positions are the server's only with no edit pending (the server moves our
    // cursor through our edits itself); until then, try again later
    if (client.state !== "synchronized") { scheduleCursor(); return; }
    const c = pad.selection();
    const key = c.join(",");
    if (key === lastCursor) return;
    lastCursor = key;
    conn.send({ cursor: c });
  }, CURSOR_EVERY_MS);
}

// ---- start ---------------------------------------------------------------------------------------------

async function main() {
  $("room-field").value = room;
  $("name-field").value = name;
  if (params.get("server")) $("server-field").value = params.get("server");
  else $("server-field").remove();
  $("room-name").textContent = room;
  document.title = `${room} · gamesync notes`;
  showPeople();
  let url;
  try {
    url = await serverUrl(params.get("server"));
  } catch (err) {
    showStatus({ status: Status.OFFLINE, reason: `no server address (${err.message})` });
    $("retry").hidden = true;
    return;
  }
  conn = new Connection(url, room, name, { game: "notes" });
  conn.on("status", (s) => {
    showStatus(s);
    if (s.status !== Status.CONNECTED) lastCursor = ""; // typing on while offline is kept and sent later
  });
  conn.on("welcome", (w) => {
    roster.clear(); // the roster comes again with the first snapshot
    lastCursor = "";
    notice("");
    if (w.resumed) {
      resync(); // events for this seat while the connection was down are lost
    } else { // a fresh seat: {doc} is on its way
      ready = false;
      resyncing = false;
      editable();
    }
    showPeople();
  });
  conn.on("joined", ({ clientId, name: who }) => { roster.set(clientId, who); showPeople(); });
  conn.on("left", ({ clientId }) => { roster.delete(clientId); showPeople(); drawCursors(); });
  conn.on("event", (data) => { if (data && typeof data === "object") onNotesEvent(data); });
  conn.on("snapshot", () => drawCursors());
  conn.on("error", ({ code, reason }) => notice(`The server said: ${code}${reason ? ` (${reason})` : ""}`));
  $("retry").addEventListener("click", () => conn.retry());
  window.notesPad = { client, pad, conn, roster }; // for the console and tests/demo/test_notes_browser.py
  conn.start();
}

main();
