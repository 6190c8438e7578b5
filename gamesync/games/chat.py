"""Room chat for any game: messages checked for length and rate, typing indicators, names.

A game hands its ``on_join``/``on_leave``/``on_message`` to a ``Chat`` (see arena.py). Client
messages (the protocol's ``message``, sent reliably so the client sees delivery):

- ``{"chat": text, "ref": n}``: a line of chat; ``ref`` is the client's own number for it.
  Everyone in the room, the sender included, gets ``{"chat": {"id", "from", "name", "text",
  "ref"}}`` in room order. A refused line gets only its sender ``{"chat_rejected": {"ref",
  "why"}}`` (too long, empty, or over the rate); the sender shows it as failed.
- ``{"typing": bool}``: the others get ``{"typing": {"from", "on"}}`` (the sender does not).

The room keeps its last ``HISTORY_LINES`` lines: a client that joins gets them first, oldest
first, as ``{"chat_history": [{"id", "name", "text"}, ...]}`` (not sent when there are none;
a resumed seat does not get them again). ``kept()``/``restore()`` carry the history and the
next line id across the room's life: its game keeps them (``Game.keep_state``), so they
outlive an empty room closing, a server restart and a failover, and ids never restart.

Text is sent as the client typed it: clients must escape it when they display it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..core.ratelimit import TokenBucket
from ..game import RoomAPI

MAX_CHAT = 280  # characters per line
LINES_PER_S, LINES_BURST = 2.0, 5.0
TYPING_PER_S, TYPING_BURST = 4.0, 8.0
#: lines kept for clients that join later
HISTORY_LINES = 50


class Chat:
    def __init__(self, room: RoomAPI, clock: Any) -> None:
        self.room = room
        self.clock = clock  # () -> seconds, for the rate limits
        self.names: dict[int, str] = {}
        self._lines: dict[int, TokenBucket] = {}
        self._typing: dict[int, TokenBucket] = {}
        self._next_id = 1
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LINES)

    def join(self, client_id: int, name: str, welcome: bool = True) -> None:
        """A player arrives (``welcome``: send them the history; False for a seat restored
        from a save, whose client has it)."""
        now = self.clock()
        if welcome and self.history:
            self.room.send(client_id, {"chat_history": list(self.history)})
        self.names[client_id] = name
        self._lines[client_id] = TokenBucket(LINES_PER_S, LINES_BURST, now)
        self._typing[client_id] = TokenBucket(TYPING_PER_S, TYPING_BURST, now)

    def leave(self, client_id: int) -> None:
        self.names.pop(client_id, None)
        self._lines.pop(client_id, None)
        self._typing.pop(client_id, None)

    def handle(self, client_id: int, data: Any) -> bool:
        """Handle ``data`` if it is a chat or typing message; False when it is not one."""
        if not isinstance(data, dict) or client_id not in self.names:
            return False
        if "chat" in data:
            self._line(client_id, data.get("chat"), data.get("ref"))
            return True
        if "typing" in data:
            if isinstance(data["typing"], bool) and self._typing[client_id].take(1, self.clock()):
                self.room.broadcast({"typing": {"from": client_id, "on": data["typing"]}}, exclude=client_id)
            return True
        return False

    def _line(self, client_id: int, text: Any, ref: Any) -> None:
        ref = ref if type(ref) is int else None
        why = None
        if not isinstance(text, str) or not text.strip():
            why = "empty message"
        elif len(text) > MAX_CHAT:
            why = f"longer than {MAX_CHAT} characters"
        elif not self._lines[client_id].take(1, self.clock()):
            why = "too many messages; slow down"
        if why is not None:
            self.room.send(client_id, {"chat_rejected": {"ref": ref, "why": why}})
            return
        line = {"id": self._next_id, "from": client_id, "name": self.names[client_id], "text": text, "ref": ref}
        self._next_id += 1
        self.history.append({"id": line["id"], "name": line["name"], "text": text})
        self.room.broadcast({"chat": line})

    def kept(self) -> dict[str, Any]:
        """What outlives the room: the next line id and the history (msgpack values)."""
        return {"next_id": self._next_id, "lines": list(self.history)}

    def restore(self, data: Any) -> None:
        """Continue from ``kept()``'s output (from a room of an older run: checked, not trusted)."""
        if not isinstance(data, dict):
            return
        if type(data.get("next_id")) is int:
            self._next_id = max(self._next_id, data["next_id"])
        lines = data.get("lines")
        if isinstance(lines, list):
            self.history.clear()
            for ln in lines[-HISTORY_LINES:]:
                if (isinstance(ln, dict) and type(ln.get("id")) is int and isinstance(ln.get("name"), str)
                        and isinstance(ln.get("text"), str)):
                    self.history.append({"id": ln["id"], "name": ln["name"], "text": ln["text"]})
