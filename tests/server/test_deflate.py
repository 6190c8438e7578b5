"""permessage-deflate (gamesync.server.deflate) over real sockets: negotiated with a client
that offers it, never with one that does not; a frame with big events (a notes resync) goes
compressed (RSV1), plain snapshots do not; one big event for many clients is compressed once;
compressed messages from the client are read, and a deflate bomb is refused with 1009."""

from __future__ import annotations

import socket
from typing import Any

import msgpack
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Message, Request
from wsproto.extensions import PerMessageDeflate

from gamesync.client.connection import open_client
from gamesync.core import protocol as p
from gamesync.core.saved import pack_kept
from gamesync.server.storage import SqliteKept
from gs_testkit import HOST, running_server

#: a document that compresses as text does (words, repeated with variation)
WORDS = "the quick brown fox jumps over a lazy dog while five boxing wizards jump quickly".split()
DOC = " ".join(WORDS[(i * 7) % len(WORDS)] + str(i % 13) for i in range(6000))[:40_000]


class DeflateClient:
    """A client over a bare socket and wsproto, offering permessage-deflate (``offer``), that
    records each server frame's RSV1 bit and wire size as it reads it."""

    def __init__(self, stream: trio.SocketStream, offer: bool) -> None:
        self.stream = stream
        self.ext = PerMessageDeflate(client_no_context_takeover=True, server_no_context_takeover=True)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.offer = offer
        self.accepted: AcceptConnection | None = None
        self.frames: list[tuple[bool, int]] = []  # (RSV1, bytes on the wire) of each server frame
        self.messages: list[Any] = []
        self.closed: CloseConnection | None = None
        self._raw = b""

    @classmethod
    async def open(cls, port: int, offer: bool = True) -> DeflateClient:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((HOST, port))
        c = cls(trio.SocketStream(sock), offer)
        await c.stream.send_all(c.ws.send(Request(host=f"{HOST}:{port}", target="/",
                                                  extensions=[c.ext] if offer else [])))
        while c.accepted is None:
            await c._read()
        return c

    async def send(self, msg: Any) -> None:
        await self.stream.send_all(self.ws.send(Message(data=msgpack.packb(msg, use_bin_type=True))))

    async def join(self, room: str, game: str) -> None:
        await self.send([1, p.PROTOCOL_VERSION, room, "deflater", game])
        while not self.messages:
            await self._read()

    async def event(self, key: str, timeout: float = 5.0) -> tuple[Any, bool, int]:
        """The first game event holding ``key``: its value, and its frame's RSV1 and size."""
        with trio.fail_after(timeout):
            while True:
                while self.messages:
                    msg, rsv1, size = self.messages.pop(0)
                    if msg[0] == p.Msg.SNAPSHOT:
                        for ev in p.parse_server(msgpack.packb(msg, use_bin_type=True)).events:
                            if ev[0] == p.Ev.EVENT and isinstance(ev[1], dict) and key in ev[1]:
                                return ev[1][key], rsv1, size
                await self._read()

    async def _read(self) -> None:
        data = await self.stream.receive_some(1 << 20)
        if not data:
            raise ConnectionError("eof")
        if self.accepted is not None:
            self._note_frames(data)
        self.ws.receive_data(data)
        for ev in self.ws.events():
            if isinstance(ev, AcceptConnection):
                self.accepted = ev
                rest = self.ws._h11_connection.trailing_data[0] if hasattr(self.ws, "_h11_connection") else b""
                self._note_frames(rest)
            elif isinstance(ev, BytesMessage):
                self.messages.append((msgpack.unpackb(ev.data, raw=False, strict_map_key=False), *self.frames[-1]))
            elif isinstance(ev, CloseConnection):
                self.closed = ev
                return

    def _note_frames(self, data: bytes) -> None:
        """Walk the server's (unmasked) frame headers in the raw bytes."""
        self._raw += data
        while len(self._raw) >= 2:
            b0, b1 = self._raw[0], self._raw[1] & 0x7F
            hl = 2 + (2 if b1 == 126 else 8 if b1 == 127 else 0)
            if len(self._raw) < hl:
                return
            n = b1 if b1 < 126 else int.from_bytes(self._raw[2:hl], "big")
            if len(self._raw) < hl + n:
                return
            if b0 & 0x0F in (1, 2):
                self.frames.append((bool(b0 & 0x40), hl + n))
            self._raw = self._raw[hl + n:]


def _kept_doc(data_dir: str, room: str) -> None:
    kept = SqliteKept(data_dir)
    kept.offer(room, pack_kept("notes", {"text": DOC, "v": 1}))
    kept.close()


def _extensions(c: DeflateClient) -> str:
    assert c.accepted is not None
    return ", ".join(e.name if hasattr(e, "name") else str(e) for e in c.accepted.extensions)


