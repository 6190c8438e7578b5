// Other people's carets and selections over the notes pad's textarea, each with its owner's
// name. An overlay laid exactly over the textarea's text box holds an invisible copy of the
// text (same font, padding, wrapping and scroll), with each selection as a tinted span and
// each caret as a coloured bar and a name label at its place. Names go in as textContent.

const ZWSP = "\u200b"; // keeps a trailing line break from collapsing

/** A colour for client `id`: a hue spread by the golden angle. */
export function hue(id) {
  return Math.round((id * 137.508) % 360);
}

export class CursorOverlay {
  /** @param textarea the pad; the overlay goes into its parent (which should be position: relative) */
  constructor(textarea) {
    this.ta = textarea;
    this.el = document.createElement("div");
    this.el.className = "cursor-overlay";
    this.el.setAttribute("aria-hidden", "true");
    textarea.after(this.el);
    this._key = "";
    textarea.addEventListener("scroll", () => this._scroll());
    new ResizeObserver(() => this._fit()).observe(textarea);
    this._fit();
  }

  /**
   * Draw `cursors` ([{id, name, anchor, head}], UTF-16 positions in `text`, the textarea's
   * current value). Does nothing when neither changed.
   */
  render(text, cursors) {
    const key = JSON.stringify(cursors);
    if (key === this._key && text === this._text) return;
    this._key = key;
    this._text = text;
    const n = text.length;
    const cs = cursors.map((c) => {
      const a = Math.min(Math.max(c.anchor, 0), n), h = Math.min(Math.max(c.head, 0), n);
      return { ...c, from: Math.min(a, h), to: Math.max(a, h), head: h };
    });
    const points = [...new Set([0, n, ...cs.flatMap((c) => [c.from, c.to])])].sort((x, y) => x - y);
    const frag = document.createDocumentFragment();
    points.forEach((p, i) => {
      for (const c of cs) if (c.head === p) frag.append(this._caret(c));
      const next = points[i + 1];
      if (next === undefined || next === p) return;
      const piece = text.slice(p, next);
      const over = cs.find((c) => c.from <= p && next <= c.to && c.from < c.to);
      if (!over) { frag.append(piece); return; }
      const span = document.createElement("span");
      span.className = "remote-selection";
      span.style.setProperty("--hue", hue(over.id));
      span.textContent = piece;
      frag.append(span);
    });
    frag.append(ZWSP);
    this.el.replaceChildren(frag);
    this._scroll();
  }

  _caret(c) {
    const caret = document.createElement("span");
    caret.className = "remote-caret";
    caret.dataset.client = String(c.id);
    caret.style.setProperty("--hue", hue(c.id));
    const bar = document.createElement("span");
    bar.className = "bar";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = c.name;
    caret.append(bar, label);
    return caret;
  }

  _fit() {
    const ta = this.ta, s = this.el.style;
    s.left = `${ta.offsetLeft + ta.clientLeft}px`;
    s.top = `${ta.offsetTop + ta.clientTop}px`;
    s.width = `${ta.clientWidth}px`;
    s.height = `${ta.clientHeight}px`;
    this._scroll();
  }

  _scroll() {
    this.el.scrollTop = this.ta.scrollTop;
    this.el.scrollLeft = this.ta.scrollLeft;
  }
}
