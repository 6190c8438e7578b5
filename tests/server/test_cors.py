"""CORS on the HTTP side's JSON endpoints (gamesync.server.cors): a page on an origin the
WebSocket accepts may read them, any other origin gets no CORS header. Real servers, real
HTTP over 127.0.0.1."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import trio

from gamesync import tokens
from gs_testkit import running_server

GAME = "https://game.example"
EVIL = "https://evil.example"
SECRET = b"s" * 48
JSON_PATHS = ("/rooms", "/health", "/api/server", "/metrics", "/stats", "/presence", "/nodes")


async def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None
                   ) -> tuple[int, dict[str, str]]:
    def fetch() -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                return r.status, {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}
    return await trio.to_thread.run_sync(fetch)


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"}


async def test_an_allowed_origin_reads_every_json_endpoint_and_another_gets_no_cors_header():
    with trio.fail_after(20):
        async with running_server(http_port=0, allowed_origins=(GAME,)) as (server, _):
            base = server.http_url
            for path in JSON_PATHS:
                status, h = await _request(base + path, headers={"Origin": GAME})
                assert status == 200, path
                assert h.get("access-control-allow-origin") == GAME, path
                assert "origin" in h.get("vary", "").lower(), path
                status, h = await _request(base + path, headers={"Origin": EVIL})
                assert status == 200, path  # the answer itself is the same: the browser withholds it
                assert "access-control-allow-origin" not in h, path
            # no Origin: not a browser, nothing to add
            assert "access-control-allow-origin" not in (await _request(base + "/rooms"))[1]


async def test_preflight_for_an_allowed_origin_allows_get_with_an_authorization_header():
    with trio.fail_after(20):
        async with running_server(http_port=0, allowed_origins=(GAME,)) as (server, _):
            base = server.http_url
            status, h = await _request(base + "/presence", "OPTIONS", _preflight(GAME))
            assert status == 204
            assert h["access-control-allow-origin"] == GAME
            assert "GET" in h["access-control-allow-methods"]
            assert "authorization" in h["access-control-allow-headers"].lower()
            assert "access-control-allow-credentials" not in h
            status, h = await _request(base + "/presence", "OPTIONS", _preflight(EVIL))
            assert status == 403
            assert not [k for k in h if k.startswith("access-control-")]


async def test_without_an_allowlist_the_lobby_is_readable_from_anywhere_but_local_only_endpoints_are_not():
    with trio.fail_after(20):
        async with running_server(http_port=0) as (server, _):  # development mode: no secret
            base = server.http_url
            for path in ("/rooms", "/health", "/api/server", "/metrics"):
                assert (await _request(base + path, headers={"Origin": EVIL}))[1].get(
                    "access-control-allow-origin") == "*", path
            for path in ("/stats", "/presence", "/nodes"):
                # they trust callers on this machine, a browser's pages included: no page may read them
                status, h = await _request(base + path, headers={"Origin": EVIL})
                assert status == 200 and "access-control-allow-origin" not in h, path
                assert (await _request(base + path, "OPTIONS", _preflight(EVIL)))[0] == 403


async def test_with_a_secret_the_operator_endpoints_answer_any_origin_that_brings_a_token():
    with trio.fail_after(20):
        async with running_server(http_port=0, token_secret=SECRET) as (server, _):
            base = server.http_url
            op = tokens.mint_operator(SECRET, 60, time.time())
            status, h = await _request(base + "/presence", headers={"Origin": EVIL, "Authorization": f"Bearer {op}"})
            assert status == 200 and h["access-control-allow-origin"] == "*"
            status, h = await _request(base + "/presence", headers={"Origin": EVIL})
            assert status == 401  # readable by the page, and still refused without a token


async def test_static_files_get_no_cors_headers():
    with trio.fail_after(20):
        async with running_server(http_port=0, allowed_origins=(GAME,)) as (server, _):
            status, h = await _request(server.http_url + "/index.html", headers={"Origin": GAME})
            assert status == 200 and "access-control-allow-origin" not in h
