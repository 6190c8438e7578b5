"""Join tokens (gamesync.tokens): minting, and every way a token is refused."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from gamesync import tokens
from gamesync.core.errors import Unauthorized

SECRET = b"s" * 64
NOW = 1_800_000_000.0


def _refused(token, room="r", now=NOW, secret=SECRET) -> str:
    with pytest.raises(Unauthorized) as info:
        tokens.verify(secret, token, room, now)
    assert info.value.close_code == 4011 and info.value.code == "unauthorized"
    return info.value.reason


def test_a_minted_token_grants_its_player_name_and_room_until_it_expires():
    tok = tokens.mint(SECRET, "p-17", "lobby", 600, NOW, name="Ann")
    g = tokens.verify(SECRET, tok, "lobby", NOW + 599)
    assert g == tokens.Grant("p-17", "Ann", "lobby", NOW + 600)
    assert tokens.verify(SECRET, tok, "lobby", NOW + 600 + tokens.LEEWAY_S).player == "p-17"  # clock skew
    assert "expired" in _refused(tok, "lobby", now=NOW + 601 + tokens.LEEWAY_S)


def test_the_name_defaults_to_the_player_id_and_any_room_tokens_fit_every_room():
    tok = tokens.mint(SECRET, "p1", tokens.ANY_ROOM, 60, NOW)
    assert tokens.verify(SECRET, tok, "a", NOW).name == "p1"
    assert tokens.verify(SECRET, tok, "b", NOW).room == tokens.ANY_ROOM


def test_missing_malformed_and_oversized_tokens_are_refused():
    assert "required" in _refused(None)
    assert "malformed" in _refused(42)
    assert "malformed" in _refused("")
    assert "malformed" in _refused("x" * 3000)
    assert "invalid" in _refused("not.a.jwt")


def test_a_token_signed_with_another_secret_is_refused():
    tok = tokens.mint(b"t" * 32, "p1", "r", 60, NOW)
    assert "signature" in _refused(tok)


def test_a_tampered_payload_is_refused():
    head, body, sig = tokens.mint(SECRET, "p1", "r", 60, NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "signature" in _refused(f"{head}.{forged}.{sig}")


def test_a_token_for_another_room_is_refused():
    tok = tokens.mint(SECRET, "p1", "red", 60, NOW)
    assert "'red'" in _refused(tok, room="blue")


def test_unsigned_and_other_algorithm_tokens_are_refused():
    claims = {"sub": "p1", "room": "r", "exp": int(NOW + 60)}
    assert "invalid" in _refused(jwt.encode(claims, None, algorithm="none"))
    assert "invalid" in _refused(jwt.encode(claims, SECRET, algorithm="HS512"))


@pytest.mark.parametrize("claims", [
    {"room": "r", "exp": NOW + 60},  # no subject
    {"sub": "p1", "exp": NOW + 60},  # no room
    {"sub": "p1", "room": "r"},  # no expiry
    {"sub": 7, "room": "r", "exp": NOW + 60},
    {"sub": "p1", "room": "r", "exp": NOW + 60, "name": ""},
    {"sub": "p1", "room": "r", "exp": NOW + 60, "name": "n" * 65},
    {"sub": "p1", "room": ["r"], "exp": NOW + 60},
    {"sub": "p1", "room": "r", "exp": "tomorrow"},
])
def test_tokens_with_missing_or_ill_typed_claims_are_refused(claims):
    _refused(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_short_secrets_are_refused_when_minting_and_loading(tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        tokens.mint(b"short", "p", "r", 60, NOW)
    f = tmp_path / "secret"
    f.write_bytes(b"k" * 40 + b"\n")
    assert tokens.load_secret(str(f)) == b"k" * 40
    f.write_bytes(b"short")
    with pytest.raises(ValueError):
        tokens.load_secret(str(f))
    monkeypatch.delenv(tokens.SECRET_ENV, raising=False)
    assert tokens.load_secret() is None
    monkeypatch.setenv(tokens.SECRET_ENV, "e" * 32)
    assert tokens.load_secret() == b"e" * 32