async def test_a_notes_resync_goes_compressed_to_a_client_that_offers_deflate_and_raw_to_one_that_does_not(
        tmp_path: Any) -> None:
    _kept_doc(str(tmp_path), "pad")
    with trio.fail_after(20):
        async with running_server(data_dir=str(tmp_path)) as (server, url):
            port = server.port
            c = await DeflateClient.open(port)
            assert "permessage-deflate" in _extensions(c)
            await c.join("pad", "notes")
            doc, rsv1, size = await c.event("doc")
            assert doc["text"] == DOC and rsv1
            assert size < len(DOC) / 3, size  # compressed on the wire
            await c.send([6, {"sync": True}])
            doc, rsv1, resync = await c.event("doc")
            assert doc["text"] == DOC and rsv1 and resync < len(DOC) / 3
            # a plain snapshot (its payload compressed already) goes without RSV1
            n = len(c.frames)
            while len(c.frames) < n + 3:
                await c._read()
            assert not any(r for r, _ in c.frames[n:])
            # a client that offers nothing gets the same document, uncompressed
            plain = await DeflateClient.open(port, offer=False)
            assert plain.accepted is not None and not plain.accepted.extensions
            await plain.join("pad", "notes")
            doc, rsv1, raw = await plain.event("doc")
            assert doc["text"] == DOC and not rsv1 and raw > len(DOC)
            print(f"notes resync of {len(DOC)} characters: {raw} bytes raw, {resync} with permessage-deflate")
            # and so does the Python client (trio-websocket offers no extensions)
            async with open_client(url, room="pad", name="py", game="notes") as py:
                async for ev in py.events():
                    if getattr(ev, "data", None) and "doc" in ev.data:
                        assert ev.data["doc"]["text"] == DOC
                        break
            assert server.stats()["deflate"]["frames"] >= 2


async def test_one_big_event_for_several_clients_is_compressed_once(tmp_path: Any) -> None:
    with trio.fail_after(20):
        async with running_server(data_dir=str(tmp_path)) as (server, url):
            cs = [await DeflateClient.open(server.port) for _ in range(3)]
            for c in cs:
                await c.join("bcast", "notes")
                await c.event("doc")
            await trio.sleep(0.3)  # every client keeping up: one shared payload per tick
            before = dict(server.stats()["deflate"])
            await cs[0].send([6, {"op": [DOC[:9000]], "v": 0, "ref": 1}])
            for c in cs:
                op, rsv1, _ = await c.event("op")
                assert rsv1 and op["ops"] == [DOC[:9000]]
            after = server.stats()["deflate"]
            frames, compressed = after["frames"] - before["frames"], after["compressed"] - before["compressed"]
            assert frames >= 3 and compressed < frames, (frames, compressed)


async def test_compressed_messages_from_the_client_are_read_and_a_deflate_bomb_is_refused(tmp_path: Any) -> None:
    with trio.fail_after(20):
        async with running_server(data_dir=str(tmp_path), max_message_bytes=16 * 1024) as (server, url):
            c = await DeflateClient.open(server.port)
            await c.join("chatty", "notes")
            await c.send([6, {"chat": "hello " * 40, "ref": 1}])  # wsproto compresses it (RSV1)
            line, _, _ = await c.event("chat")
            assert line["text"] == "hello " * 40
            # 1 MiB of zeros deflates to about 1 KiB: inflated only up to the 16 KiB limit, then refused
            await c.send([6, {"chat": "\x00" * (1 << 20)}])
            with trio.fail_after(5):
                while c.closed is None:
                    await c._read()
            assert c.closed.code == 1009


async def test_without_deflate_the_server_never_negotiates_it(tmp_path: Any) -> None:
    _kept_doc(str(tmp_path), "pad")
    with trio.fail_after(20):
        async with running_server(data_dir=str(tmp_path), deflate=False) as (server, url):
            c = await DeflateClient.open(server.port)
            assert c.accepted is not None and not c.accepted.extensions
            await c.join("pad", "notes")
            doc, rsv1, size = await c.event("doc")
            assert doc["text"] == DOC and not rsv1 and size > len(DOC)
            assert "deflate" not in server.stats()


def test_the_inflate_limit_stops_a_bomb_before_it_grows_past_the_message_limit() -> None:
    from wsproto.frame_protocol import CloseReason, FrameProtocol, ParseFailed

    from gamesync.server.deflate import BoundedDeflate

    ext = BoundedDeflate(max_message=1000)
    assert ext.accept("permessage-deflate")
    server = FrameProtocol(client=False, extensions=[ext])
    client_ext = PerMessageDeflate()
    client_ext.accept("permessage-deflate")  # the client's side, as if negotiated
    client = FrameProtocol(client=True, extensions=[client_ext])
    server.receive_bytes(client.send_data(b"\x00" * 10_000_000, fin=True))
    with pytest.raises(ParseFailed) as failed:
        list(server.received_frames())
    assert failed.value.code == CloseReason.MESSAGE_TOO_BIG  # wsproto closes with it
    assert ext._inflated <= 1001  # inflated no further than the limit (and one byte to know)
