"""wss://: the server terminates TLS itself (certificate from a throwaway CA made by trustme)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
import trio
import trustme
from trio_websocket import open_websocket_url

from gamesync.client.connection import open_client
from gamesync.core import protocol as p
from gs_testkit import HOST, pk, port_of, running_server, wait_for


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def _wss(url: str) -> str:
    return "wss" + url[2:]


async def test_a_client_joins_and_plays_over_wss(server_ctx: Any, client_ctx: Any):
    with trio.fail_after(15):
        async with running_server(ssl_context=server_ctx) as (server, url):
            async with open_websocket_url(_wss(url), ssl_context=client_ctx) as ws:
                await ws.send_message(pk([1, p.PROTOCOL_VERSION, "r", "tls"]))
                w = p.parse_server(await ws.get_message())
                assert isinstance(w, p.Welcome)
                ticks = []
                for seq in range(1, 31):  # a second of play: inputs in, snapshots out
                    s = p.parse_server(await ws.get_message())
                    while not isinstance(s, p.Snapshot):
                        s = p.parse_server(await ws.get_message())
                    ticks.append(s.tick)
                    await ws.send_message(pk([3, seq, [1, 0], s.tick]))
                assert ticks == list(range(ticks[0], ticks[0] + 30))
                assert s.input_ack >= 20


async def test_the_client_library_connects_over_wss_and_resumes(server_ctx: Any, client_ctx: Any):
    with trio.fail_after(15):
        async with running_server(ssl_context=server_ctx, seat_grace_s=5.0) as (server, url):
            async with open_client(_wss(url), room="r", ssl_context=client_ctx, backoff_initial=0.05) as c:
                st = await c.wait_state()
                cid = c.client_id
                await c.send_input([0, 1])
                c._ws._stream.transport_stream.socket.close()  # drop under TLS
                await wait_for(lambda: c.resumes == 1, 5.0, "a resume over wss")
                assert c.client_id == cid
                assert (await c.wait_state(st.tick)).tick > st.tick


def _raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=3) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(4096):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


async def test_plain_ws_or_garbage_to_a_tls_port_is_refused_and_others_carry_on(server_ctx: Any, client_ctx: Any):
    with trio.fail_after(20):
        async with running_server(ssl_context=server_ctx) as (server, url):
            async with open_websocket_url(_wss(url), ssl_context=client_ctx) as ws:
                await ws.send_message(pk([1, p.PROTOCOL_VERSION, "r", "good"]))
                assert isinstance(p.parse_server(await ws.get_message()), p.Welcome)
                plain = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                for junk in (plain, b"\x16\x03\x01\x00\x05hello", b"\x00" * 64):
                    reply = await trio.to_thread.run_sync(_raw_exchange, port_of(url), junk)
                    assert b"HTTP/1.1 101" not in reply  # never upgraded
                await wait_for(lambda: server.connections == 1, 5.0, "the bad connections to be closed")
                for _ in range(5):  # the TLS client plays on
                    assert p.parse_server(await ws.get_message()) is not None
