"""A shared notes pad: several clients edit one plain-text document in real time.

The server orders the edits. A client sends ``{"op": components, "v": version, "ref": n}``
(an operation in gamesync.games.ot form, made against document version ``v``) as a reliable
message; the server transforms it against the edits applied since ``v``, applies it, and
sends everyone, the author included, ``{"op": {"ops", "v", "from", "ref"}}`` where ``v`` is
the new version: the author takes its own edit back as the acknowledgement, the others
transform their pending edits against it (the ot.js client scheme), and every replica
converges to the same text. An edit the server cannot take (malformed, too big, based on a
version older than the history it keeps, over the rate) gets its author
``{"op_rejected": {"ref", "why", "doc"}}`` with the current document to start again from.

A client joining gets ``{"doc": {"text", "v"}}``, and so does one that asks again with
``{"sync": true}`` (at most 3 at once, then 1 per second; over that ``{"sync_rejected":
{"why"}}``). Cursors and selections are entities
(``owner``, ``anchor``, ``head`` in code points), synced with the snapshots like any other
state: a client sends ``{"cursor": [anchor, head]}`` and the server moves every cursor
through each applied edit. Names come with the room's join events; chat works as in the
arena (gamesync.games.chat).

The document (text and version) and the chat's history and line ids are kept
(``keep_state``): they outlive the room closing empty and a server restart. A cluster also
saves the room (``save_state``: that, the recent edits and every seat and cursor), so a
failover loses at most the last save interval and clients resume their seats and pending
edits on the node that takes over.
"""

from __future__ import annotations

from typing import Any

from ..core.ratelimit import TokenBucket
from ..core.schema import Int, Schema
from ..game import Game, RoomAPI
from . import ot
from .chat import Chat

MAX_DOC = 100_000  # characters
HISTORY = 256  # applied edits kept for transforming late ones
OPS_PER_S, OPS_BURST = 30.0, 60.0
SYNCS_PER_S, SYNCS_BURST = 1.0, 3.0  # {"sync": true}: the whole document again

SCHEMA = Schema([
    Int("owner", "u4", predict="hold"),
    Int("anchor", "u4", predict="hold"),
    Int("head", "u4", predict="hold"),
])


