"""bench/delayproxy.py: every byte arrives, in order, no sooner than the added delay."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("delayproxy", ROOT / "bench" / "delayproxy.py")
assert spec is not None and spec.loader is not None
delayproxy = importlib.util.module_from_spec(spec)
sys.modules["delayproxy"] = delayproxy
spec.loader.exec_module(delayproxy)


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)


async def test_the_proxy_delays_each_direction_by_half_the_rtt_and_keeps_order():
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            listeners = await n.start(trio.serve_tcp, _echo, 0)
            port = listeners[0].socket.getsockname()[1]
            proxy_port = await n.start(delayproxy.serve, 0, ("127.0.0.1", port), 80.0, 20.0, None, 7)
            stream = await trio.open_tcp_stream("127.0.0.1", proxy_port)
            sent = b"".join(i.to_bytes(4, "big") for i in range(20_000))
            got = bytearray()
            t0 = trio.current_time()
            first_at = None
            async with stream:
                async with trio.open_nursery() as io:
                    async def write() -> None:
                        for k in range(0, len(sent), 997):  # many small writes
                            await stream.send_all(sent[k:k + 997])
                    io.start_soon(write)
                    while len(got) < len(sent):
                        got += await stream.receive_some(65536)
                        first_at = first_at if first_at is not None else trio.current_time() - t0
            assert bytes(got) == sent
            assert first_at is not None and 0.080 <= first_at < 0.080 + 0.020 + 0.15
            n.cancel_scope.cancel()
