"""What the command line says to a user who got something wrong: one line on stderr that names
what to change, and the exit status: 2 for a usage error (an option's value, a file it names),
1 for a failure at run time (a port in use, a server or a Redis that does not answer, a second
Ctrl-C). Never a traceback for either: a traceback means a bug of ours.

``Parser`` is argparse's with one-line errors; the ``check_*`` functions check what argparse's
types cannot; ``run`` runs a command and turns what it raises into that line and status.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import trio

from .core.errors import ConfigError, StartupError

#: exit statuses
USAGE, FAILURE = 2, 1
#: seconds ``gamesync bots`` gives the server's port to answer before it starts
BOTS_PROBE_S = 5.0

#: the option of ``gamesync serve`` that sets each ServerConfig field
SERVE_OPTIONS = {
    "host": "--host", "port": "--port", "tick_rate": "--tick-rate", "http_port": "--http-port",
    "redis_url": "--redis", "public_url": "--public-url", "allowed_origins": "--allow-origin",
    "stats_interval_s": "--stats-interval", "save_interval_s": "--save-interval", "drain_timeout_s": "--drain-timeout",
    "token_secret": "--secret-file",
}
#: what to change after a StartupError, by the setting it names
STARTUP_HINTS = {
    "port": "pass another --port, or --port 0 for any free one",
    "http_port": "pass another --http-port (each server on one machine needs its own), or --http-port -1 for none",
    "host": "pass a --host this machine has: 127.0.0.1, 0.0.0.0 (every interface) or one of its addresses",
    "redis_url": "start Redis there, or point --redis at the cluster's Redis",
    # gamesync bots and gamesync cluster
    "url": "is gamesync serve running there? (start it, or fix the URL)",
    "cluster_port": "pass another --port (the nodes take it and the ports after it)",
    "cluster_http_port": "pass another --http-port (the nodes take it and the ports after it), or -1 for none",
    "redis_port": "pass another --redis-port, or leave it out for a free one",
    "redis_server": "install it (apt-get install redis-server) or put it on the PATH",
}


class UsageError(Exception):
    """An option the command cannot use; the message says what to change (exit status 2)."""


class Interrupted(Exception):
    """A second Ctrl-C (or SIGTERM) while the server was stopping: it stopped at once (exit status 1)."""


class Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line (and point to --help) instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(USAGE)


def run(command: str, fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``fn(args)``'s exit status; a mistake or failure it raises becomes one line on stderr and
    its status. What is not one of those (a bug) goes on up, with its traceback."""
    try:
        return int(fn(args) or 0)
    except BaseException as e:  # sorted by explain; the rest is raised again
        said = explain(e)
        if said is None:
            raise
        line, status = said
        print(f"gamesync {command}: {line}", file=sys.stderr)
        return status


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit status for ``exc`` (a group: for the first mistake in it), or None
    when it holds anything else."""
    found = [_explain_one(e) for e in _leaves(exc)]
    if not found or any(f is None for f in found):
        return None
    return next(f for f in found if f is not None)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) groups, leaving out cancellations (what a failure cancels)."""
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    elif not isinstance(exc, trio.Cancelled):
        yield exc


def _explain_one(e: BaseException) -> tuple[str, int] | None:
    from .tokens import SecretError

    if isinstance(e, (UsageError, SecretError)):
        return str(e), USAGE
    if isinstance(e, ConfigError):
        option = SERVE_OPTIONS.get(e.setting, e.setting)
        value = f"{e.value:g}" if isinstance(e.value, float) else e.value
        return f"{option} {value}: {e.problem}", USAGE
    if isinstance(e, StartupError):
        hint = STARTUP_HINTS.get(e.setting)
        return (f"{e.reason}: {hint}" if hint else e.reason), FAILURE
    if isinstance(e, Interrupted):
        return str(e), FAILURE
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", FAILURE
    if type(e).__module__.startswith("coredis"):  # gamesync publish: the Redis it names
        return f"cannot reach Redis: {e}: start Redis there, or point --redis at the cluster's Redis", FAILURE
    return None


# -- checks of the options, by command ---------------------------------------------------------


def _number(option: str, value: float, least: float, inclusive: bool = False, what: str = "a number") -> None:
    if not (math.isfinite(value) and (value >= least if inclusive else value > least)):
        raise UsageError(f"{option} {value:g}: must be {what} {'of at least' if inclusive else 'above'} {least:g}")


