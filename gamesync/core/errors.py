"""Error hierarchy; every error carries the protocol error code and the WebSocket close code."""

from __future__ import annotations


class GamesyncError(Exception):
    """Base error: `code` goes in the protocol `error` message, `close_code` on the WebSocket close."""

    code: str = "internal"
    close_code: int = 1011

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.code)
        self.reason = reason or self.code


class InternalError(GamesyncError):
    """The game's code failed; the client (or the room) it concerned is closed."""

    code = "internal"
    close_code = 1011


class ProtocolViolation(GamesyncError):
    """Malformed msgpack, unknown message type, wrong fields, or a message out of order."""

    code = "protocol"
    close_code = 1002


class UnsupportedData(GamesyncError):
    """A text frame, or another kind of data the protocol does not carry."""

    code = "unsupported_data"
    close_code = 1003


class RateLimited(GamesyncError):
    """Inbound message or byte rate above the per-client budget."""

    code = "rate_limited"
    close_code = 1008


class MessageTooBig(GamesyncError):
    """An inbound message larger than the server's limit."""

    code = "too_big"
    close_code = 1009


class VersionMismatch(GamesyncError):
    """The client speaks another protocol version."""

    code = "version"
    close_code = 4001


class RoomFull(GamesyncError):
    """The room has no free player slot."""

    code = "room_full"
    close_code = 4002


class ServerFull(GamesyncError):
    """The server is at its connection limit."""

    code = "server_full"
    close_code = 4003


class UnknownGame(GamesyncError):
    """The join asked for a game type this server does not run."""

    code = "unknown_game"
    close_code = 4004


class Timeout(GamesyncError):
    """The peer missed a deadline: handshake, join, heartbeat."""

    code = "timeout"
    close_code = 4008


class SlowConsumer(GamesyncError):
    """The client stopped reading: its socket stayed unwritable past the limit."""

    code = "slow_consumer"
    close_code = 4009


class DesyncError(GamesyncError):
    """A snapshot refers to a baseline the receiver does not hold (client side)."""

    code = "desync"
    close_code = 4010


class Unauthorized(GamesyncError):
    """A join without a valid token where one is required (missing, forged, expired, wrong room)."""

    code = "unauthorized"
    close_code = 4011


class Forbidden(GamesyncError):
    """A connection refused before the WebSocket opens (an Origin not on the allowlist): the
    client gets HTTP 403 with the reason; the close code is never sent."""

    code = "forbidden"
    close_code = 1008


class Redirect(GamesyncError):
    """The room is hosted by another node of the cluster: the client gets an ``error`` with
    code ``redirect``, then a ``redirect`` message with where to go, then close 4012."""

    code = "redirect"
    close_code = 4012

    def __init__(self, url: str, room: str, ttl_ms: int, reason: str = "") -> None:
        super().__init__(reason or f"room {room!r} is hosted at {url}")
        self.url = url
        self.room = room
        self.ttl_ms = ttl_ms
