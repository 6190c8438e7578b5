"""Who may read what on the HTTP side: the endpoints that name players answer operators only,
the lobby is public unless the server says otherwise, and no answer builds a URL from a Host
header the server does not vouch for. Real servers, real HTTP over 127.0.0.1."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import trio

from gamesync import tokens
from gamesync.core import protocol as p
from gs_testkit import raw_client, running_server, wait_for

SECRET = b"s" * 48
VICTIM = {"player": "acct-8841-victim", "name": "Victoria Q."}
OPERATOR_ONLY = ("/presence", "/nodes", "/stats")


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    def fetch() -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, dict(r.headers.items()), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read().decode()
    return await trio.to_thread.run_sync(fetch)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _seat_victim(server: Any, url: str, c: Any) -> None:
    token = tokens.mint(SECRET, VICTIM["player"], "r", 60, time.time(), name=VICTIM["name"])
    await c.send([1, p.PROTOCOL_VERSION, "r", "ignored", None, token])
    await c.recv()
    await wait_for(lambda: "r" in server.rooms and server.rooms["r"].sessions, 3.0, "the victim to be seated")


async def test_with_a_secret_the_endpoints_that_name_players_need_an_operator_token():
    with trio.fail_after(20):
        async with running_server(token_secret=SECRET, http_port=0) as (server, url):
            base = server.http_url
            async with raw_client(url) as c:
                await _seat_victim(server, url, c)
                now = time.time()
                refused = {
                    "no credential": {},
                    "not bearer": {"Authorization": "Basic b3A6b3A="},
                    "a join token": _bearer(tokens.mint(SECRET, "p", "*", 60, now)),
                    "forged": _bearer(tokens.mint_operator(b"z" * 48, 60, now)),
                    "expired": _bearer(tokens.mint_operator(SECRET, 1, now - 120)),
                    "garbage": _bearer("x.y.z"),
                }
                for path in OPERATOR_ONLY:
                    for why, headers in refused.items():
                        status, hdrs, body = await _get(base + path, headers)
                        assert status == 401, (path, why, status, body)
                        assert json.loads(body)["error"] == "unauthorized"
                        assert hdrs.get("www-authenticate", "").startswith("Bearer")
                        assert VICTIM["player"] not in body and VICTIM["name"] not in body, (path, why)
                op = _bearer(tokens.mint_operator(SECRET, 60, now))
                status, _, body = await _get(base + "/presence", op)
                assert status == 200
                assert [(e["player"], e["name"]) for e in json.loads(body)] == [(VICTIM["player"], VICTIM["name"])]
                assert (await _get(base + "/stats", op))[0] == 200
                assert (await _get(base + "/nodes", op))[0] == 200
                # the lobby stays public by default: counts, no names
                status, _, body = await _get(base + "/rooms")
                assert status == 200 and json.loads(body)[0]["clients"] == 1
                assert VICTIM["player"] not in body and VICTIM["name"] not in body
                status, _, body = await _get(base + "/metrics")
                assert status == 200 and VICTIM["name"] not in body
                assert (await _get(base + "/health"))[0] == 200


async def test_an_operator_token_is_no_join_token():
    with trio.fail_after(10):
        async with running_server(token_secret=SECRET) as (server, url):
            async with raw_client(url) as c:
                await c.send([1, p.PROTOCOL_VERSION, "r", "op", None, tokens.mint_operator(SECRET, 60, time.time())])
                await c.recv()
                closed = await c.closed()
                assert closed.code == 4011


async def test_a_private_lobby_answers_operators_only():
    with trio.fail_after(15):
        async with running_server(token_secret=SECRET, http_port=0, public_lobby=False) as (server, url):
            base = server.http_url
            op = _bearer(tokens.mint_operator(SECRET, 60, time.time()))
            for path in ("/rooms", "/metrics"):
                assert (await _get(base + path))[0] == 401, path
                assert (await _get(base + path, op))[0] == 200, path
            assert (await _get(base + "/health"))[0] == 200
            assert (await _get(base + "/api/server"))[0] == 200


async def test_without_a_secret_operator_endpoints_answer_direct_local_callers_only():
    with trio.fail_after(15):
        async with running_server(http_port=0) as (server, url):
            base = server.http_url
            async with raw_client(url) as c:
                await c.join(room="r", name="Victoria Q.")
                await wait_for(lambda: "r" in server.rooms and server.rooms["r"].sessions, 3.0, "the join")
                status, _, body = await _get(base + "/presence")
                assert status == 200 and json.loads(body)[0]["name"] == "Victoria Q."
                for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
                    for path in OPERATOR_ONLY:
                        status, _, body = await _get(base + path, {header: "for=203.0.113.9"})
                        assert status == 401 and "Victoria" not in body, (header, path)


async def test_api_server_never_builds_a_url_on_a_host_it_does_not_vouch_for():
    with trio.fail_after(15):
        async with running_server(http_port=0) as (server, url):
            base = server.http_url
            status, _, body = await _get(base + "/api/server", {"Host": "evil.example"})
            answer = json.loads(body)
            assert status == 200 and "evil" not in body
            assert answer["url"] is None and answer["urls"] == []
            assert answer["scheme"] == "ws" and answer["port"] == server.port
            for host in ("127.0.0.1", "localhost"):
                answer = json.loads((await _get(base + "/api/server", {"Host": f"{host}:1"}))[2])
                assert answer["url"] == f"ws://{host}:{server.port}/", host
        async with running_server(http_port=0, public_hosts=("game.example",)) as (server, url):
            base = server.http_url
            answer = json.loads((await _get(base + "/api/server", {"Host": "game.example"}))[2])
            assert answer["url"] == f"ws://game.example:{server.port}/"
            answer = json.loads((await _get(base + "/api/server", {"Host": "127.0.0.1"}))[2])
            assert answer["url"] is None  # the list replaces the defaults
        async with running_server(http_port=0, public_url="wss://play.example/") as (server, url):
            body = (await _get(server.http_url + "/api/server", {"Host": "evil.example"}))[2]
            assert json.loads(body)["url"] == "wss://play.example/" and "evil" not in body