class Notes(Game):
    schema = SCHEMA
    max_players = 64

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.text = ""
        self.version = 0
        self.history: list[ot.Op] = []  # the edits that made versions version-len+1 .. version
        self.cursors: dict[int, int] = {}  # client id -> slot
        self._rate: dict[int, TokenBucket] = {}
        self._syncs: dict[int, TokenBucket] = {}
        self.time = 0.0

    def setup(self, room: RoomAPI) -> None:
        super().setup(room)
        self.chat = Chat(room, lambda: self.time)

    def on_join(self, client_id: int, name: str) -> None:
        slot = self.world.spawn(1, owner=client_id, anchor=0, head=0)
        self.cursors[client_id] = int(slot[0])
        self._rate[client_id] = TokenBucket(OPS_PER_S, OPS_BURST, self.time)
        self._syncs[client_id] = TokenBucket(SYNCS_PER_S, SYNCS_BURST, self.time)
        self.room.send(client_id, {"doc": {"text": self.text, "v": self.version}})
        self.chat.join(client_id, name)

    def on_leave(self, client_id: int) -> None:
        slot = self.cursors.pop(client_id, None)
        if slot is not None:
            self.world.despawn([slot])
        self._rate.pop(client_id, None)
        self._syncs.pop(client_id, None)
        self.chat.leave(client_id)

    def step(self, tick: int, inputs: dict[int, list[Any]], dt: float) -> None:
        self.time += dt

    def on_message(self, client_id: int, data: Any) -> None:
        if self.chat.handle(client_id, data) or not isinstance(data, dict):
            return
        if "op" in data:
            self._edit(client_id, data.get("op"), data.get("v"), data.get("ref"))
        elif data.get("sync") is True and client_id in self._syncs:
            # the document again, for a client that lost track (a resumed seat, a gap);
            # rate-limited, since each answer can be the whole document
            if self._syncs[client_id].take(1, self.time):
                self.room.send(client_id, {"doc": {"text": self.text, "v": self.version}})
            else:
                self.room.send(client_id, {"sync_rejected": {"why": "too many document requests; wait a second"}})
        elif "cursor" in data:
            c = data["cursor"]
            if (isinstance(c, list) and len(c) == 2 and all(type(x) is int for x in c)
                    and client_id in self.cursors):
                n = len(self.text)
                self._set_cursor(client_id, min(max(c[0], 0), n), min(max(c[1], 0), n))

    # -- kept and saved state (gamesync.game.Game: keep_state, save_state) --------------------

    def keep_state(self) -> dict[str, Any]:
        """What outlives the room: the document and its version, the chat's history and ids."""
        return {"text": self.text, "v": self.version, "chat": self.chat.kept()}

    def restore_kept(self, data: Any) -> None:
        """Continue from ``keep_state``'s output (of an older room: checked, not trusted)."""
        if not isinstance(data, dict):
            return
        if isinstance(data.get("text"), str) and len(data["text"]) <= MAX_DOC and type(data.get("v")) is int:
            self.text, self.version, self.history = data["text"], max(0, data["v"]), []
        self.chat.restore(data.get("chat"))

    def save_state(self) -> dict[str, Any]:
        """The kept state, the recent edits (to merge late ones) and who is here, for a failover."""
        names = [[cid, self.chat.names.get(cid, "")] for cid in self.cursors]
        return {**self.keep_state(), "history": self.history, "names": names}

    def restore_state(self, data: dict[str, Any]) -> None:
        """Continue from ``save_state``'s output (the room has restored the world: the cursors)."""
        self.restore_kept(data)
        self.history = [ot.check(op) for op in data.get("history", [])][-HISTORY:]
        w = self.world
        alive = w.alive[: w.n].nonzero()[0]
        self.cursors = {int(w["owner"][s]): int(s) for s in alive}
        for cid, name in data.get("names", []):
            self._rate[int(cid)] = TokenBucket(OPS_PER_S, OPS_BURST, self.time)
            self._syncs[int(cid)] = TokenBucket(SYNCS_PER_S, SYNCS_BURST, self.time)
            self.chat.join(int(cid), str(name), welcome=False)

    def _edit(self, client_id: int, op: Any, base: Any, ref: Any) -> None:
        try:
            op = ot.check(op)
            if type(base) is not int or not 0 <= base <= self.version:
                raise ot.OTError("bad document version")
            behind = self.version - base
            if behind > len(self.history):
                raise ot.OTError("based on a version too old to merge; start again from the document")
            if not self._rate[client_id].take(1, self.time):
                raise ot.OTError("too many edits; slow down")
            for done in self.history[len(self.history) - behind:]:
                _, op = ot.transform(done, op)
            text = ot.apply(self.text, op)
            if len(text) > MAX_DOC:
                raise ot.OTError(f"the document would exceed {MAX_DOC} characters")
        except ot.OTError as e:
            self.room.send(client_id, {"op_rejected": {"ref": ref if type(ref) is int else None, "why": str(e),
                                                       "doc": {"text": self.text, "v": self.version}}})
            return
        self.text = text
        self.version += 1
        self.history.append(op)
        if len(self.history) > HISTORY:
            del self.history[: len(self.history) - HISTORY]
        w = self.world
        for cid, slot in self.cursors.items():
            own = cid == client_id
            self._set_cursor(cid, ot.transform_index(op, int(w["anchor"][slot]), own),
                             ot.transform_index(op, int(w["head"][slot]), own))
        self.room.broadcast({"op": {"ops": op, "v": self.version, "from": client_id,
                                    "ref": ref if type(ref) is int else None}})

    def _set_cursor(self, client_id: int, anchor: int, head: int) -> None:
        slot = self.cursors[client_id]
        self.world["anchor"][slot] = anchor
        self.world["head"][slot] = head
