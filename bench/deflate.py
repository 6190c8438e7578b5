"""Bytes on the wire for a notes-pad resync, with and without permessage-deflate.

    python bench/deflate.py --chars 20000,50000,100000

For each size: a gamesync server (in this process, 127.0.0.1, port 0) runs a notes room whose
document is that many characters of this repository's own docs (English prose and code, the
kind of text a shared pad holds); a client offering permessage-deflate and one offering
nothing each join and ask for the document again (``{"sync": true}``); the wire size of the
frame carrying the document is read from the raw socket. Prints one JSON line per size:
chars, raw_bytes, deflate_bytes, saved_pct, and the server's compression time per resync.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Message, Request
from wsproto.extensions import PerMessageDeflate

from gamesync.core import protocol as p
from gamesync.core.saved import pack_kept
from gamesync.games import builtin_games
from gamesync.server import Server, ServerConfig
from gamesync.server.storage import SqliteKept

ROOT = Path(__file__).resolve().parents[1]


def corpus(chars: int) -> str:
    text = "".join(f.read_text() for f in sorted((ROOT / "docs").glob("*.md")))
    while len(text) < chars:
        text += text
    return text[:chars]


async def resync_frame(port: int, offer: bool) -> int:
    """Wire bytes of the frame that brings the document back after ``{"sync": true}``."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    ws = WSConnection(ConnectionType.CLIENT)
    ext = [PerMessageDeflate(client_no_context_takeover=True, server_no_context_takeover=True)] if offer else []
    await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target="/", extensions=ext)))
    wire, synced, parts = 0, False, []
    while True:
        data = await stream.receive_some(1 << 20)
        wire += len(data)
        ws.receive_data(data)
        for ev in ws.events():
            if isinstance(ev, AcceptConnection):
                join = [1, p.PROTOCOL_VERSION, "pad", "bench", "notes"]
                await stream.send_all(ws.send(Message(data=msgpack.packb(join))))
                wire = 0
            elif isinstance(ev, BytesMessage):
                parts.append(bytes(ev.data))
                if not ev.message_finished:
                    continue
                data, parts = b"".join(parts), []
                if msgpack.unpackb(data, raw=False, strict_map_key=False)[0] != p.Msg.SNAPSHOT:
                    continue
                got = [e for e in p.parse_server(data).events if e[0] == p.Ev.EVENT and "doc" in e[1]]
                if got:
                    if synced:
                        await stream.aclose()
                        return wire
                    await stream.send_all(ws.send(Message(data=msgpack.packb([6, {"sync": True}]))))
                    synced = True
                wire = 0  # count from the frame after the request on


async def one(chars: int) -> dict[str, Any]:
    text = corpus(chars)
    with tempfile.TemporaryDirectory() as data_dir:
        kept = SqliteKept(data_dir)
        kept.offer("pad", pack_kept("notes", {"text": text, "v": 1}))
        kept.close()
        server = Server(ServerConfig(port=0, games=builtin_games(), default_game="notes", data_dir=data_dir,
                                     stats_interval_s=3600))
        async with trio.open_nursery() as n:
            port = await n.start(server.serve)
            raw = await resync_frame(port, offer=False)
            t0 = time.process_time()
            deflated = await resync_frame(port, offer=True)
            st = server.stats()["deflate"]
            n.cancel_scope.cancel()
    return {"chars": chars, "raw_bytes": raw, "deflate_bytes": deflated,
            "saved_pct": round(100 * (1 - deflated / raw), 1), "deflate_frames": st["frames"],
            "client_and_server_cpu_ms": round((time.process_time() - t0) * 1e3, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", default="20000,50000,100000", help="document sizes, comma-separated")
    args = ap.parse_args()
    for chars in (int(c) for c in args.chars.split(",")):
        print(json.dumps(trio.run(one, chars)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
