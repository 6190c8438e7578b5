"""Command line: ``gamesync serve`` and ``gamesync bots``. Parses args, sets up logging, runs trio."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from . import __version__, usage


def _secret(cmd: str, path: str | None) -> bytes | None:
    """The secret from ``--secret-file`` or GAMESYNC_SECRET (None: neither is set); a set but
    unusable one ends the command with one line on stderr and status 2."""
    from .tokens import SecretError, load_secret

    try:
        return load_secret(path)
    except SecretError as e:
        print(f"gamesync {cmd}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> int:
    from .games import builtin_games
    from .memtune import calm_gc, keep_freed_memory
    from .server import Server, ServerConfig
    from .server.netaddr import is_loopback_host
    from .tokens import SECRET_ENV

    log = logging.getLogger("gamesync")
    keep_freed_memory()
    calm_gc()
    usage.check_serve(args, builtin_games())
    secret = _secret("serve", args.secret_file)
    ssl_context = usage.ssl_context(args.certfile, args.keyfile)
    if secret is None and not (args.insecure_dev or is_loopback_host(args.host)):
        raise usage.UsageError(f"refusing to serve {args.host} without join tokens: set {SECRET_ENV} or --secret-file, "
                         "or pass --insecure-dev to allow anonymous joins")
    cfg = ServerConfig(host=args.host, port=args.port, tick_rate=args.tick_rate, games=builtin_games(),
                       default_game=args.game,
                       game_options=_game_options(args), stats_interval_s=args.stats_interval,
                       stats_file=args.stats_file, token_secret=secret, insecure_dev=args.insecure_dev,
                       public_hosts=tuple(args.public_host) if args.public_host else None,
                       public_lobby=not args.private_lobby,
                       allowed_origins=tuple(args.allow_origin) if args.allow_origin else None,
                       ip_limits_skip_loopback=not args.limit_loopback,
                       ssl_context=ssl_context, http_port=None if args.http_port < 0 else args.http_port,
                       redis_url=args.redis, node_id=args.node_id, public_url=args.public_url,
                       redis_prefix=args.redis_prefix, save_interval_s=args.save_interval,
                       drain_timeout_s=args.drain_timeout, input_backlog=args.input_backlog, placement=args.placement,
                       deflate=args.deflate_threshold >= 0, deflate_threshold=max(0, args.deflate_threshold),
                       data_dir=usage.data_dir(args.data_dir, bool(args.redis)))
    if secret is None:
        log.warning("INSECURE DEV MODE: anyone who can reach %s may join any room without a token "
                    "(set %s or --secret-file to require join tokens)%s", args.host, SECRET_ENV,
                    "" if args.insecure_dev else "; connections through a reverse proxy are refused")
    trio.run(_run_until_signal, Server(cfg), args.port_file)
    return 0


def _game_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options every game instance gets: NPC count (each game has its default) and interest."""
    opts: dict[str, Any] = {}
    if args.npcs is not None:
        opts["npcs"] = args.npcs
    if args.no_interest:
        opts["interest"] = False
    return opts


async def _run_until_signal(server: Any, port_file: str | None) -> None:
    """Serve until SIGINT or SIGTERM; then shut down (SIGTERM in a cluster: drain first). A
    second signal while it does stops it at once (Interrupted)."""
    log = logging.getLogger("gamesync")
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as n:

            async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await server.serve(task_status=task_status)
                n.cancel_scope.cancel()  # stopped: no signal left to wait for

            await n.start(serve)
            if port_file:
                with open(port_file, "w") as f:
                    f.write(f"{server.port}\n")
            stopping = None
            async for sig in signals:
                if stopping is not None:
                    raise usage.Interrupted(f"{signal.Signals(sig).name} again while {stopping}")
                if sig == signal.SIGTERM and server.config.redis_url:
                    log.info("SIGTERM: draining (rooms go to other nodes), then exiting")
                    stopping = "draining: stopped at once (rooms not handed over yet come back on other nodes from " \
                               "their last save)"
                    n.start_soon(server.drain)
                else:
                    log.info("signal %s: shutting down", signal.Signals(sig).name)
                    stopping = "shutting down: stopped at once (clients not closed yet lose their connection " \
                               "without a close code)"
                    n.start_soon(server.shutdown)


