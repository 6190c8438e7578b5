"""A well-behaved client in its own process, for tests/security/test_hostile.py.

    python tests/security/observer.py ws://127.0.0.1:PORT/ --room hostile --seconds 3

Joins the room with gamesync's sans-I/O client protocol (gamesync.core.clientproto) over
trio-websocket, decodes and acknowledges every snapshot, and records when each one arrived.
Once it holds its first state it prints ``READY <client_id>`` on stdout; from then on it
measures until ``--seconds`` have passed or a line (or EOF) arrives on stdin, whichever
comes first, then leaves and prints one JSON line:

- ``snapshots``: snapshots received in the window;
- ``worst_gap_ms``: the longest time between two snapshots (the window's start counts as
  the first point), and ``gaps_ms_p50`` / ``gaps_ms_p99`` / ``gaps_over_100ms``;
- ``tick_continuity``: every snapshot's tick is the previous one's plus one, and
  ``missing_ticks`` counts the ticks skipped;
- ``joined`` / ``left``: client ids from the room's events, to tell which hostile clients
  the server admitted and dropped;
- ``closed``: null, or the close code if the server closed this client (it never should).
"""

from __future__ import annotations

import argparse
import json
import sys

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from gamesync.core import clientproto as cp


def _percentile(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


async def observe(url: str, room: str, name: str, seconds: float, connect_timeout: float) -> dict:
    out: dict = {"snapshots": 0, "worst_gap_ms": None, "tick_continuity": None, "missing_ticks": None,
                 "joined": [], "left": [], "closed": None, "client_id": None}
    times: list[float] = []
    ticks: list[int] = []
    stop = trio.Event()
    window: list[float] = []  # [start, end]

    async def watch_stdin() -> None:
        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        try:
            await stdin.receive_some(1)  # a line or EOF: stop
        finally:
            stop.set()

    async with open_websocket_url(url, message_queue_size=4096, connect_timeout=connect_timeout,
                                  disconnect_timeout=2) as ws:
        proto = cp.ClientProtocol(room, name)
        await ws.send_message(proto.join())
        async with trio.open_nursery() as n:

            async def receive() -> None:
                try:
                    while True:
                        data = await ws.get_message()
                        now = trio.current_time()
                        for ev in proto.receive(data, now):
                            if isinstance(ev, cp.Welcomed):
                                out["client_id"] = ev.welcome.client_id
                            elif isinstance(ev, cp.StateUpdated):
                                if not window:
                                    window.append(now)
                                    print(f"READY {out['client_id']}", flush=True)
                                    n.start_soon(watch_stdin)
                                else:
                                    times.append(now)
                                    ticks.append(ev.state.tick)
                            elif isinstance(ev, cp.PlayerJoined) and window:
                                out["joined"].append(ev.client_id)
                            elif isinstance(ev, cp.PlayerLeft) and window:
                                out["left"].append(ev.client_id)
                        while proto.outbox:
                            await ws.send_message(proto.outbox.pop(0))
                except ConnectionClosed as e:
                    out["closed"] = e.reason.code if e.reason else -1
                    n.cancel_scope.cancel()

            async def deadline() -> None:
                with trio.move_on_after(connect_timeout):
                    while not window:
                        await trio.sleep(0.01)
                if not window:
                    raise RuntimeError("no first snapshot in time")
                with trio.move_on_at(window[0] + seconds):
                    await stop.wait()
                window.append(trio.current_time())
                n.cancel_scope.cancel()

            n.start_soon(receive)
            n.start_soon(deadline)
    if len(window) == 2:
        pts = [window[0]] + times
        gaps = [(b - a) * 1e3 for a, b in zip(pts, pts[1:])]
        steps = [b - a for a, b in zip(ticks, ticks[1:])]
        out.update(
            snapshots=len(times),
            window_s=round(window[1] - window[0], 3),
            worst_gap_ms=round(max(gaps), 1) if gaps else None,
            gaps_ms_p50=round(_percentile(gaps, 0.5), 1),
            gaps_ms_p99=round(_percentile(gaps, 0.99), 1),
            gaps_over_100ms=sum(g >= 100 for g in gaps),
            tick_continuity=bool(ticks) and all(s == 1 for s in steps),
            missing_ticks=sum(s - 1 for s in steps if s > 1),
            first_tick=ticks[0] if ticks else None,
            last_tick=ticks[-1] if ticks else None,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--room", default="hostile")
    ap.add_argument("--name", default="observer")
    ap.add_argument("--seconds", type=float, default=3.0, help="longest measuring window")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    args = ap.parse_args()
    result = trio.run(observe, args.url, args.room, args.name, args.seconds, args.connect_timeout)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
