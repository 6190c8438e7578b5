"""Room chat for any game: messages checked for length and rate, typing indicators, names.

A game hands its ``on_join``/``on_leave``/``on_message`` to a ``Chat`` (see arena.py). Client
messages (the protocol's ``message``, sent reliably so the client sees delivery):

- ``{"chat": text, "ref": n}``: a line of chat; ``ref`` is the client's own number for it.
  Everyone in the room, the sender included, gets ``{"chat": {"id", "from", "name", "text",
  "ref"}}`` in room order. A refused line gets only its sender ``{"chat_rejected": {"ref",
  "why"}}`` (too long, empty, or over the rate); the sender shows it as failed.
- ``{"typing": bool}``: the others get ``{"typing": {"from", "on"}}`` (the sender does not).

Text is sent as the client typed it: clients must escape it when they display it.
"""

from __future__ import annotations

from typing import Any

from ..core.ratelimit import TokenBucket
from ..game import RoomAPI

MAX_CHAT = 280  # characters per line
LINES_PER_S, LINES_BURST = 2.0, 5.0
TYPING_PER_S, TYPING_BURST = 4.0, 8.0


class Chat:
    def __init__(self, room: RoomAPI, clock: Any) -> None:
        self.room = room
        self.clock = clock  # () -> seconds, for the rate limits
        self.names: dict[int, str] = {}
        self._lines: dict[int, TokenBucket] = {}
        self._typing: dict[int, TokenBucket] = {}
        self._next_id = 1

    def join(self, client_id: int, name: str) -> None:
        now = self.clock()
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
        self.room.broadcast({"chat": line})
