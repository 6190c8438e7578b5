// The room chat panel (docs/games.md, "Room chat"): lines with delivery state, typing
// indicators, join/leave notices. Every user-provided string goes in as textContent, never
// as HTML, so a line like "<img onerror=...>" shows as typed.

const TYPING_IDLE_MS = 3000; // stop "typing" after this long without a keystroke
const TYPING_REPEAT_MS = 2000; // re-announce while typing on (the indicator expires)
const TYPING_SHOW_MS = 5000; // hide someone's indicator after this long without news
const ACK_TIMEOUT_MS = 5000;
const MAX_LINES = 200;

export class ChatPanel {
  /**
   * @param root  element holding .chat-log, .chat-typing and a form with an input
   * @param conn  the Connection
   * @param names Map client id -> name (kept by the page)
   */
  constructor(root, conn, names) {
    this.conn = conn;
    this.names = names;
    this.log = root.querySelector(".chat-log");
    this.typingEl = root.querySelector(".chat-typing");
    this.form = root.querySelector("form");
    this.input = this.form.querySelector("input");
    this.nextRef = 1;
    this.mine = new Map(); // ref -> {el, text, state}
    this.typers = new Map(); // client id -> expiry (ms)
    this.seen = new Set(); // ids of the lines shown (a rejoin's history repeats them)
    this._typingOn = false;
    this._typingSent = 0;
    this._idleTimer = null;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.input.addEventListener("input", () => this._typed());
    setInterval(() => this._renderTypers(), 500);
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    this._stopTyping();
    this.send(text);
  }

  /** Post a line: shown at once as pending; delivered or failed as the server answers. */
  send(text, ref = this.nextRef++) {
    let entry = this.mine.get(ref);
    if (!entry) {
      entry = { text, state: "pending", el: this._line({ name: this.names.get(this.conn.clientId) ?? "me", text }, "mine") };
      entry.el.dataset.ref = String(ref);
      this.mine.set(ref, entry);
    }
    this._state(ref, "pending");
    this.conn.sendReliable({ chat: text, ref }, ACK_TIMEOUT_MS).then((acked) => {
      const e = this.mine.get(ref);
      if (!e) return;
      if (acked && e.state === "pending") this._state(ref, "delivered");
      else if (!acked && e.state !== "delivered") this._state(ref, "failed", "no answer from the server");
    });
  }

  /** A `chat_history` event: the room's last lines, sent once as we join; older lines go
   * first, before any line already shown, and a line already shown (a rejoin) is skipped. */
  history(lines) {
    if (!Array.isArray(lines)) return;
    const first = this.log.firstElementChild;
    for (const c of lines) {
      if (this.seen.has(c.id)) continue;
      this.seen.add(c.id);
      const el = this._line(c, "past");
      if (first) this.log.insertBefore(el, first);
    }
  }

  /** A `chat` event: a line posted to the room (maybe our own, coming back). */
  line(c) {
    this.seen.add(c.id);
    if (c.from === this.conn.clientId && this.mine.has(c.ref)) {
      this._state(c.ref, "delivered"); // posted to the room, even if its ack timed out
      return;
    }
    this._line(c, "");
    this.typers.delete(c.from);
    this._renderTypers();
  }

  rejected(r) {
    if (this.mine.has(r.ref)) this._state(r.ref, "failed", r.why);
  }

  typing(t) {
    if (t.on) this.typers.set(t.from, performance.now() + TYPING_SHOW_MS);
    else this.typers.delete(t.from);
    this._renderTypers();
  }

  notice(text) {
    const el = document.createElement("li");
    el.className = "notice";
    el.textContent = text;
    this._append(el);
  }

  left(clientId) {
    this.typers.delete(clientId);
    this._renderTypers();
  }

  // ---- DOM ---------------------------------------------------------------------------------

  _line(c, cls) {
    const el = document.createElement("li");
    el.className = `line ${cls}`;
    const who = document.createElement("b");
    who.textContent = c.name;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = c.text;
    const state = document.createElement("small");
    state.className = "state";
    el.append(who, ": ", text, " ", state);
    this._append(el);
    return el;
  }

  _append(el) {
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    this.log.append(el);
    while (this.log.children.length > MAX_LINES) {
      const gone = this.log.firstElementChild;
      if (gone.dataset.ref) this.mine.delete(Number(gone.dataset.ref)); // no retry for a line not shown
      gone.remove();
    }
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  _state(ref, state, why = "") {
    const e = this.mine.get(ref);
    e.state = state;
    e.el.dataset.state = state;
    const s = e.el.querySelector(".state");
    s.textContent = state === "failed" ? `failed${why ? ` (${why})` : ""} ` : state;
    if (state === "failed") {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "retry";
      b.textContent = "retry";
      b.addEventListener("click", () => this.send(e.text, ref));
      s.append(b);
    }
  }

  _typed() {
    const now = performance.now();
    if (!this.input.value) { this._stopTyping(); return; }
    if (!this._typingOn || now - this._typingSent > TYPING_REPEAT_MS) {
      this._typingOn = this.conn.send({ typing: true });
      this._typingSent = now;
    }
    clearTimeout(this._idleTimer);
    this._idleTimer = setTimeout(() => this._stopTyping(), TYPING_IDLE_MS);
  }

  _stopTyping() {
    clearTimeout(this._idleTimer);
    if (this._typingOn) this.conn.send({ typing: false });
    this._typingOn = false;
  }

  _renderTypers() {
    const now = performance.now();
    for (const [id, until] of this.typers) if (until < now) this.typers.delete(id);
    const who = [...this.typers.keys()].map((id) => this.names.get(id) ?? `player ${id}`);
    this.typingEl.textContent = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…`
      : `${who.slice(0, -1).join(", ")} and ${who[who.length - 1]} are typing…`;
  }
}
