"""CORS for the HTTP side's JSON endpoints, from the WebSocket's Origin allowlist.

A game's page on another origin may read the lobby (and, with an operator token, the
operator endpoints) when its Origin is one the WebSocket accepts (``allowed_origins``):
the answer names that origin in ``Access-Control-Allow-Origin``. An Origin off the list
gets no CORS header at all (the browser keeps the answer from the page) and its preflight
is refused. With no allowlist (any origin may connect) the public endpoints answer ``*``;
so do the operator endpoints when they need a bearer token, but never those of a server
without a secret, which trust callers on this machine, a browser's pages among them.

No cookies are involved (operator tokens go in ``Authorization``), so credentials are never
allowed. Static files are not touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: what a preflight may ask for
ALLOW_METHODS = b"GET, HEAD, OPTIONS"
ALLOW_HEADERS = b"authorization"
#: seconds a browser may cache a preflight's answer
PREFLIGHT_MAX_AGE = b"600"


class CorsPolicy:
    """Which origin, if any, a request to one of the JSON endpoints is answered for."""

    def __init__(self, allowed: Collection[str] | None, public: Collection[str], operator: Collection[str],
                 operators_need_token: bool) -> None:
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.public = frozenset(public)
        #: operator endpoints answered for any origin (no allowlist) only behind a token
        self.operator = frozenset(operator)
        self.operators_need_token = operators_need_token

    def covers(self, path: str) -> bool:
        return path in self.public or path in self.operator

    def allow_origin(self, path: str, origin: str | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin`` asking for ``path`` (None:
        no header: the page may not read the answer)."""
        if origin is None or not self.covers(path):
            return None
        if self.allowed is not None:
            return origin.encode("latin-1") if origin in self.allowed else None
        if path in self.public or self.operators_need_token:
            return b"*"
        return None


class CorsMiddleware:
    """An ASGI middleware applying a ``CorsPolicy`` to HTTP requests (preflights answered here)."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.policy.covers(path):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        allow = self.policy.allow_origin(path, origin)
        if scope["method"] == "OPTIONS":
            await _preflight(send, allow, origin is None)
            return
        if allow is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"access-control-allow-origin", allow))
                if allow != b"*":
                    headers.append((b"vary", b"Origin"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return bytes(v).decode("latin-1")
    return None


async def _preflight(send: Send, allow: bytes | None, no_origin: bool) -> None:
    """204 with what may be asked for an allowed origin; 403 with no CORS header for another
    one; a plain 204 for an OPTIONS that names no origin (not a browser's preflight)."""
    headers = [(b"allow", ALLOW_METHODS), (b"content-length", b"0"), (b"vary", b"Origin")]
    if allow is not None:
        headers += [(b"access-control-allow-origin", allow), (b"access-control-allow-methods", ALLOW_METHODS),
                    (b"access-control-allow-headers", ALLOW_HEADERS),
                    (b"access-control-max-age", PREFLIGHT_MAX_AGE)]
    status = 204 if allow is not None or no_origin else 403
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
