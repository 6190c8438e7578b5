"""The Python client's connection status (gamesync.client.status), as the JS client reports it:
connecting, connected, reconnecting (with the attempt, its delay and why), offline; and after
``max_attempts`` failed reconnects in a row, offline for good with ReconnectFailed."""

from __future__ import annotations

import pytest
import trio

from gamesync.client import MAX_ATTEMPTS, ReconnectFailed, Status, StatusChanged, open_client
from gamesync.client.connection import Client
from gamesync.client.status import lost_reason
from gamesync.core import clientproto as cp
from gamesync.server.app import Server
from gs_testkit import make_config, running_server, wait_for

FAST = {"backoff_initial": 0.02, "backoff_max": 0.05}  # reconnect attempts every few tens of ms


async def _serve_until(server: Server, stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with trio.open_nursery() as n:
        task_status.started(await n.start(server.serve))
        await stop.wait()
        n.cancel_scope.cancel()


async def _statuses(client: Client, into: list[StatusChanged], task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Every StatusChanged of ``client.events()`` into ``into`` (ReconnectFailed ends it too)."""
    task_status.started()
    try:
        async for ev in client.events():
            if isinstance(ev, StatusChanged):
                into.append(ev)
    except ReconnectFailed:
        into.append(StatusChanged(Status.OFFLINE, reason="events() raised ReconnectFailed"))


async def test_the_status_goes_connecting_connected_reconnecting_connected_offline() -> None:
    seen: list[StatusChanged] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            stop = trio.Event()
            port = await n.start(_serve_until, Server(make_config()), stop)
            async with open_client(f"ws://127.0.0.1:{port}/", room="r", **FAST) as c:
                await n.start(_statuses, c, seen)
                await c.wait_state()
                assert c.status == Status.CONNECTED
                stop.set()  # the server goes away; the client tries again and again
                await wait_for(lambda: sum(s.status == Status.RECONNECTING for s in seen) >= 3, 5, "three attempts")
                assert c.status == Status.RECONNECTING and c.failure is None
                stop = trio.Event()
                await n.start(_serve_until, Server(make_config(port=port)), stop)
                await wait_for(lambda: c.status == Status.CONNECTED and c.connects == 2, 5, "the client to be back")
            stop.set()
    kinds = [s.status for s in seen]
    assert kinds[:2] == [Status.CONNECTING, Status.CONNECTED] and kinds[-2:] == [Status.CONNECTED, Status.OFFLINE], seen
    retries = [s for s in seen if s.status == Status.RECONNECTING]
    assert [s.attempt for s in retries] == list(range(1, len(retries) + 1))  # counted, one more each time
    assert all(0 <= s.delay <= FAST["backoff_max"] for s in retries)
    assert retries[0].reason == "closed by the server (1000 bye)"  # the server closed it, stopping
    assert all(s.reason.endswith("failed: Connection refused") for s in retries[1:]), retries
    assert seen[-1] == StatusChanged(Status.OFFLINE, reason="left")  # it was asked to leave: no failure
    assert c.failure is None


async def test_after_max_attempts_failed_reconnects_it_is_offline_with_reconnect_failed() -> None:
    seen: list[StatusChanged] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            stop = trio.Event()
            port = await n.start(_serve_until, Server(make_config()), stop)
            async with open_client(f"ws://127.0.0.1:{port}/", room="r", max_attempts=3, **FAST) as c:
                await n.start(_statuses, c, seen)
                st = await c.wait_state()
                stop.set()  # and it never comes back
                with pytest.raises(ReconnectFailed) as waited:
                    await c.wait_state(newer_than=st.tick)
                with pytest.raises(ReconnectFailed):
                    await c.send_input([1, 0])
                await wait_for(lambda: seen and seen[-1].reason == "events() raised ReconnectFailed", 2,
                               "events() to raise ReconnectFailed")
    assert [(s.status, s.attempt) for s in seen[2:]] == [
        (Status.RECONNECTING, 1), (Status.RECONNECTING, 2), (Status.RECONNECTING, 3),
        (Status.OFFLINE, 0), (Status.OFFLINE, 0)]
    failure = waited.value
    assert c.failure is failure and isinstance(failure, ReconnectFailed)
    assert "gave up after 3 failed reconnect attempts in a row" in str(failure) and "refused" in str(failure)
    assert seen[-2].reason == str(failure)


async def test_max_attempts_counts_failures_in_a_row_a_good_join_starts_again() -> None:
    """Drops that each end in a good rejoin never add up to max_attempts."""
    with trio.fail_after(15):
        async with running_server() as (server, url), open_client(url, room="r", max_attempts=1, **FAST) as c:
            for i in range(3):
                await c.wait_state()
                for room in server.rooms.values():
                    s = room.sessions.get(c.client_id)
                    if s is not None:
                        s.close(None)
                await wait_for(lambda i=i: c.connects == i + 2 and c.status == Status.CONNECTED, 5, "a rejoin")
            assert c.failure is None


async def test_a_client_that_never_joined_fails_as_before_and_the_default_is_the_js_clients() -> None:
    assert MAX_ATTEMPTS == 8 and Client("ws://127.0.0.1:1/", "r", "me").max_attempts == 8
    with trio.fail_after(10):
        with pytest.raises(Exception, match="could not join"):
            async with open_client("ws://127.0.0.1:1/", room="r", max_attempts=0):
                pass


def test_the_reason_of_a_lost_connection_says_what_happened() -> None:
    from trio_websocket import ConnectionClosed

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as e:
            raise RuntimeError() from e
    except RuntimeError as wrapped:
        assert lost_reason(wrapped, None) == "[Errno 111] Connection refused"  # says nothing itself: its cause
    err = cp.ErrorReceived("timeout", "no input for 15 s")
    assert lost_reason(ConnectionClosed(None), err) == "timeout: no input for 15 s"
    assert lost_reason(ConnectionClosed(None), None) == "connection closed"
    assert lost_reason(None, None) == "connection lost"
