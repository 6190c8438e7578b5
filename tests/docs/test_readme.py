"""The README's code samples run as written: the client tour and the example game."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from gamesync.games import builtin_games
from gamesync.client import open_client
from gamesync.server import Server, ServerConfig

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def _block(marker: str) -> str:
    (code,) = [b for b in BLOCKS if marker in b]
    return code


async def test_readme_client_tour_runs_against_a_live_server() -> None:
    code = _block("open_client(")
    ns: dict = {}
    exec(compile(code.replace("trio.run(main)", ""), "README-client", "exec"), ns)
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            port = await n.start(Server(ServerConfig(port=0, games=builtin_games(), game_options={"npcs": 20})).serve)
            ns["open_client"] = _at_port(port)
            await ns["main"]()
            n.cancel_scope.cancel()


def _at_port(port: int):  # the README uses the default port; tests bind port 0
    def opener(url: str, **kw):
        return open_client(url.replace(":8765", f":{port}"), **kw)

    return opener


@pytest.mark.parametrize("name", ["Tag", "Dash"])  # validate_input and a dict; input_spec and columns
async def test_readme_example_game_moves_the_player_it_spawned(name: str) -> None:
    code = _block(f"class {name}(Game)")
    ns: dict = {}
    exec(compile(code, "README-game", "exec"), ns)
    cfg = ServerConfig(port=0, games={"tag": ns[name]}, default_game="tag")
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            port = await n.start(Server(cfg).serve)
            async with open_client(f"ws://127.0.0.1:{port}", room="t1", name="a", game="tag") as c:
                st = await c.wait_state()
                x0 = float(c.column("x")[st.alive][0])
                seq = await c.send_input([1, 0])
                while c.input_ack < seq:
                    await c.wait_state(c.state.tick)
                assert float(c.column("x")[c.alive()][0]) == x0 + 1
            n.cancel_scope.cancel()
