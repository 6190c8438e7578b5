// Page chrome shared by the demo pages: where the server is, the room and name from the URL,
// the connection status badge with its retry button, the net overlay, the lobby list.

/** ?room=, ?name=, ?server=, ?retries= from the page URL, with defaults. */
export function pageParams(defaultRoom) {
  const q = new URLSearchParams(location.search);
  const clean = (s, max) => Array.from((s ?? "").trim()).slice(0, max).join("");
  return {
    room: clean(q.get("room"), 64) || defaultRoom,
    name: clean(q.get("name"), 64) || `player-${Math.floor(Math.random() * 9000 + 1000)}`,
    server: q.get("server"),
    // failed attempts in a row before the page gives up and offers a Retry button
    retries: Math.max(1, Math.min(50, Number.parseInt(q.get("retries") ?? "", 10) || 8)),
  };
}

/**
 * The game's WebSocket URLs: ?server= if given, else what the HTTP side says (/api/server):
 * this server first, then the other live nodes of its cluster, which a page whose node has
 * gone reconnects through.
 */
export async function serverUrl(explicit) {
  if (explicit) return [explicit];
  const r = await fetch("/api/server", { cache: "no-store" });
  if (!r.ok) throw new Error(`/api/server answered ${r.status}`);
  return serverUrls(await r.json(), location);
}

/**
 * The URLs in an /api/server answer. Its `url` is null when the server does not know the
 * name it is reached by (it never builds one from a request's Host header alone): the page
 * then uses its own host, which only the user's address bar sets, with `scheme` and `port`.
 */
export function serverUrls(answer, here) {
  const own = answer.url ?? `${answer.scheme}://${here.hostname}:${answer.port}/`;
  const urls = Array.isArray(answer.urls) ? answer.urls : [];
  return [own, ...urls.filter((u) => u !== own)];
}

/** Keep the status badge (and its retry button) in step with the connection. */
export function bindStatus(conn, badge, retryButton) {
  conn.on("status", (s) => {
    badge.dataset.status = s.status;
    let text = s.status;
    if (s.status === "reconnecting" && s.delayMs !== undefined) {
      text = `reconnecting (attempt ${s.attempt}, in ${(s.delayMs / 1000).toFixed(1)} s)`;
    }
    if (s.status === "offline" && s.reason) text = `offline: ${s.reason}`;
    badge.textContent = text;
    badge.title = s.reason ?? "";
    retryButton.hidden = s.status !== "offline";
  });
  retryButton.addEventListener("click", () => conn.retry());
}

/** A room field and join button that reload the page on another room (same name). */
export function bindRoomForm(form, params) {
  const room = form.querySelector("[name=room]"), name = form.querySelector("[name=name]");
  room.value = params.room;
  name.value = params.name;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams(location.search);
    q.set("room", room.value.trim() || params.room);
    q.set("name", name.value.trim() || params.name);
    location.search = q.toString();
  });
}

/** Fill `list` with the server's rooms of `game` (from /rooms) every few seconds. */
export function pollLobby(list, game, current, everyMs = 3000) {
  const once = async () => {
    try {
      const r = await fetch("/rooms", { cache: "no-store" });
      if (!r.ok) return;
      const rooms = (await r.json()).filter((x) => x.game === game);
      list.replaceChildren(...rooms.map((x) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        const q = new URLSearchParams(location.search);
        q.set("room", x.room);
        a.href = `?${q}`;
        a.textContent = x.room;
        if (x.room === current) li.className = "current";
        li.append(a, ` ${x.clients} player${x.clients === 1 ? "" : "s"}`);
        return li;
      }));
    } catch { /* the lobby is a nicety: the server may be restarting */ }
  };
  once();
  return setInterval(once, everyMs);
}

const fmtBytes = (b) => (b >= 1024 ? `${(b / 1024).toFixed(1)} KB/s` : `${b} B/s`);

/** The net overlay's rows from the figures the page collects (`extra`: [label, value] rows first). */
export function renderOverlay(el, f, extra = []) {
  const rows = [
    ...extra,
    ["RTT", f.rtt === null ? "–" : `${f.rtt.toFixed(0)} ms`],
    ["snapshots", `${f.snapshotsPerS}/s`],
    ["down", fmtBytes(f.bytesDownPerS)],
    ["up", fmtBytes(f.bytesUpPerS)],
    ["prediction error", `${f.predictionError.toFixed(2)} u`],
    ["corrections", `${f.corrections}`],
    ["unacked inputs", `${f.unacked}`],
    ["interp buffer", `${f.interpMs.toFixed(0)} ms`], // snapshots held beyond what is drawn
    ["tick", `${f.tick}`],
  ];
  el.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("th"), b = document.createElement("td");
    a.textContent = k; b.textContent = v;
    tr.append(a, b);
    return tr;
  }));
}
