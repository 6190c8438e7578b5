"""The delay proxies (bench/delayproxy.py, and bench/delayproxy.c built with cc): every byte
arrives, in order, no sooner than the added delay, in both directions, and an end of stream
is passed on after the data before it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
        await stream.send_eof()


def _command(kind: str, tmp: Path, port: int, port_file: Path) -> list[str]:
    if kind == "python":
        return [sys.executable, str(ROOT / "bench" / "delayproxy.py"), "--target", f"127.0.0.1:{port}",
                "--rtt-ms", "80", "--jitter-ms", "20", "--port-file", str(port_file)]
    cc = shutil.which("cc")
    assert cc is not None, "no C compiler: the CI machines have gcc"
    subprocess.run([cc, "-O2", "-Wall", "-Werror", "-o", str(tmp / "delayproxy"), str(ROOT / "bench" / "delayproxy.c")],
                   check=True)
    return [str(tmp / "delayproxy"), str(port_file), "127.0.0.1", str(port), "40000", "10000", "7"]


@pytest.mark.parametrize("kind", ["python", "c"])
async def test_the_proxy_delays_each_direction_by_half_the_rtt_and_keeps_order(tmp_path, kind):
    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            listeners = await n.start(trio.serve_tcp, _echo, 0)
            port = listeners[0].socket.getsockname()[1]
            port_file = tmp_path / "port"
            proxy = subprocess.Popen(_command(kind, tmp_path, port, port_file))
            try:
                while not (port_file.exists() and port_file.read_text().strip()):
                    await trio.sleep(0.02)
                stream = await trio.open_tcp_stream("127.0.0.1", int(port_file.read_text()))
                sent = b"".join(i.to_bytes(4, "big") for i in range(200_000))  # 800 KB, many writes
                got = bytearray()
                t0 = time.monotonic()
                first_at = None
                async with stream:
                    async def write() -> None:
                        for k in range(0, len(sent), 997):
                            await stream.send_all(sent[k:k + 997])
                        await stream.send_eof()
                    n.start_soon(write)
                    while data := await stream.receive_some(65536):
                        got += data
                        first_at = first_at if first_at is not None else time.monotonic() - t0
                assert bytes(got) == sent  # all of it, in order, then the end of stream
                assert first_at is not None and 0.080 <= first_at < 0.080 + 0.020 + 0.2
            finally:
                proxy.terminate()
                proxy.wait(5)
            n.cancel_scope.cancel()