def _token(args: argparse.Namespace) -> int:
    import time

    from .tokens import SECRET_ENV, mint, mint_operator

    usage.check_token(args)
    secret = _secret("token", args.secret_file)
    if secret is None:
        print(f"gamesync token: no secret: set {SECRET_ENV} or pass --secret-file", file=sys.stderr)
        return 2
    if args.operator:
        print(mint_operator(secret, args.ttl, time.time(), who=args.player or "operator"))
        return 0
    if args.room is None or args.player is None:
        print("gamesync token: a join token needs --room and --player (or --operator for an operator token)",
              file=sys.stderr)
        return 2
    print(mint(secret, args.player, args.room, args.ttl, time.time(), name=args.name))
    return 0


def _publish(args: argparse.Namespace) -> int:
    import json

    from .cluster.publish import ask_player_sync, publish_sync

    usage.check_publish(args)
    try:
        data = json.loads(args.data)
    except ValueError as e:
        print(f"gamesync publish: DATA is not JSON: {e}", file=sys.stderr)
        return 2
    if args.ack or args.reply:
        out = ask_player_sync(args.redis, args.player, data, args.timeout, args.reply, args.redis_prefix)
        print(json.dumps(out))
        return 0 if out["ok"] else 1
    rooms = args.room if args.room is None or len(args.room) > 1 else args.room[0]
    reached = publish_sync(args.redis, data, room=rooms, player=args.player, prefix=args.redis_prefix)
    print(f"published to {reached} {'hosted room(s)' if isinstance(rooms, list) else 'node(s)'}")
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from .cluster.local import run_local_cluster

    usage.check_cluster(args)
    return run_local_cluster(args)


def _bots(args: argparse.Namespace) -> int:
    from .client.swarm import run_swarm
    from .memtune import calm_gc

    calm_gc()
    secret = _secret("bots", args.secret_file)
    usage.check_bots(args)
    return run_swarm(args, secret)


