// The notes pad's textarea: each local change as one operation, remote operations written into
// it with the caret and selection kept in place. Positions outside are code points (ot.js);
// the textarea counts UTF-16 units, converted here.
//
// Every `input` event is diffed against the text the pad last knew (common prefix and suffix,
// bounded by the caret), so typing, paste, cut, drag and drop, delete and autocorrect all
// become operations the same way. While an IME composition runs, nothing is diffed and
// nothing is written into the textarea (that would break the composition): the change
// arrives in one piece at compositionend, and `onIdle` tells the page to go on.

import { cpIndex, diff, transformIndex, utf16Index } from "./ot.js";

export class Pad {
  /**
   * @param textarea the element
   * @param onEdit   fn(op, after): the user changed the text (`after`, from the previous text)
   * @param onSelect fn(): the caret or selection may have moved
   * @param onIdle   fn(): a composition ended; held remote changes can go in now
   */
  constructor(textarea, { onEdit, onSelect = () => {}, onIdle = () => {} }) {
    this.ta = textarea;
    this.value = textarea.value; // the text as this pad last knew it
    this.composing = false;
    this.onEdit = onEdit;
    textarea.addEventListener("input", (e) => { if (!this.composing && !e.isComposing) this._changed(); });
    textarea.addEventListener("compositionstart", () => { this.composing = true; });
    textarea.addEventListener("compositionend", () => {
      this.composing = false;
      this._changed();
      onIdle();
    });
    for (const type of ["select", "keyup", "mouseup", "focus"]) textarea.addEventListener(type, () => onSelect());
    document.addEventListener("selectionchange", () => { if (document.activeElement === textarea) onSelect(); });
  }

  /** The selection in code points: [anchor, head] (anchor == head: a caret). */
  selection() {
    const { value, selectionStart, selectionEnd, selectionDirection } = this.ta;
    const start = cpIndex(value, selectionStart), end = cpIndex(value, selectionEnd);
    return selectionDirection === "backward" ? [end, start] : [start, end];
  }

  /** Replace the whole text (a fresh document), keeping the selection where it still fits. */
  setText(text) {
    const [a, h] = this.selection();
    this._write(text, a, h);
  }

  /** Apply a remote operation to the text; the selection moves with the text around it. */
  applyRemote(op, text) {
    const [a, h] = this.selection();
    this._write(text, transformIndex(op, a), transformIndex(op, h));
  }

  set readOnly(on) { this.ta.readOnly = on; }

  _write(text, anchor, head) {
    const ta = this.ta;
    const focused = document.activeElement === ta;
    const top = ta.scrollTop;
    ta.value = text;
    this.value = ta.value; // the browser may normalise line breaks: the page checks `value`
    const a = utf16Index(this.value, anchor), h = utf16Index(this.value, head);
    if (focused || a || h) ta.setSelectionRange(Math.min(a, h), Math.max(a, h), h < a ? "backward" : "forward");
    ta.scrollTop = top;
  }

  _changed() {
    const before = this.value, after = this.ta.value;
    if (before === after) return;
    this.value = after;
    const caret = cpIndex(after, this.ta.selectionEnd);
    this.onEdit(diff(before, after, caret), after);
  }
}
