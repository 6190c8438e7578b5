"""Join tokens: who may join which room, signed by the game's backend with a shared secret.

A token is a JWT (RFC 7519) signed with HMAC-SHA256, so any backend can mint one with the
JWT library of its language. Claims: ``sub`` the player id, ``name`` the display name,
``room`` the room it admits to (``"*"``: any room), ``exp`` its expiry (Unix seconds),
``iat`` when it was made. PyJWT checks the signature (constant time), the algorithm (only
HS256 is accepted: no ``alg: none``, no key confusion) and the claims present; this module checks
the claims' types, the expiry against the ``now`` passed in, and the room.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jwt

from .core.errors import Unauthorized
from .core.protocol import MAX_NAME, MAX_ROOM, MAX_TOKEN

ALGORITHM = "HS256"
ANY_ROOM = "*"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
SECRET_ENV = "GAMESYNC_SECRET"
LEEWAY_S = 5.0  # clock skew tolerated on expiry between the backend and this server
#: the ``scope`` claim of an operator token (reads the HTTP endpoints that name players)
OPERATOR_SCOPE = "operator"


@dataclass(frozen=True)
class Grant:
    """What a valid token admits: this player, under this name, to this room."""

    player: str
    name: str
    room: str
    expires: float


def mint(secret: bytes, player: str, room: str, ttl_s: float, now: float, name: str | None = None) -> str:
    """A token admitting ``player`` to ``room`` (or ``ANY_ROOM``) for ``ttl_s`` seconds from ``now``."""
    check_secret(secret)
    if not player or len(player) > MAX_NAME:
        raise ValueError(f"player id must be 1..{MAX_NAME} characters")
    if not room or len(room) > MAX_ROOM:
        raise ValueError(f"room must be 1..{MAX_ROOM} characters")
    return _encode(secret, {"sub": player, "name": name or player, "room": room}, ttl_s, now)


def verify(secret: bytes, token: object, room: str, now: float) -> Grant:
    """The grant in ``token`` for a join to ``room`` at ``now``; Unauthorized otherwise."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
        raise Unauthorized("a join token is required" if token is None else "malformed join token")
    claims, exp = _decode(secret, token, ["sub", "room", "exp"], now, "join token")
    player = _text_claim(claims, "sub", MAX_NAME)
    name = _text_claim(claims, "name", MAX_NAME, default=player)
    granted = _text_claim(claims, "room", MAX_ROOM)
    if granted not in (room, ANY_ROOM):
        raise Unauthorized(f"join token is for room {granted!r}, not {room!r}")
    return Grant(player, name, granted, exp)


def mint_operator(secret: bytes, ttl_s: float, now: float, who: str = "operator") -> str:
    """A token for the operator endpoints of the HTTP side (``Authorization: Bearer ...``);
    it admits to no room."""
    check_secret(secret)
    if not who or len(who) > MAX_NAME:
        raise ValueError(f"operator name must be 1..{MAX_NAME} characters")
    return _encode(secret, {"sub": who, "scope": OPERATOR_SCOPE}, ttl_s, now)


def verify_operator(secret: bytes, token: str, now: float) -> str:
    """The operator named by ``token`` at ``now``; Unauthorized otherwise (a join token is not
    an operator token: it has no ``scope``)."""
    if not 0 < len(token) <= MAX_TOKEN:
        raise Unauthorized("malformed operator token")
    claims, _ = _decode(secret, token, ["sub", "scope", "exp"], now, "operator token")
    if claims.get("scope") != OPERATOR_SCOPE:
        raise Unauthorized("not an operator token")
    return _text_claim(claims, "sub", MAX_NAME)


def _encode(secret: bytes, claims: dict[str, object], ttl_s: float, now: float) -> str:
    """``claims`` signed, issued at ``now`` and valid for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise ValueError("ttl must be positive")
    return jwt.encode({**claims, "iat": int(now), "exp": int(now + ttl_s)}, secret, algorithm=ALGORITHM)


def _decode(secret: bytes, token: str, require: list[str], now: float, what: str) -> tuple[dict[str, object], float]:
    """The claims of ``token`` and its expiry (``what`` names it in refusals): HS256 only, signed with
    ``secret``, with the ``require``d claims, unexpired at ``now`` give or take LEEWAY_S
    (checked here, not against PyJWT's own clock)."""
    try:
        claims: dict[str, object] = jwt.decode(
            token, secret, algorithms=[ALGORITHM],
            options={"require": require, "verify_exp": False, "verify_iat": False})
    except jwt.InvalidSignatureError:
        raise Unauthorized(f"{what} signature does not verify") from None
    except jwt.PyJWTError as e:
        raise Unauthorized(f"invalid {what}: {e}") from None
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp + LEEWAY_S < now:
        raise Unauthorized(f"{what} expired")
    return claims, float(exp)


def _text_claim(claims: dict[str, object], key: str, limit: int, default: str | None = None) -> str:
    value = claims.get(key, default)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise Unauthorized(f"join token claim {key!r} must be a string of 1..{limit} characters")
    return value


class SecretError(ValueError):
    """A secret setting that is there but unusable: empty, blank, too short or unreadable.
    Never read as "no secret": only the absence of every secret setting means that."""


def check_secret(secret: bytes, source: str = "the token secret") -> bytes:
    """``secret`` if it is usable, else SecretError naming ``source`` and what to change."""
    if not secret.strip():
        raise SecretError(f"{source} is empty: give it at least {MIN_SECRET_BYTES} random bytes, e.g. "
                          "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"{source} is {len(secret)} bytes; it must be at least {MIN_SECRET_BYTES}, e.g. "
                          "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    return secret


def load_secret(path: str | None = None) -> bytes | None:
    """The secret from ``path`` (file contents, stripped) or else the GAMESYNC_SECRET variable;
    None only when neither is given. A given but empty, blank, short or unreadable secret is a
    SecretError, so that a deployment whose secret came out empty never runs open."""
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise SecretError(f"cannot read the secret file {path}: {e.strerror or e}") from None
        return check_secret(data.strip(), f"the secret file {path}")
    value = os.environ.get(SECRET_ENV)
    if value is None:
        return None
    return check_secret(value.encode(), SECRET_ENV)
