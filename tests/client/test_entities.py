"""The client's reads of its newest state (gamesync.client.entities): entity ids, the exact
quantised values the server sent, one entity by id; named as in the JS mirror."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from gamesync.client import Entity, open_client
from gamesync.core import clientproto as cp
from gamesync.games.arena import KIND_NPC, KIND_PLAYER
from gs_testkit import running_server


async def _me(c) -> int:
    """The entity the arena gave this client (its ``you`` event)."""
    async for ev in c.events():
        if isinstance(ev, cp.GameEvent) and "you" in ev.data:
            return int(ev.data["you"])
    raise AssertionError("no `you` event")


async def test_ids_wire_values_and_one_entity_agree_with_the_columns():
    with trio.fail_after(10):
        async with running_server() as (server, url), open_client(url, room="r", name="ann") as c:
            me = await _me(c)
            st = await c.wait_state()
            while c.slot_of(me) < 0:  # the snapshot that has it
                st = await c.wait_state(st.tick)
            alive = c.alive()
            ids = c.ids()
            assert ids.dtype == np.uint32 and len(ids) == alive.sum() == 51  # 50 NPCs and ann
            assert ids.tolist() == c.state.ids[alive].tolist()  # slot order
            x = c.wire("x")
            assert x.dtype == np.dtype("<u2") and len(x) == len(alive)
            assert np.array_equal(x[alive] / 64, c.column("x")[alive])  # exact: 1/64 steps
            assert (x[~alive] == 0).all()
            assert c.wire("owner").dtype == np.dtype("<u4")
            e = c.entity(me)
            assert isinstance(e, Entity) and e.id == me and e.slot == c.slot_of(me)
            assert e.q["kind"] == e.v["kind"] == KIND_PLAYER and e.q["owner"] == c.client_id
            assert e.q["x"] == int(x[e.slot]) and e.v["x"] == e.q["x"] / 64
            assert set(e.q) == set(e.v) == {f.name for f in c.schema}
            npc = int(ids[0]) if int(ids[0]) != me else int(ids[1])
            assert c.entity(npc).v["kind"] == KIND_NPC
            assert c.slot_of(10**9) == -1 and c.entity(10**9) is None


def test_before_the_first_state_there_is_nothing_to_read():
    from gamesync.client.connection import Client

    c = Client("ws://127.0.0.1:1/", "r", "me")
    for read in (c.ids, lambda: c.wire("x"), lambda: c.entity(1)):
        with pytest.raises(RuntimeError, match="no state yet"):
            read()
