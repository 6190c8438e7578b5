"""The redirect message (type 12) and the refusal that carries it: an error ``redirect``
first (what clients that predate it see), then the redirect."""

from __future__ import annotations

import msgpack
import pytest

from gamesync.core import clientproto as cp
from gamesync.core import protocol as p
from gamesync.core.errors import ProtocolViolation, Redirect, RoomFull


def test_a_redirect_refusal_is_the_error_then_the_redirect_message() -> None:
    err = Redirect("ws://10.0.0.2:8765/?reservation=abc", "lobby", 10_000)
    assert err.close_code == 4012 and err.code == "redirect"
    first, second = p.pack_refusal(err)
    assert msgpack.unpackb(first) == [10, "redirect", "room 'lobby' is hosted at ws://10.0.0.2:8765/?reservation=abc"]
    assert msgpack.unpackb(second) == [12, "ws://10.0.0.2:8765/?reservation=abc", "lobby", 10_000]
    assert p.parse_server(second) == Redirect("ws://10.0.0.2:8765/?reservation=abc", "lobby", 10_000)


def test_other_refusals_are_the_error_alone() -> None:
    assert p.pack_refusal(RoomFull("full")) == [p.pack_error(RoomFull("full"))]


def test_the_client_protocol_turns_it_into_a_redirected_event() -> None:
    proto = cp.ClientProtocol("lobby", "me")
    evs = proto.receive(p.pack_redirect("wss://h/", "lobby", 5), 0.0)
    assert evs == [Redirect("wss://h/", "lobby", 5)]
    # later versions may append fields
    assert proto.receive(msgpack.packb([12, "ws://h/", "lobby", 5, "extra"]), 0.0) == [Redirect("ws://h/", "lobby", 5)]


@pytest.mark.parametrize("msg", [
    [12, "http://h/", "r", 1],  # not a WebSocket URL
    [12, "ws://h/", "r"],  # no ttl
    [12, "ws://h/", "", 1],  # no room
    [12, 5, "r", 1],
    [12, "ws://h/", "r", -1],
])
def test_bad_redirects_are_protocol_violations(msg: list) -> None:
    with pytest.raises(ProtocolViolation):
        p.parse_server(msgpack.packb(msg))
