"""The error vocabulary: one table of codes, close codes and retries, derived from the classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gamesync.core import delta, errors
from gamesync.core.errors import (
    CLOSE_RETRY,
    DEFERRED_CODES,
    ERRORS,
    GamesyncError,
    GoingAway,
    PayloadError,
    Redirect,
    Unavailable,
    should_retry,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _classes() -> list[type[GamesyncError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, GamesyncError)]


def test_every_error_class_is_in_the_table_with_its_close_code_and_retry():
    for c in _classes():
        assert ERRORS[c.code] == (c.close_code, c.retry), c
        assert CLOSE_RETRY[c.close_code] is c.retry, c
    assert set(ERRORS) == {c.code for c in _classes()}


def test_bugs_and_configuration_errors_are_the_only_ones_not_retried():
    assert {code for code, (_, retry) in ERRORS.items() if not retry} == {
        "version", "unknown_game", "protocol", "unsupported_data", "too_big"}
    assert not should_retry("protocol") and should_retry("room_full")
    assert should_retry("a_code_from_a_newer_server")


def test_going_away_and_unavailable_defer_a_join_rather_than_refuse_it():
    assert DEFERRED_CODES == {GoingAway.code, Unavailable.code}


def test_payload_error_is_still_importable_from_delta():
    assert delta.PayloadError is PayloadError and issubclass(PayloadError, ValueError)


def test_a_redirect_equals_another_with_the_same_url_room_and_ttl():
    a = Redirect("ws://h/", "lobby", 5)
    assert a == Redirect("ws://h/", "lobby", 5, reason="other words") and hash(a) == hash(Redirect("ws://h/", "lobby", 5))
    assert a != Redirect("ws://h/", "lobby", 6) and (a.code, a.close_code) == ("redirect", 4012)


def _doc_table(after: str) -> list[list[str]]:
    """The rows of the first table in docs/protocol.md from the line ``after`` on, past its header."""
    text = DOC.read_text()
    rows = []
    for line in text[text.index(after):].splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def test_docs_print_the_same_table():
    rows = _doc_table("**Error codes, close codes and retries**")
    got = {re.sub(r"`", "", code): (int(close), {"yes": True, "no": False}[retry.split()[0]]) for code, close, retry in rows}
    assert got == ERRORS
    assert {code.strip("`") for code, _, retry in rows if "deferred" in retry} == DEFERRED_CODES


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_code_is_in_the_docs_main_table_with_its_close_code(code: str):
    if code == "forbidden":  # never sent: an HTTP 403 before the WebSocket opens (listed below the table)
        return
    rows = {r[0].strip("`"): r[1] for r in _doc_table("| `code` | Close code | When |")}
    assert rows[code].split()[0] == str(ERRORS[code][0])