def _writable(option: str, path: str | None) -> None:
    """A file the command will write: its directory exists and is writable, it is no directory."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write it there (is {folder} an existing, writable directory?)")


def check_serve(args: argparse.Namespace, games: dict[str, Any]) -> None:
    """What ``gamesync serve`` checks before ServerConfig checks the rest (ConfigError)."""
    if args.game not in games:
        raise UsageError(f"--game {args.game}: no such game; the built-in ones are {', '.join(sorted(games))}")
    if args.npcs is not None:  # None: each game its own default
        _number("--npcs", args.npcs, 0, inclusive=True, what="a whole number")
    _number("--input-backlog", args.input_backlog, 0, inclusive=True, what="a whole number")
    if args.http_port < -1:
        raise UsageError(f"--http-port {args.http_port}: a port is 0..65535 (0: any free one; -1: no HTTP side)")
    _writable("--port-file", args.port_file)
    _writable("--stats-file", args.stats_file)


#: where ``gamesync serve`` keeps kept data by default (one process; a cluster uses Redis)
DATA_DIR_ENV = "GAMESYNC_DATA_DIR"


def data_dir(option: str | None, clustered: bool) -> str | None:
    """The directory of the server's kept data (None: none on disk): ``--data-dir``, ``-`` for
    memory only; by default $GAMESYNC_DATA_DIR, else $XDG_DATA_HOME/gamesync (~/.local/share/
    gamesync). None in a cluster, which keeps it in Redis. Made here if missing; UsageError when
    it cannot be, or cannot be written."""
    if clustered or option == "-":
        return None
    path = option or os.environ.get(DATA_DIR_ENV) or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share"), "gamesync")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--data-dir {path}: cannot be made ({e.strerror}); name another, or - to keep nothing "
                         "on disk") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--data-dir {path}: not writable; name another, or - to keep nothing on disk")
    return path


def ssl_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """The server's TLS context from ``--certfile``/``--keyfile`` (None: plain ws://); each
    thing that can be wrong with them is a UsageError that names it."""
    if certfile is None:
        if keyfile is not None:
            raise UsageError("--keyfile needs --certfile (the certificate chain the key belongs to)")
        return None
    cert = _pem("--certfile", certfile)
    if "CERTIFICATE-----" not in cert:
        raise UsageError(f"--certfile {certfile}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    key = cert if keyfile is None else _pem("--keyfile", keyfile)
    if "PRIVATE KEY-----" not in key:
        raise UsageError(f"--certfile {certfile}: holds no private key: pass it with --keyfile" if keyfile is None
                         else f"--keyfile {keyfile}: holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
    if "ENCRYPTED" in key:
        raise UsageError(f"{'--keyfile ' + keyfile if keyfile else '--certfile ' + certfile}: the private key is "
                         "encrypted; give the server an unencrypted one (e.g. openssl pkey -in KEY -out KEY.plain)")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            raise UsageError(f"the private key in {keyfile or certfile} is not the key of the certificate in "
                             f"{certfile}") from None
        raise UsageError(f"--certfile {certfile}: cannot load the certificate and its key: {e.reason or e}") from None
    return ctx


def _pem(option: str, path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot read it: {e.strerror or e}") from None


def check_bots(args: argparse.Namespace) -> None:
    """The options of ``gamesync bots``, then whether anything answers at the server's address."""
    from .server.netaddr import url_problem

    problem = url_problem(args.url, ("ws",))
    if problem is not None:
        raise UsageError(f"{args.url}: {problem} (the bots speak plain ws://)")
    _number("--count", args.count, 1, inclusive=True, what="a whole number")
    _number("--duration", args.duration, 0)
    _number("--warmup", args.warmup, 0, inclusive=True)
    _number("--input-rate", args.input_rate, 0)
    _number("--ramp", args.ramp, 0, inclusive=True)
    u = urlsplit(args.url)
    try:
        socket.create_connection((u.hostname, u.port or 80), timeout=BOTS_PROBE_S).close()
    except OSError as e:
        raise StartupError(f"cannot connect to {args.url}: {e.strerror or e or 'no answer'}", "url") from None


def check_token(args: argparse.Namespace) -> None:
    from .core.protocol import MAX_NAME, MAX_ROOM

    _number("--ttl", args.ttl, 0)
    for option, value, limit in (("--room", args.room, MAX_ROOM), ("--player", args.player, MAX_NAME),
                                 ("--name", args.name, MAX_NAME)):
        if value is not None and not 0 < len(value) <= limit:
            raise UsageError(f"{option}: must be 1..{limit} characters, not {len(value)}")


def check_publish(args: argparse.Namespace) -> None:
    from .server.netaddr import url_problem

    problem = url_problem(args.redis, ("redis", "rediss", "unix"))
    if problem is not None:
        raise UsageError(f"--redis {args.redis}: {problem}")
    if (args.ack or args.reply) and args.player is None:
        raise UsageError(f"--{'reply' if args.reply else 'ack'} needs --player: only a player's clients answer")
    _number("--timeout", args.timeout, 0)


def check_cluster(args: argparse.Namespace) -> None:
    """The options of ``gamesync cluster``, then whether its ports are free."""
    _number("--nodes", args.nodes, 1, inclusive=True, what="a whole number")
    if args.npcs is not None:  # None: each game its own default
        _number("--npcs", args.npcs, 0, inclusive=True, what="a whole number")
    for option, first in (("--port", args.port), ("--http-port", args.http_port)):
        if first < 1 and not (option == "--http-port" and first == -1):
            raise UsageError(f"{option} {first}: a port is 1..65535")
        if first >= 0 and first + args.nodes - 1 > 65535:
            raise UsageError(f"{option} {first}: the nodes take {first}..{first + args.nodes - 1}, past 65535")
    from .server.netaddr import check_bindable

    if shutil.which("redis-server") is None:
        raise StartupError("redis-server is not installed", "redis_server")
    for i in range(args.nodes):
        check_bindable("127.0.0.1", args.port + i, f"node {i + 1}'s WebSocket", "cluster_port")
        if args.http_port >= 0:
            check_bindable("127.0.0.1", args.http_port + i, f"node {i + 1}'s HTTP side", "cluster_http_port")
    if args.redis_port:
        check_bindable("127.0.0.1", args.redis_port, "redis-server", "redis_port")
