"""The error vocabulary: every protocol error code, the WebSocket close code it comes with, and
whether a client should retry after it; plus the few exceptions that are not protocol errors.

``ERRORS`` (code -> (close code, retry)) and ``CLOSE_RETRY`` (close code -> retry) are derived
from the classes below; docs/protocol.md section 13 prints the same table, and demo/js/errors.js
holds it for the browser client (tests/core/test_errors.py and tests/demo/test_js_client.py check
that all three agree).
"""

from __future__ import annotations


class GamesyncError(Exception):
    """Base error: `code` goes in the protocol `error` message, `close_code` on the WebSocket close.

    ``retry``: a client may connect again after it (with backoff; a redirect at once). False
    for bugs and configuration errors, which the same join only meets again. ``deferred``: a
    join refused with it is "not now" (the server is up but cannot take it yet), so even a
    client that gives up on any other refusal of its join tries it again."""

    code: str = "internal"
    close_code: int = 1011
    retry: bool = True
    deferred: bool = False

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.code)
        self.reason = reason or self.code


class InternalError(GamesyncError):
    """The game's code failed; the client (or the room) it concerned is closed."""

    code = "internal"
    close_code = 1011


class GoingAway(GamesyncError):
    """The server is shutting down."""

    code = "going_away"
    close_code = 1001
    deferred = True


class ProtocolViolation(GamesyncError):
    """Malformed msgpack, unknown message type, wrong fields, or a message out of order."""

    code = "protocol"
    close_code = 1002
    retry = False


class UnsupportedData(GamesyncError):
    """A text frame, or another kind of data the protocol does not carry."""

    code = "unsupported_data"
    close_code = 1003
    retry = False


class RateLimited(GamesyncError):
    """Inbound message or byte rate above the per-client budget."""

    code = "rate_limited"
    close_code = 1008


class MessageTooBig(GamesyncError):
    """An inbound message larger than the server's limit."""

    code = "too_big"
    close_code = 1009
    retry = False


class VersionMismatch(GamesyncError):
    """The client speaks another protocol version."""

    code = "version"
    close_code = 4001
    retry = False


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
    retry = False


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
    """A join without a valid token where one is required (missing, forged, expired, wrong room).
    Retried: the clients join again (the browser one without its resume token)."""

    code = "unauthorized"
    close_code = 4011


class Forbidden(GamesyncError):
    """A connection refused before the WebSocket opens (an Origin not on the allowlist): the
    client gets HTTP 403 with the reason; the close code is never sent."""

    code = "forbidden"
    close_code = 1008


class Redirect(GamesyncError):
    """The room is hosted by another node of the cluster: join it at ``url`` within ``ttl_ms``
    (a seat is held that long). The client gets an ``error`` with code ``redirect``, then a
    ``redirect`` message with where to go, then close 4012; it follows at once, no backoff.

    One class for the whole concept: the server raises it, ``protocol.parse_server`` returns
    it for a ``redirect`` message, ``ClientProtocol`` hands it on as an event and the clients
    raise it to leave for ``url``. Equal when url, room and ttl_ms are."""

    code = "redirect"
    close_code = 4012

    def __init__(self, url: str, room: str, ttl_ms: int, reason: str = "") -> None:
        super().__init__(reason or f"room {room!r} is hosted at {url}")
        self.url = url
        self.room = room
        self.ttl_ms = ttl_ms

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Redirect):
            return NotImplemented
        return (self.url, self.room, self.ttl_ms) == (other.url, other.room, other.ttl_ms)

    def __hash__(self) -> int:
        return hash((self.url, self.room, self.ttl_ms))

    def __repr__(self) -> str:
        return f"Redirect(url={self.url!r}, room={self.room!r}, ttl_ms={self.ttl_ms!r})"


class Unavailable(GamesyncError):
    """The cluster cannot place the room now (Redis unreachable, its host moving): retry later."""

    code = "unavailable"
    close_code = 4013
    deferred = True


# -- not protocol errors: no code goes on the wire for them ------------------------------------


class PayloadError(ValueError):
    """A payload that does not fit the baseline it claims (the client turns it into DesyncError)."""


class PeerClosed(Exception):
    """The peer closed the connection (EOF, reset or a close frame). ``clean``: it said so
    with a close frame (it meant to leave) rather than vanishing (a lost connection)."""

    def __init__(self, why: str, clean: bool = False) -> None:
        super().__init__(why)
        self.clean = clean


class RedisDown(Exception):
    """A Redis call failed or timed out (already logged)."""


class ConfigError(ValueError):
    """A setting the server cannot run with: ``setting`` names it (a ServerConfig field),
    ``value`` is what it was given, ``problem`` says what it must be instead."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(f"{setting}={value!r}: {problem}")
        self.setting, self.value, self.problem = setting, value, problem


class StartupError(Exception):
    """The server could not start as configured (a port in use, a Redis that does not answer);
    ``setting`` names the ServerConfig field to change."""

    def __init__(self, reason: str, setting: str) -> None:
        super().__init__(reason)
        self.reason, self.setting = reason, setting


# -- the table ------------------------------------------------------------------------------------


def _error_classes() -> list[type[GamesyncError]]:
    out, todo = [], list(GamesyncError.__subclasses__())
    while todo:
        c = todo.pop(0)
        out.append(c)
        todo += c.__subclasses__()
    return out


def _tables() -> tuple[dict[str, tuple[int, bool]], dict[int, bool]]:
    errors: dict[str, tuple[int, bool]] = {}
    close: dict[int, bool] = {}
    for c in sorted(_error_classes(), key=lambda c: (c.close_code, c.code)):
        if errors.setdefault(c.code, (c.close_code, c.retry)) != (c.close_code, c.retry):
            raise TypeError(f"error code {c.code!r} defined twice, differently")
        if close.setdefault(c.close_code, c.retry) != c.retry:
            raise TypeError(f"close code {c.close_code} both retried and not")
    return errors, close


#: error code -> (close code, whether a client retries), by close code
ERRORS, CLOSE_RETRY = _tables()
#: error codes of a join refused "not now" (the server is up but cannot take the join yet)
DEFERRED_CODES = frozenset(c.code for c in _error_classes() if c.deferred)


def should_retry(code: str) -> bool:
    """Whether a client connects again after an ``error`` with ``code`` (codes this version
    does not know, from a newer server: yes)."""
    entry = ERRORS.get(code)
    return entry is None or entry[1]
