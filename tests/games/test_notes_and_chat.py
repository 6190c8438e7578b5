"""The notes pad (gamesync.games.notes) and room chat (gamesync.games.chat) over a real server:
concurrent edits converge, cursors follow edits, bad edits and chat lines are refused to
their sender only."""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from gs_testkit import RawClient, raw_client, running_server, wait_for  # noqa: E402

from gamesync.core import protocol as p  # noqa: E402
from gamesync.games import ot  # noqa: E402


class Editor:
    """A minimal ot.js-style client: one edit in flight, later ones buffered; incoming edits
    transformed against them; the author's own edit comes back as its acknowledgement."""

    def __init__(self, c: RawClient) -> None:
        self.c = c
        self.text = ""
        self.v = 0
        self.inflight: ot.Op | None = None
        self.buffer: ot.Op | None = None
        self.ref = 0
        self.events: list[Any] = []

    async def pump(self, seconds: float | None = None) -> None:
        """Handle snapshots for ``seconds`` (None: just the next one)."""
        with trio.move_on_after(1e9 if seconds is None else seconds):
            while True:
                s = await self.c.snapshot()
                await self.c.send([5, s.tick])
                for e in s.events:
                    if e[0] == p.Ev.EVENT:
                        await self._event(e[1])
                if seconds is None:
                    return

    async def _event(self, ev: Any) -> None:
        self.events.append(ev)
        if "doc" in ev:
            self.text, self.v = ev["doc"]["text"], ev["doc"]["v"]
        elif "op" in ev:
            o = ev["op"]
            self.v = o["v"]
            if o["from"] == self.me:  # our edit, acknowledged
                self.inflight, self.buffer = self.buffer, None
                if self.inflight is not None:
                    await self._send(self.inflight)
                return
            # the server applied this before our pending edits: it goes first in each transform
            incoming = o["ops"]
            if self.inflight is not None:
                incoming, self.inflight = ot.transform(incoming, self.inflight)
            if self.buffer is not None:
                incoming, self.buffer = ot.transform(incoming, self.buffer)
            self.text = ot.apply(self.text, incoming)

    async def edit(self, op: ot.Op) -> None:
        self.text = ot.apply(self.text, op)
        if self.inflight is None:
            self.inflight = op
            await self._send(op)
        elif self.buffer is None:
            self.buffer = op
        else:
            raise AssertionError("this test client buffers one edit")

    async def _send(self, op: ot.Op) -> None:
        self.ref += 1
        # the in-flight edit is based on everything acknowledged so far
        await self.c.send([6, {"op": op, "v": self.v, "ref": self.ref}, self.ref])

    @property
    def me(self) -> int:
        assert self.c.welcome is not None
        return self.c.welcome.client_id


async def _editor(stack: Any, url: str, name: str) -> Editor:
    c = await stack.enter_async_context(raw_client(url))
    await c.join(room="doc", name=name, game="notes")
    e = Editor(c)
    while not any("doc" in ev for ev in e.events):
        await e.pump()
    return e


async def test_concurrent_edits_from_three_clients_converge_and_a_late_joiner_gets_the_text():
    with trio.fail_after(20):
        async with running_server() as (server, url), AsyncExitStack() as stack:
            a, b, c = [await _editor(stack, url, n) for n in ("ann", "bob", "cy")]
            await a.edit(["hello"])
            for e in (a, b, c):
                await e.pump(0.3)
            assert a.text == b.text == c.text == "hello"
            # all three edit version 1 at once
            await a.edit([5, " world"])
            await b.edit(["<", 5])
            await c.edit([2, -2, 1])  # delete "ll"
            for e in (a, b, c):
                await e.pump(0.5)
            game = server.rooms["doc"].game
            assert a.text == b.text == c.text == game.text
            assert game.text == "<heo world" and game.version == 4
            late = await _editor(stack, url, "dee")
            assert late.text == game.text and late.v == game.version


async def test_cursors_are_entities_that_follow_edits():
    with trio.fail_after(20):
        async with running_server() as (server, url), AsyncExitStack() as stack:
            a, b = await _editor(stack, url, "ann"), await _editor(stack, url, "bob")
            await a.edit(["abcdef"])
            await a.pump(0.2)
            await b.pump(0.2)
            await b.c.send([6, {"cursor": [3, 5]}])  # bob selects "de"
            game = server.rooms["doc"].game
            await wait_for(lambda: int(game.world["head"][game.cursors[b.me]]) == 5, 3.0, "bob's cursor")
            await a.edit(["XY", 6])  # ann types at the start
            await wait_for(lambda: game.version == 2, 3.0, "the edit")
            w = game.world
            assert (int(w["anchor"][game.cursors[b.me]]), int(w["head"][game.cursors[b.me]])) == (5, 7)
            assert int(w["head"][game.cursors[a.me]]) == 8  # her caret, after "abcdef", moved on by "XY"
            assert int(w["owner"][game.cursors[b.me]]) == b.me


