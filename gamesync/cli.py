"""Command line: ``gamesync serve`` and ``gamesync bots``. Parses args, sets up logging, runs trio."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Sequence

import trio

from . import __version__


def _serve(args: argparse.Namespace) -> int:
    from .memtune import keep_freed_memory
    from .server import Server, ServerConfig

    keep_freed_memory()

    cfg = ServerConfig(host=args.host, port=args.port, tick_rate=args.tick_rate, default_game=args.game,
                       game_options={"npcs": args.npcs}, stats_interval_s=args.stats_interval,
                       stats_file=args.stats_file)
    server = Server(cfg)

    async def main() -> None:
        async with trio.open_nursery() as n:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await n.start(server.serve)
                if args.port_file:
                    with open(args.port_file, "w") as f:
                        f.write(f"{server.port}\n")
                async for sig in signals:
                    logging.getLogger("gamesync").info("signal %s: shutting down", signal.Signals(sig).name)
                    await server.shutdown()
                    break

    trio.run(main)
    return 0


def _bots(args: argparse.Namespace) -> int:
    from .client.swarm import run_swarm

    return run_swarm(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gamesync", description="Realtime authoritative game-state sync server.")
    ap.add_argument("--version", action="version", version=f"gamesync {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for per-tick debug)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the server", description="Run a gamesync server.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port to bind, 0 for any free one (default 8765)")
    s.add_argument("--game", default="arena", help="game for rooms whose join names none (default arena)")
    s.add_argument("--tick-rate", type=float, default=30.0, help="ticks per second (default 30)")
    s.add_argument("--npcs", type=int, default=1000, help="NPCs per arena room (default 1000)")
    s.add_argument("--stats-interval", type=float, default=5.0, help="seconds between stats log lines")
    s.add_argument("--port-file", help="write the bound port to this file once listening")
    s.add_argument("--stats-file", help="rewrite this file with the server's stats (JSON) every stats interval "
                   "and at exit")
    s.set_defaults(func=_serve)

    b = sub.add_parser("bots", help="run a swarm of arena bots against a server",
                       description="Run N arena bots in one process and report the client-side arena fields.")
    b.add_argument("url", help="server URL, e.g. ws://127.0.0.1:8765")
    b.add_argument("--room", default="arena", help="room to join (default arena)")
    b.add_argument("--count", type=int, default=10, help="number of bots (default 10)")
    b.add_argument("--duration", type=float, default=10.0, help="seconds to run after all bots joined")
    b.add_argument("--warmup", type=float, default=0.0, help="seconds after all joined before measuring")
    b.add_argument("--input-rate", type=float, default=30.0, help="inputs per second per bot (default 30)")
    b.add_argument("--ramp", type=float, default=2.0, help="seconds over which bots connect (default 2)")
    b.add_argument("--seed", type=int, default=1, help="random seed for bot behaviour")
    b.add_argument("--no-shared-decode", action="store_true",
                   help="decode every snapshot separately in every bot (no cross-bot memo)")
    b.add_argument("--json", action="store_true", help="print one JSON line of results")
    b.add_argument("--no-progress", action="store_true", help="no progress display")
    b.set_defaults(func=_bots)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if getattr(args, "json", False) else logging.INFO
    if args.verbose:
        level = logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return int(args.func(args) or 0)
