"""Who gets in: join tokens, the Origin allowlist and per-address connection limits, against
a real server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

import trio
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import RejectConnection, RejectData, Request

from gamesync.core import protocol as p
from gamesync import tokens
from gamesync.server.netaddr import is_loopback
from gs_testkit import HOST, pk, port_of, raw_client, running_server, wait_for

SECRET = b"q" * 48


def _token(player="p1", room="r", ttl=60.0, name=None, secret=SECRET, now=None):
    return tokens.mint(secret, player, room, ttl, time.time() if now is None else now, name=name)


async def _join_with(url, token, room="r", name="claimed"):
    """Join with ``token`` (None: none); the welcome, or the close as (code, error)."""
    async with raw_client(url) as c:
        await c.send([1, p.PROTOCOL_VERSION, room, name, None, token] if token else [1, p.PROTOCOL_VERSION, room, name])
        ev = await c.recv()
        if isinstance(ev, p.Welcome):
            return ev
        closed = await c.closed()
        return closed.code, ev


async def test_with_a_secret_a_valid_token_joins_under_the_tokens_name_and_player():
    with trio.fail_after(10):
        async with running_server(token_secret=SECRET) as (server, url):
            async with raw_client(url) as c:
                await c.send([1, p.PROTOCOL_VERSION, "r", "whatever", None, _token("p-9", name="Ann")])
                w = await c.recv()
                assert isinstance(w, p.Welcome)
                room = server.rooms["r"]
                await wait_for(lambda: w.client_id in room.sessions, 3.0, "the room to admit it")
                s = room.sessions[w.client_id]
                assert s.player == "p-9" and s.name == "Ann"


async def test_with_a_secret_missing_forged_expired_and_wrong_room_tokens_get_4011():
    with trio.fail_after(20):
        async with running_server(token_secret=SECRET) as (server, url):
            cases = {
                "required": None,
                "signature": _token(secret=b"z" * 48),
                "expired": _token(ttl=1, now=time.time() - 120),
                "not 'r'": _token(room="other"),
                "invalid": "a.b.c",
            }
            for why, tok in cases.items():
                code, err = await _join_with(url, tok)
                assert code == 4011, why
                assert isinstance(err, p.ServerError) and err.code == "unauthorized" and why in err.reason, (why, err)
            assert not server.rooms  # refused before touching a room
            assert isinstance(await _join_with(url, _token()), p.Welcome)  # and the server carries on


async def test_without_a_secret_joins_are_anonymous_and_a_token_is_ignored():
    with trio.fail_after(10):
        async with running_server() as (server, url):
            w = await _join_with(url, "anything")
            assert isinstance(w, p.Welcome)


def _ws_request(port: int, origin: str | None) -> tuple[int, bytes]:
    """A raw upgrade request with ``origin``: (HTTP status, body); 101 when accepted."""
    ws = WSConnection(ConnectionType.CLIENT)
    headers = [(b"origin", origin.encode())] if origin else []
    with socket.create_connection((HOST, port), timeout=3) as s:
        s.sendall(ws.send(Request(host=f"{HOST}:{port}", target="/", extra_headers=headers)))
        data = b""
        status, body = 0, b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            ws.receive_data(chunk)
            for ev in ws.events():
                if isinstance(ev, RejectConnection):
                    status = ev.status_code
                elif isinstance(ev, RejectData):
                    body += ev.data
                    if ev.body_finished:
                        return status, body
                else:
                    return 101, b""
        return status, body


async def test_origin_allowlist_refuses_other_browser_origins_with_403_and_lets_the_rest_in():
    with trio.fail_after(10):
        async with running_server(allowed_origins=("https://game.example",)) as (server, url):
            port = port_of(url)
            assert await trio.to_thread.run_sync(_ws_request, port, "https://game.example") == (101, b"")
            status, body = await trio.to_thread.run_sync(_ws_request, port, "https://evil.example")
            assert status == 403 and b"origin 'https://evil.example' is not allowed" in body
            assert await trio.to_thread.run_sync(_ws_request, port, None) == (101, b"")  # bots send no Origin
            await wait_for(lambda: server.connections == 0, 3.0, "the probes to be gone")


def _http_status(port: int, wait: float = 0.5) -> tuple[int, bytes]:
    """Connect and read what the server says first (a refusal), or (0, b'') on silence."""
    with socket.create_connection((HOST, port), timeout=3) as s:
        s.settimeout(wait)
        try:
            data = s.recv(4096)
        except TimeoutError:
            return 0, b""
    if not data.startswith(b"HTTP/1.1 "):
        return 0, data
    return int(data[9:12]), data.split(b"\r\n\r\n", 1)[1]


async def test_connections_over_the_per_address_limit_get_429_until_one_closes():
    with trio.fail_after(15):
        async with running_server(max_connections_per_ip=3, ip_limits_skip_loopback=False) as (server, url):
            async with raw_client(url) as a, raw_client(url) as b, raw_client(url) as c:
                await a.join(name="a")
                await wait_for(lambda: server.connections == 3, 3.0, "three connections")
                status, body = await trio.to_thread.run_sync(_http_status, port_of(url))
                assert status == 429 and b"too many connections open from 127.0.0.1 (limit 3)" in body
                assert await a.snapshot()  # the three already in are untouched
                del b, c
            await wait_for(lambda: server.connections == 0 and not server._per_ip, 3.0, "the count to drop")
            async with raw_client(url) as d:  # room again
                await d.join(name="d")


async def test_connection_attempts_over_the_per_address_rate_get_429_and_the_server_carries_on():
    with trio.fail_after(15):
        async with running_server(connects_per_ip_per_s=0.05, connects_per_ip_burst=5,
                                  ip_limits_skip_loopback=False) as (server, url):
            async with open_websocket_url(url) as ws:  # one of the five
                await ws.send_message(pk([1, p.PROTOCOL_VERSION, "r", "early"]))
                assert isinstance(p.parse_server(await ws.get_message()), p.Welcome)
                statuses = [(await trio.to_thread.run_sync(_http_status, port_of(url), 0.1))[0] for _ in range(11)]
                assert statuses[:4] == [0] * 4  # within the burst: the server waits for a handshake
                assert statuses[4:] == [429] * 7
                assert server.refused_at_accept == 7
                for _ in range(3):  # the client already in plays on
                    assert isinstance(p.parse_server(await ws.get_message()), p.Snapshot)


async def test_loopback_peers_skip_the_per_address_limits_by_default():
    """Local bots, benchmarks and a same-host reverse proxy all connect from 127.0.0.1: with
    the default settings 90 connections at once (over both the 64-open and the 40-burst
    limits) all join and play."""
    with trio.fail_after(30):
        async with running_server() as (server, url):
            assert server.config.max_connections_per_ip < 90 and server.config.connects_per_ip_burst < 90
            async with contextlib.AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(raw_client(url)) for _ in range(90)]
                for i, c in enumerate(clients):
                    await c.join(name=f"b{i}")
                assert server.refused_at_accept == 0 and server.connections == 90
                for c in clients:
                    assert await c.snapshot()


def test_is_loopback_knows_every_spelling_of_the_loopback():
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"))
    assert not any(is_loopback(a) for a in ("10.0.0.1", "192.168.1.2", "::ffff:8.8.8.8", "2001:db8::1", "nonsense"))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gamesync", *args], capture_output=True, text=True,
                          timeout=30, env=env)


def test_serve_refuses_a_public_address_without_a_secret_or_insecure_dev():
    import os
    env = {k: v for k, v in os.environ.items() if k != tokens.SECRET_ENV}
    r = _cli("serve", "--host", "0.0.0.0", "--port", "0", env=env)
    assert r.returncode == 2 and "refusing to serve 0.0.0.0 without join tokens" in r.stderr


def test_token_command_mints_a_token_the_server_accepts(tmp_path):
    f = tmp_path / "secret"
    f.write_bytes(SECRET)
    r = _cli("token", "--room", "r", "--player", "p-3", "--name", "Bea", "--ttl", "60", "--secret-file", str(f))
    assert r.returncode == 0, r.stderr
    g = tokens.verify(SECRET, r.stdout.strip(), "r", time.time())
    assert (g.player, g.name) == ("p-3", "Bea")
    assert _cli("token", "--room", "r", "--player", "p", env={"PATH": "/usr/bin"}).returncode == 2


async def test_the_client_library_and_the_bot_swarm_join_a_server_that_wants_tokens():
    from gamesync.client.connection import open_client
    from gamesync.client.swarm import swarm_main

    with trio.fail_after(20):
        async with running_server(token_secret=SECRET) as (server, url):
            async with open_client(url, room="r", token=_token("p-1", name="Cy")) as c:
                st = await c.wait_state()
                assert st is not None and c.client_id is not None
            res = await swarm_main(url, 3, 1.0, room="r", ramp=0.2, token_secret=SECRET)
            assert res["all_connected"] and res["states_per_client_s"] > 20


def _env(**overrides):
    import os
    env = {k: v for k, v in os.environ.items() if k != tokens.SECRET_ENV}
    env.update(overrides)
    return env


def _one_clear_line(r, *needles):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert all(n in lines[0] for n in needles), lines[0]


def test_an_empty_blank_short_or_unreadable_secret_is_one_clear_line_for_every_command(tmp_path):
    empty, blank, short = tmp_path / "empty", tmp_path / "blank", tmp_path / "short"
    empty.write_bytes(b"")
    blank.write_bytes(b"  \n\t\n")
    short.write_bytes(b"tooshort\n")
    commands = {
        "serve": ["serve", "--port", "0", "--http-port", "-1"],
        "token": ["token", "--room", "r", "--player", "p"],
        "bots": ["bots", "ws://127.0.0.1:9", "--count", "1", "--duration", "0.1", "--no-progress"],
    }
    for cmd, args in commands.items():
        _one_clear_line(_cli(*args, env=_env(GAMESYNC_SECRET="")), f"gamesync {cmd}:", "GAMESYNC_SECRET is empty")
        _one_clear_line(_cli(*args, env=_env(GAMESYNC_SECRET="   ")), "GAMESYNC_SECRET is empty")
        _one_clear_line(_cli(*args, env=_env(GAMESYNC_SECRET="x" * 12)), "12 bytes", "at least 32")
        for f, needle in ((empty, "is empty"), (blank, "is empty"), (short, "8 bytes")):
            _one_clear_line(_cli(*args, "--secret-file", str(f), env=_env()), str(f), needle)
        _one_clear_line(_cli(*args, "--secret-file", str(tmp_path / "missing"), env=_env()),
                        "cannot read the secret file", "missing")


def test_a_server_config_with_an_empty_secret_or_open_on_a_public_address_is_refused():
    import pytest

    from gamesync.server import ServerConfig

    for bad in (b"", b"   ", b"short"):
        with pytest.raises(tokens.SecretError):
            ServerConfig(token_secret=bad)
    with pytest.raises(ValueError, match="without join tokens"):
        ServerConfig(host="0.0.0.0")
    assert ServerConfig(host="0.0.0.0", insecure_dev=True).dev_mode
    assert not ServerConfig(host="0.0.0.0", token_secret=SECRET).dev_mode


def test_token_operator_mints_an_operator_token(tmp_path):
    f = tmp_path / "secret"
    f.write_bytes(SECRET)
    r = _cli("token", "--operator", "--ttl", "60", "--secret-file", str(f))
    assert r.returncode == 0, r.stderr
    assert tokens.verify_operator(SECRET, r.stdout.strip(), time.time()) == "operator"
    r = _cli("token", "--player", "p", "--secret-file", str(f))
    _one_clear_line(r, "needs --room and --player")


async def _handshake_status(url, headers):
    """The HTTP status of a WebSocket handshake carrying ``headers`` (101: accepted)."""
    port = port_of(url)
    ws = WSConnection(ConnectionType.CLIENT)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(ws.send(Request(host=f"{HOST}:{port}", target="/", extra_headers=headers)))
            head = b""
            while b"\r\n\r\n" not in head:
                data = await stream.receive_some(4096)
                if not data:
                    break
                head += data
    return int(head.split(b" ", 2)[1])


async def test_a_server_without_a_secret_refuses_proxied_connections_unless_told_to_allow_them():
    proxied = [(b"X-Forwarded-For", b"203.0.113.9")]
    with trio.fail_after(20):
        async with running_server() as (server, url):
            assert await _handshake_status(url, []) == 101
            for name in (b"X-Forwarded-For", b"Forwarded", b"X-Real-IP"):
                assert await _handshake_status(url, [(name, b"for=203.0.113.9")]) == 403, name
        async with running_server(insecure_dev=True) as (server, url):
            assert await _handshake_status(url, proxied) == 101
        async with running_server(token_secret=SECRET) as (server, url):
            assert await _handshake_status(url, proxied) == 101  # joins then need a token