async def test_bad_edits_are_refused_to_their_author_with_the_document_and_others_see_nothing():
    with trio.fail_after(20):
        async with running_server() as (server, url), AsyncExitStack() as stack:
            a, b = await _editor(stack, url, "ann"), await _editor(stack, url, "bob")
            for bad, why in ((["x", 3], "spans"), ([0], "zero"), ("abc", "list"), (["x" * 10_001], "more than")):
                await a.c.send([6, {"op": bad, "v": 0, "ref": 9}, 50])
                await a.pump(0.2)
                rej = [e["op_rejected"] for e in a.events if "op_rejected" in e]
                assert rej and why in rej[-1]["why"] and rej[-1]["doc"] == {"text": "", "v": 0}
            await a.c.send([6, {"op": ["x"], "v": 7, "ref": 10}])
            await a.pump(0.2)
            assert "bad document version" in [e["op_rejected"] for e in a.events if "op_rejected" in e][-1]["why"]
            await b.pump(0.2)
            assert not any("op" in e or "op_rejected" in e for e in b.events)
            assert server.rooms["doc"].game.text == ""
            assert a.c.welcome is not None  # and ann is still connected
            await a.edit(["ok"])
            await a.pump(0.2)
            assert server.rooms["doc"].game.text == "ok"


async def test_a_client_that_lost_track_asks_for_the_document_again_within_a_rate():
    with trio.fail_after(20):
        async with running_server() as (server, url), AsyncExitStack() as stack:
            a, b = await _editor(stack, url, "ann"), await _editor(stack, url, "bob")
            await a.edit(["shared text"])
            await a.pump(0.3)
            b.events.clear()
            for _ in range(4):  # 3 at once are answered, the 4th is over the rate
                await b.c.send([6, {"sync": True}])
            await b.pump(0.4)
            docs = [ev["doc"] for ev in b.events if "doc" in ev]
            assert docs == [{"text": "shared text", "v": 1}] * 3
            assert [ev for ev in b.events if "sync_rejected" in ev] == [
                {"sync_rejected": {"why": "too many document requests; wait a second"}}]
            assert not any("doc" in ev for ev in a.events[1:])  # only the one who asked gets it


async def test_chat_lines_reach_everyone_in_order_and_refusals_only_their_sender():
    with trio.fail_after(15):
        async with running_server() as (server, url):
            async with raw_client(url) as a, raw_client(url) as b:
                await a.join(name="ann")
                await b.join(name="bob")
                await b.snapshot()  # both are in the room (a welcome comes a tick before entering)

                async def events(c: RawClient, seconds: float) -> list[Any]:
                    got = []
                    for _, s in await c.follow(seconds):
                        got += [e[1] for e in s.events if e[0] == p.Ev.EVENT]
                        got += [("acked", e[1]) for e in s.events if e[0] == p.Ev.MESSAGE_ACK]
                    return got

                await a.send([6, {"typing": True}])
                await a.send([6, {"chat": "hi <b>bob</b>", "ref": 1}, 1])
                await a.send([6, {"chat": "x" * 281, "ref": 2}, 2])
                await a.send([6, {"chat": "   ", "ref": 3}, 3])
                got: dict[str, list[Any]] = {}

                async def collect(key: str, c: RawClient) -> None:
                    got[key] = await events(c, 0.5)

                async with trio.open_nursery() as n:
                    n.start_soon(collect, "a", a)
                    n.start_soon(collect, "b", b)
                ea, eb = got["a"], got["b"]
                line = {"id": 1, "from": a.welcome.client_id, "name": "ann", "text": "hi <b>bob</b>", "ref": 1}
                assert {"chat": line} in ea and {"chat": line} in eb
                assert ("acked", 1) in ea and ("acked", 2) in ea  # received: acked, even when refused
                refused = [e["chat_rejected"] for e in ea if isinstance(e, dict) and "chat_rejected" in e]
                assert [r["ref"] for r in refused] == [2, 3]
                assert "longer than 280" in refused[0]["why"] and refused[1]["why"] == "empty message"
                assert not any(isinstance(e, dict) and "chat_rejected" in e for e in eb)
                assert {"typing": {"from": a.welcome.client_id, "on": True}} in eb
                assert not any(isinstance(e, dict) and "typing" in e for e in ea)
                for i in range(8):  # over the rate: 5 at once, then 2 per second
                    await a.send([6, {"chat": f"spam {i}", "ref": 10 + i}, 10 + i])
                ea = await events(a, 0.3)
                refused = [e["chat_rejected"]["ref"] for e in ea if isinstance(e, dict) and "chat_rejected" in e]
                assert len(refused) >= 2 and all("slow down" in e["chat_rejected"]["why"]
                                                for e in ea if isinstance(e, dict) and "chat_rejected" in e)
