"""docs/games.md's movement rule for the arena, written out here from the doc alone (no import
of the game), predicts the server's positions exactly: a real server, a player driven into two
walls, straight, diagonally and standing still, with bursts of inputs (several applied in one
tick) and pauses (ticks with none); every state the client sees has the player where the rule
puts it after the inputs that state says were applied."""

from __future__ import annotations

import math

import trio

from gamesync.client import open_client
from gamesync.core import clientproto as cp
from gamesync.games import builtin_games
from gamesync.server import Server, ServerConfig

TICK_RATE = 30.0
WALL = 64000  # the far wall, in grid steps (1000 units of 1/64)
HEADING = {(1, 0): 0, (1, 1): 512, (0, 1): 1024, (-1, 1): 1536, (-1, 0): 2048, (-1, -1): 2560, (0, -1): 3072,
           (1, -1): 3584}
BATCH, PAUSE_S = 40, 0.4  # about 100 inputs/s: within the server's 120 messages/s


def steps(rate: float) -> tuple[int, int]:
    """games.md, 1: (straight, diagonal) steps per input at ``rate`` ticks per second."""
    per_tick = 200 * (1 / rate)
    return round(per_tick * 64), round(per_tick * (1 / math.sqrt(2)) * 64)


def moved(pos: tuple[int, int, int], dx: int, dy: int, rate: float) -> tuple[int, int, int]:
    """games.md, 2 and 4: (x, y, heading) after one input."""
    x, y, heading = pos
    if (dx, dy) == (0, 0):
        return pos
    s, d = steps(rate)
    step = d if dx and dy else s
    return (min(max(x + dx * step, 0), WALL), min(max(y + dy * step, 0), WALL), HEADING[(dx, dy)])


def predicted(start: tuple[int, int, int], inputs: list[tuple[int, int]], applied: int) -> tuple[int, int, int]:
    """games.md, 3: the position after inputs 1..applied, in order, whatever the ticks."""
    pos = start
    for dx, dy in inputs[:applied]:
        pos = moved(pos, dx, dy, TICK_RATE)
    return pos


def test_the_step_sizes_are_the_documented_ones() -> None:
    assert steps(30) == (427, 302)


async def test_the_documented_rule_predicts_every_position_the_server_sends() -> None:
    cfg = ServerConfig(port=0, tick_rate=TICK_RATE, games=builtin_games(), game_options={"npcs": 0})
    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            port = await n.start(Server(cfg).serve)
            async with open_client(f"ws://127.0.0.1:{port}/", room="rule", name="walker") as c:
                me = None
                async for ev in c.events():
                    if isinstance(ev, cp.GameEvent) and "you" in ev.data:
                        me = int(ev.data["you"])
                        break
                st = await c.wait_state()
                while c.slot_of(me) < 0:
                    st = await c.wait_state(st.tick)
                q = c.entity(me).q
                start = (q["x"], q["y"], q["heading"])
                s, _ = steps(TICK_RATE)
                inputs = ([(-1, 0)] * (start[0] // s + 3)  # into the left wall, and on against it
                          + [(-1, 1)] * 4 + [(0, 0)] * 2  # diagonal along that wall: y moves, x stays
                          + [(0, -1)] * ((start[1] + 4 * 302) // s + 3)  # into the top wall
                          + [(1, -1)] * 3  # diagonal along the top wall
                          + [(1, 1)] * 5 + [(1, 0)] * 3 + [(0, 0)])  # free again
                seen: list[tuple[int, tuple[int, int, int]]] = []
                for first in range(0, len(inputs), BATCH):
                    batch = inputs[first:first + BATCH]
                    for inp in batch:
                        await c.send_input(list(inp))
                    while not seen or seen[-1][0] < first + len(batch):
                        st = await c.wait_state(st.tick)
                        e = c.entity(me)
                        seen.append((e.q["ack"], (e.q["x"], e.q["y"], e.q["heading"])))
                    await trio.sleep(PAUSE_S)
            n.cancel_scope.cancel()
    for applied, position in seen:
        assert position == predicted(start, inputs, applied), f"after input {applied} of {len(inputs)}"
    acks = [a for a, _ in seen]
    assert acks[-1] == len(inputs)
    assert any(b - a >= 2 for a, b in zip(acks, acks[1:])), "no tick applied two inputs or more"
    assert any(b == a for a, b in zip(acks, acks[1:])), "no tick without an input"
    end = predicted(start, inputs, len(inputs))
    walls = [predicted(start, inputs, i) for i in range(len(inputs) + 1)]
    assert any(p[0] == 0 for p in walls) and any(p[1] == 0 for p in walls), "the walk touched both walls"
    assert end[2] == HEADING[(1, 0)]
