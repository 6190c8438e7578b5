"""Fast path for the WebSocket data frames gamesync peers exchange, with wsproto behind it.

After the handshake, nearly every frame either side sees is a complete, unfragmented
binary message: one input or one snapshot. wsproto parses those correctly but costs about
20-30 us per frame in its generator pipeline, which at 30 Hz x hundreds of clients is most
of a tick (measured in bench/RESULTS.md). ``FrameReader`` parses exactly that common shape
itself (RFC 6455 section 5.2: FIN + binary opcode, 7/16/64-bit length, masked from clients,
unmasked from servers) and hands the stream to wsproto, from a frame boundary, at the first
frame of any other kind (control, text, fragmented, reserved bits, wrong masking). From
then on wsproto sees every byte, so closes, pings and protocol errors are wsproto's.
"""

from __future__ import annotations

import os
import struct

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameTooBig(Exception):
    """A data frame announces more than the reader's limit."""

    def __init__(self, size: int) -> None:
        super().__init__(f"frame of {size} bytes")
        self.size = size


class FrameReader:
    """Splits a byte stream into binary messages until it meets a frame it does not handle.

    ``feed(data)`` returns ``(messages, rest)``: the payloads of the complete binary frames
    at the front of the stream, and ``None`` or, once an unhandled frame starts, every byte
    from that frame on (give them to wsproto; the reader is then ``done`` and must not be fed).
    Ping and pong frames (FIN, at most 125 bytes) are handled too: ``controls`` counts them
    (for rate limits) and ``ping`` keeps the payload of the newest ping, to be answered.
    """

    __slots__ = ("masked", "max_size", "_buf", "done", "controls", "ping", "too_big")

    def __init__(self, masked: bool, max_size: int) -> None:
        self.masked = masked  # frames from clients are masked, frames from servers are not
        self.max_size = max_size
        self._buf = b""
        self.done = False
        self.controls = 0
        self.ping: bytes | None = None
        self.too_big = 0  # the size of a frame over the limit (set by sockio.recv_frames)

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        i, n = 0, len(buf)
        want_mask = 0x80 if self.masked else 0
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            ln = b1 & 0x7F
            control = b0 in (0x89, 0x8A)  # FIN + ping / pong
            if (b0 != 0x82 and not (control and ln <= 125)) or (b1 & 0x80) != want_mask:
                return self._hand_over(out, buf[i:])
            h = i + 2
            if ln == 126:
                if n - h < 2:
                    break
                ln = _U16.unpack_from(buf, h)[0]
                h += 2
                if ln < 126:  # not the minimal encoding: let wsproto refuse it
                    return self._hand_over(out, buf[i:])
            elif ln == 127:
                if n - h < 8:
                    break
                ln = _U64.unpack_from(buf, h)[0]
                h += 8
                if ln < 0x10000 or ln >> 63:
                    return self._hand_over(out, buf[i:])
            if ln > self.max_size:
                raise FrameTooBig(ln)
            if want_mask:
                end = h + 4 + ln
                if end > n:
                    break
                mask = buf[h:h + 4]
                body = buf[h + 4:end]
                key = (mask * ((ln >> 2) + 1))[:ln]
                payload = (int.from_bytes(body, "little") ^ int.from_bytes(key, "little")).to_bytes(ln, "little")
            else:
                end = h + ln
                if end > n:
                    break
                payload = buf[h:end]
            if control:
                self.controls += 1
                if b0 == 0x89:
                    self.ping = payload
            else:
                out.append(payload)
            i = end
        self._buf = buf[i:] if i < n else b""
        return out, None

    def _hand_over(self, out: list[bytes], rest: bytes) -> tuple[list[bytes], bytes]:
        self.done = True
        self._buf = b""
        return out, rest

    def take_ping(self) -> bytes | None:
        """Payload of the newest unanswered ping (answering only the newest is enough)."""
        p, self.ping = self.ping, None
        return p


def binary_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked binary frame: what a server sends (RFC 6455 section 5.2).

    A FIN + binary opcode byte, then the length in 7, 16 or 64 bits. Building it here costs
    well under a microsecond against about 10 through wsproto's send(); the snapshot path
    sends one per client per tick. Control frames (ping, pong, close) still come from
    wsproto, which tracks the connection's state.
    """
    return binary_header(len(payload)) + payload


_SHORT_HEADERS = [bytes((0x82, n)) for n in range(126)]


def binary_header(n: int) -> bytes:
    """The header of an unmasked binary frame whose payload is ``n`` bytes long."""
    if n < 126:
        return _SHORT_HEADERS[n]
    if n < 0x10000:
        return _HDR16.pack(0x82, 126, n)
    return _HDR64.pack(0x82, 127, n)


def frame_size(n: int, masked: bool = False) -> int:
    """Bytes on the wire of a binary frame with an ``n``-byte payload."""
    return n + (2 if n < 126 else 4 if n < 0x10000 else 10) + (4 if masked else 0)


def masked_binary_frame(payload: bytes, mask: bytes | None = None) -> bytes:
    """One unfragmented binary frame masked with ``mask`` (4 bytes; default a fresh random
    key): what a client sends."""
    n = len(payload)
    if n < 126:
        head = bytes((0x82, 0x80 | n))
    elif n < 0x10000:
        head = _HDR16.pack(0x82, 0xFE, n)
    else:
        head = _HDR64.pack(0x82, 0xFF, n)
    if mask is None:
        mask = os.urandom(4)
    key = (mask * ((n >> 2) + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    return head + mask + body


def header_end(data: bytes) -> int:
    """Index just past the first blank line of an HTTP head, or -1 if not complete."""
    i = data.find(b"\r\n\r\n")
    return i + 4 if i >= 0 else -1


_HDR16 = struct.Struct("!BBH")
_HDR64 = struct.Struct("!BBQ")
