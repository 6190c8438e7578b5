"""TLS in memory: an ``ssl.SSLObject`` between the socket's bytes and the WebSocket's, so the
room keeps reading and writing the socket without awaiting."""

from __future__ import annotations

import ssl

from ..core.errors import ProtocolViolation


class TlsLayer:
    """The server side of one TLS connection, sans I/O: records in, plaintext out, and back."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self._in, self._out, server_side=True)

    def handshake(self) -> bool:
        """One step of the handshake: True once it is done; False when it needs the peer's
        next bytes (``incoming``). Either way, send ``outgoing()`` first. ProtocolViolation if
        it failed (``outgoing()`` then holds the alert, if any)."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as e:
            raise ProtocolViolation(f"TLS handshake failed: {e.reason or e}") from None
        return True

    def incoming(self, data: bytes) -> None:
        self._in.write(data)

    def outgoing(self) -> bytes:
        return self._out.read()

    def seal(self, data: bytes) -> bytes:
        """Plaintext to TLS records."""
        if data:
            self.obj.write(data)
        return self._out.read()

    def unseal(self, data: bytes) -> bytes:
        """TLS records to plaintext (possibly empty: a partial record). Raises
        ``ssl.SSLZeroReturnError`` on close_notify."""
        self._in.write(data)
        out = []
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                raise
            except ssl.SSLError as e:
                raise ProtocolViolation(f"bad TLS data: {e.reason or e}") from None
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)
