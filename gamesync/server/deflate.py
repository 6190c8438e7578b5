"""permessage-deflate (RFC 7692) with the clients that offer it (browsers do), through
wsproto's extension (``wsproto.extensions.PerMessageDeflate``): no codec is written here.

- **Negotiated** at the upgrade with no context takeover either way, so a connection holds
  no compressor or decompressor between messages (memory per connection stays bounded) and
  a message compresses to the same bytes for every client.
- **Outbound**: a frame is compressed (RSV1) when what it carries besides the snapshot
  payload (its events: a notes resync, a chat backlog, a big game event) is at least
  ``threshold`` bytes; every other frame, the plain snapshots among them (their payload is
  compressed once per tick already), goes out as before, without RSV1. The same message
  for several clients (a big event broadcast to a room) is compressed once: the frames of
  the last few messages are kept by content (``SharedDeflate``).
- **Inbound**: compressed messages take wsproto's path (the fast frame reader hands a
  stream over at its first frame with RSV1), and inflate no further than the message
  limit (``BoundedDeflate``): a deflate bomb is refused with 1009 before it grows.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Any

from wsproto import WSConnection
from wsproto.events import BytesMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

#: frames of this many recent compressed messages kept for the next client that gets the same
SHARED_MESSAGES = 4


class BoundedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, with inbound messages inflated to at most ``max_message``."""

    def __init__(self, max_message: int) -> None:
        super().__init__(client_no_context_takeover=True, server_no_context_takeover=True)
        self.max_message = max_message
        self._inflated = 0  # bytes of the current inbound message so far

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        try:
            out: bytes = self._decompressor.decompress(bytes(data), self.max_message - self._inflated + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_message or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if fin:
            self._inflated = 0
        result: bytes | CloseReason | None = super().frame_inbound_complete(proto, fin)
        return result


class SharedDeflate:
    """The server's permessage-deflate: the threshold, the recent compressed frames, counters."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._frames: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()
        self.frames = 0  # frames sent compressed
        self.compressed = 0  # of which compressed here (the others reused a frame)
        self.bytes_in = 0  # their messages' size
        self.bytes_out = 0  # their frames' size

    def extension(self, max_message: int) -> BoundedDeflate:
        """What to accept an upgrade with (one per connection: it holds that connection's state)."""
        return BoundedDeflate(max_message)

    def frame(self, ws: WSConnection, ext: PerMessageDeflate, payload: bytes) -> bytes:
        """``payload`` as one compressed frame for ``ws`` (which negotiated ``ext``): wsproto
        frames it, unless a client with the same window size just got the same message."""
        key = (ext.server_max_window_bits, payload)
        frame = self._frames.get(key)
        if frame is None:
            frame = ws.send(BytesMessage(payload))
            self._frames[key] = frame
            if len(self._frames) > SHARED_MESSAGES:
                self._frames.popitem(last=False)
            self.compressed += 1
        self.frames += 1
        self.bytes_in += len(payload)
        self.bytes_out += len(frame)
        return frame

    def stats(self) -> dict[str, int]:
        return {"frames": self.frames, "compressed": self.compressed, "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out}


class Deflating:
    """One connection's side of it, once negotiated (``WsConn.deflate``)."""

    __slots__ = ("shared", "ws", "ext")

    def __init__(self, shared: SharedDeflate, ws: WSConnection, ext: PerMessageDeflate) -> None:
        self.shared = shared
        self.ws = ws
        self.ext = ext

    def parts(self, parts: list[bytes], events: bytes) -> list[bytes]:
        """A frame's parts (header first, then its message), compressed into one frame when its
        ``events`` reach the threshold; else as they are."""
        if len(events) < self.shared.threshold:
            return parts
        return [self.shared.frame(self.ws, self.ext, b"".join(parts[1:]))]