def build_parser() -> argparse.ArgumentParser:
    from .core.inputs import INPUT_BACKLOG
    from .core.protocol import PROTOCOL_VERSION, SUPPORTED_VERSIONS

    ap = usage.Parser(prog="gamesync", description="Realtime authoritative game-state sync server.")
    ap.add_argument("--version", action="version", version=f"gamesync {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for per-tick debug)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the server", description="Run a gamesync server.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port to bind, 0 for any free one (default 8765)")
    s.add_argument("--game", default="arena", help="game for rooms whose join names none (default arena)")
    s.add_argument("--tick-rate", type=float, default=30.0, help="ticks per second (default 30)")
    s.add_argument("--npcs", type=int, default=None,
                   help="NPCs per room (default: the game's, 1000 for arena, 100000 for bigworld)")
    s.add_argument("--no-interest", action="store_true",
                   help="bigworld: send every client every entity (no interest management), for comparison")
    s.add_argument("--input-backlog", type=int, default=INPUT_BACKLOG, metavar="N",
                   help="inputs a client may have waiting after a tick before the tick applies more than one "
                   f"of them (default {INPUT_BACKLOG}; 0: every waiting input at the next tick)")
    s.add_argument("--stats-interval", type=float, default=5.0, help="seconds between stats log lines")
    s.add_argument("--port-file", help="write the bound port to this file once listening")
    s.add_argument("--stats-file", help="rewrite this file with the server's stats (JSON) every stats interval "
                   "and at exit")
    s.add_argument("--secret-file", help="file holding the join-token secret (default: the GAMESYNC_SECRET "
                   "environment variable); with a secret, every join needs a valid token")
    s.add_argument("--insecure-dev", action="store_true",
                   help="allow anonymous joins without a secret on a non-loopback address (development only; "
                   "on 127.0.0.1 this is the default and is logged as a warning)")
    s.add_argument("--http-port", type=int, default=8000,
                   help="port of the HTTP side: health, metrics, rooms and the browser demo (default 8000; "
                   "-1: none)")
    s.add_argument("--certfile", help="PEM certificate chain: serve wss:// (TLS) instead of ws://")
    s.add_argument("--keyfile", help="PEM private key for --certfile (default: in the certfile)")
    s.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                   help="browser Origin allowed to connect, and to read the JSON endpoints (CORS), e.g. "
                        "https://game.example (repeatable; default: any)")
    s.add_argument("--public-host", action="append", metavar="HOST",
                   help="host name pages may reach this server by, for /api/server to answer with a WebSocket URL on "
                   "it (repeatable; default: --host when it is one address, plus localhost on loopback); other "
                   "Host headers get no URL and the page uses its own address")
    s.add_argument("--private-lobby", action="store_true",
                   help="/rooms and /metrics answer operators only (default: anyone; /presence, /nodes and /stats "
                   "always need an operator)")
    s.add_argument("--limit-loopback", action="store_true",
                   help="apply the per-address connection limits (64 open, 20 new/s) to loopback peers too; "
                   "by default they skip 127.0.0.1 and ::1, where local bots, benchmarks and a reverse proxy on "
                   "this host connect from")
    s.add_argument("--redis", metavar="URL", help="join the cluster coordinated by this Redis, e.g. "
                   "redis://127.0.0.1:6379 (default: run alone)")
    s.add_argument("--node-id", help="this node's name in the cluster (default: hostname-port)")
    s.add_argument("--public-url", help="ws:// URL clients are redirected to for rooms hosted here "
                   "(default: from --host and the bound port)")
    s.add_argument("--redis-prefix", default="gs:", help="prefix of the cluster's Redis keys (default gs:)")
    s.add_argument("--deflate-threshold", type=int, default=1024, metavar="BYTES",
                   help="permessage-deflate with clients that offer it: compress a frame whose events reach this "
                        "many bytes (default 1024; -1: never negotiate it)")
    s.add_argument("--placement", choices=("load", "local"), default="load",
                   help="in a cluster, where a new room goes: the least loaded live node, its first player "
                        "redirected there (load, the default), or the node that player reached (local)")
    s.add_argument("--data-dir", metavar="DIR",
                   help="where a server on its own keeps chat history and documents past their rooms (an SQLite "
                        "file; default: $GAMESYNC_DATA_DIR, else ~/.local/share/gamesync; - : in memory only; "
                        "a cluster keeps them in Redis)")
    s.add_argument("--save-interval", type=float, default=2.0,
                   help="seconds between room state saves to Redis for games that opt in, and between "
                        "takes of kept data (default 2)")
    s.add_argument("--drain-timeout", type=float, default=10.0,
                   help="on SIGTERM in a cluster, seconds rooms that cannot be saved get to finish (default 10)")
    s.set_defaults(func=_serve)

    t = sub.add_parser("token", help="mint a join token or an operator token",
                       description="Print a signed join token (a JWT, HS256) for one player and room, or with "
                       "--operator a token for the HTTP side's operator endpoints (/presence, /nodes, /stats).")
    t.add_argument("--room", help="room the token admits to ('*': any room)")
    t.add_argument("--player", help="player id (the token's subject; with --operator: the operator's name)")
    t.add_argument("--operator", action="store_true",
                   help="mint an operator token (send as 'Authorization: Bearer TOKEN'); it admits to no room")
    t.add_argument("--name", help="display name (default: the player id)")
    t.add_argument("--ttl", type=float, default=600.0, help="seconds until it expires (default 600)")
    t.add_argument("--secret-file", help="file holding the secret (default: GAMESYNC_SECRET)")
    t.set_defaults(func=_token)

    pu = sub.add_parser("publish", help="push an event into a room (or every room) of a cluster",
                        description="Publish a game event through the cluster's Redis: clients in the room get "
                        "it as an event. DATA is JSON.")
    pu.add_argument("data", help="the event, as JSON (e.g. '{\"notice\": \"server restarts at 5\"}')")
    pu.add_argument("--redis", required=True, metavar="URL", help="the cluster's Redis, e.g. redis://127.0.0.1:6379")
    where = pu.add_mutually_exclusive_group(required=True)
    where.add_argument("--room", action="append", help="room to send it to (repeatable: each of them)")
    where.add_argument("--player", help="player to send it to, in whichever room they are")
    where.add_argument("--all", action="store_true", help="every room of every node")
    pu.add_argument("--redis-prefix", default="gs:", help="prefix of the cluster's Redis keys (default gs:)")
    pu.add_argument("--ack", action="store_true",
                    help="with --player: send it reliably and wait until a client of the player acks it; print "
                         "the outcome as JSON (exit status 1 if none did within --timeout)")
    pu.add_argument("--reply", action="store_true",
                    help="with --player: a request; wait for a client's reply (implies --ack) and print it")
    pu.add_argument("--timeout", type=float, default=5.0, help="seconds --ack and --reply wait (default 5)")
    pu.set_defaults(func=_publish)

    cl = sub.add_parser("cluster", help="run a local cluster: a redis-server and N nodes on 127.0.0.1",
                        description="Start redis-server on a free port and N gamesync nodes on 127.0.0.1; print "
                        "their URLs; stop everything on Ctrl-C.")
    cl.add_argument("--nodes", type=int, default=2, help="number of nodes (default 2)")
    cl.add_argument("--port", type=int, default=8765, help="first node's WebSocket port (default 8765; then +1...)")
    cl.add_argument("--http-port", type=int, default=8000, help="first node's HTTP port (default 8000; then +1...)")
    cl.add_argument("--redis-port", type=int, default=0, help="redis-server port (default: a free one)")
    cl.add_argument("--npcs", type=int, default=1000, help="NPCs per arena room (default 1000)")
    cl.set_defaults(func=_cluster)

    b = sub.add_parser("bots", help="run a swarm of arena bots against a server",
                       description="Run N arena bots in one process and report the client-side arena fields.")
    b.add_argument("url", help="server URL, e.g. ws://127.0.0.1:8765")
    b.add_argument("--room", default="arena", help="room to join (default arena)")
    b.add_argument("--game", help="game to ask for when the join creates the room (e.g. bigworld)")
    b.add_argument("--count", type=int, default=10, help="number of bots (default 10)")
    b.add_argument("--duration", type=float, default=10.0, help="seconds to run after all bots joined")
    b.add_argument("--warmup", type=float, default=5.0,
                   help="seconds after all joined before measuring (default 5, the ARENA.md warm-up)")
    b.add_argument("--input-rate", type=float, default=30.0, help="inputs per second per bot (default 30)")
    b.add_argument("--ramp", type=float, default=2.0, help="seconds over which bots connect (default 2)")
    b.add_argument("--seed", type=int, default=1, help="random seed for bot behaviour")
    b.add_argument("--no-shared-decode", action="store_true",
                   help="decode every snapshot separately in every bot (no cross-bot memo)")
    b.add_argument("--secret-file", help="mint each bot a join token with this secret (default: "
                   "GAMESYNC_SECRET if set; without either the bots join anonymously)")
    b.add_argument("--reconnect", action="store_true",
                   help="bring lost bots back (backoff, from URL) to resume their seats, e.g. across a cluster "
                   "failover (default: a lost bot stays lost)")
    b.add_argument("--protocol", type=int, choices=SUPPORTED_VERSIONS, default=PROTOCOL_VERSION,
                   help=f"protocol version the bots speak (default {PROTOCOL_VERSION}: 4 with packed record lists "
                        "in view rooms; 4: 3 plus view rooms; 3: baselines from the stream; 2: from acks)")
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
    if not args.verbose:  # its every retry of a Redis that is away: our own log says so once
        logging.getLogger("coredis").setLevel(logging.WARNING)
    return usage.run(args.cmd, args.func, args)
