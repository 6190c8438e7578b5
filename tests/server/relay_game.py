"""A test game that sends on its players' behalf, so that tests can drive the room's sends
(gamesync.server.roomsends, gamesync.sends) from a client: each message names a send, and
its outcome comes back to the asker as ``{"answer": {"ok", "acked", "reply"}}``.

- ``{"ask": player, "reply": bool, "timeout": s}``: ``send_to_player_reliable``
- ``{"ask_client": client_id, "reply": bool, "timeout": s}``: ``send_reliable``
- ``{"rooms": [name, ...], "say": x}``: ``publish_to_rooms`` of ``{"said": x}``
"""

from __future__ import annotations

from typing import Any

from gamesync.core.schema import Int, Schema
from gamesync.game import Game, ReliableHandle


class Relay(Game):
    schema = Schema([Int("n", "u1")])

    def on_message(self, client_id: int, data: Any) -> None:
        if not isinstance(data, dict):
            return
        held: list[ReliableHandle] = []

        def answer(ok: bool) -> None:
            h = held[0] if held else None
            self.room.send(client_id, {"answer": {"ok": ok, "acked": bool(h and h.acked),
                                                  "reply": h.reply if h else None}})

        q = {"q": data.get("q", "?"), "from": client_id}
        timeout, reply = float(data.get("timeout", 5.0)), bool(data.get("reply"))
        if "ask" in data:
            held.append(self.room.send_to_player_reliable(data["ask"], q, timeout, reply, answer))
        elif "ask_client" in data:
            held.append(self.room.send_reliable(data["ask_client"], q, timeout, answer, expect_reply=reply))
        elif "rooms" in data:
            self.room.publish_to_rooms(data["rooms"], {"said": data.get("say")})
