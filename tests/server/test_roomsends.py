"""A room's sends beyond itself (gamesync.server.roomsends, gamesync.sends) in one process:
to a list of rooms, and reliable sends with an acknowledgement, a timeout and a reply, to a
client here or to a player in any room, who may move mid-send. Real server, real sockets."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from gs_testkit import next_game_event, next_reliable, running_server
from relay_game import Relay

from gamesync.client.connection import Client, open_client
from gamesync.games import builtin_games

GAMES = {**builtin_games(), "relay": Relay}


_game_event = partial(next_game_event, timeout=5.0)
_request = partial(next_reliable, timeout=5.0)


async def _answer(c: Client, ask: dict[str, Any]) -> dict[str, Any]:
    await c.send_message(ask)
    return dict(await _game_event(c, "answer", timeout=float(ask.get("timeout", 5.0)) + 3))


async def test_publish_to_rooms_reaches_each_listed_room_once_and_no_other():
    with trio.fail_after(20):
        async with running_server(games=GAMES, default_game="relay") as (server, url), \
                open_client(url, room="a", name="in-a") as a, open_client(url, room="b", name="in-b") as b, \
                open_client(url, room="c", name="in-c") as c, open_client(url, room="s", name="sender") as s:
            for cl in (a, b, c):
                await cl.wait_state()
            await s.send_message({"rooms": ["a", "b", "a", "nowhere"], "say": "hi"})
            assert await _game_event(a, "said") == "hi" and await _game_event(b, "said") == "hi"
            await s.send_message({"rooms": ["c"], "say": "later"})
            assert await _game_event(c, "said") == "later"  # c got nothing before this
            await s.send_message({"rooms": ["a"], "say": "again"})
            assert await _game_event(a, "said") == "again"  # a got "hi" once


async def test_a_request_to_a_client_of_the_room_gets_its_reply_or_times_out_acked():
    with trio.fail_after(20):
        async with running_server(games=GAMES, default_game="relay") as (server, url), \
                open_client(url, room="r", name="asker") as asker, open_client(url, room="r", name="pat") as pat:
            await pat.wait_state()  # in the room (a welcome comes before the tick that seats it)
            pending = trio.Event()

            async def answer_it() -> None:
                req = await _request(pat)
                assert req.data == {"q": "sure?", "from": asker.client_id}
                pending.set()
                await pat.reply(req.ack_id, {"yes": True})
            async with trio.open_nursery() as n:
                n.start_soon(answer_it)
                got = await _answer(asker, {"ask_client": pat.client_id, "reply": True, "q": "sure?"})
            assert pending.is_set() and got == {"ok": True, "acked": True, "reply": {"yes": True}}
            # no reply: the ack arrives (the client acks on receipt), then the timeout fires
            t0 = trio.current_time()
            got = await _answer(asker, {"ask_client": pat.client_id, "reply": True, "timeout": 0.5})
            assert got == {"ok": False, "acked": True, "reply": None}
            assert 0.5 <= trio.current_time() - t0 < 2.0
            # a plain reliable send resolves on the ack
            assert await _answer(asker, {"ask_client": pat.client_id}) == {"ok": True, "acked": True, "reply": None}


async def test_a_send_to_a_player_in_another_room_is_acked_answered_or_times_out():
    with trio.fail_after(20):
        async with running_server(games=GAMES, default_game="relay") as (server, url), \
                open_client(url, room="s", name="asker") as asker, open_client(url, room="x", name="pat") as pat:
            await pat.wait_state()
            assert await _answer(asker, {"ask": "pat"}) == {"ok": True, "acked": True, "reply": None}
            await _request(pat)  # that one, acked
            async with trio.open_nursery() as n:
                async def answer_it() -> None:
                    req = await _request(pat)
                    await pat.reply(req.ack_id, "fine")
                n.start_soon(answer_it)
                assert await _answer(asker, {"ask": "pat", "reply": True}) == {
                    "ok": True, "acked": True, "reply": "fine"}
            t0 = trio.current_time()
            assert await _answer(asker, {"ask": "nobody", "timeout": 0.6}) == {"ok": False, "acked": False,
                                                                              "reply": None}
            assert 0.6 <= trio.current_time() - t0 < 2.0


async def test_a_player_who_moves_to_another_room_mid_request_gets_it_there_and_answers():
    with trio.fail_after(20):
        async with running_server(games=GAMES, default_game="relay") as (server, url), \
                open_client(url, room="s", name="asker") as asker:
            await asker.send_message({"ask": "pat", "reply": True, "timeout": 8, "q": "where?"})
            async with open_client(url, room="x", name="pat") as pat:
                first = await _request(pat)  # acked on receipt, not answered: the player leaves
                assert first.data["q"] == "where?"
            async with open_client(url, room="y", name="pat") as pat:
                again = await _request(pat)  # offered again, where the player is now
                assert again.data == first.data
                await pat.reply(again.ack_id, "here, in y")
            got = await _game_event(asker, "answer")
            assert got == {"ok": True, "acked": True, "reply": "here, in y"}
