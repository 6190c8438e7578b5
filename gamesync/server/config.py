"""Server settings with safe defaults; every limit is named here."""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConfigError
from ..core.inputs import DRAIN_TICKS, INPUT_BACKLOG
from ..game import Game
from ..tokens import check_secret
from .netaddr import LOOPBACK_NAMES, WILDCARD_HOSTS, is_loopback_host, origin_problem, url_problem

#: the highest tick rate a server accepts (ticks per second)
MAX_TICK_RATE = 1000.0


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    tick_rate: float = 30.0
    #: ticks of quantised states kept for deltas; 0: about one second at the tick rate
    #: (32 at 30 Hz, never fewer than 8)
    history_ticks: int = 0
    #: clients that hold tick T - lag get their tick-T snapshot against it, so that every
    #: client keeping up shares one payload per tick (0: always the newest acked tick)
    baseline_lag: int = 1
    #: distinct (baseline, reference) payloads built per tick; beyond it a client rides the
    #: newest one it can decode, else the full snapshot (clients choose baselines through
    #: their acks, so this bounds what they can cost)
    max_payloads_per_tick: int = 8
    #: the games rooms may run, by name. Empty by default: the server itself knows no game;
    #: ``gamesync serve`` registers the built-in ones (gamesync.games.builtin_games()), and a
    #: program embedding the server passes its own (or those)
    games: dict[str, Callable[..., Game]] = field(default_factory=dict)
    #: the game of a room whose first join names none
    default_game: str = "arena"
    #: keyword options for every game instance (e.g. {"npcs": 1000})
    game_options: dict[str, Any] = field(default_factory=dict)
    max_rooms: int = 256
    #: an empty room lives this long before it is torn down (seconds)
    room_linger_s: float = 10.0

    #: serve wss:// with this context (a server-side SSLContext with its certificate loaded)
    ssl_context: ssl.SSLContext | None = None

    # who gets in
    #: HMAC secret for join tokens (gamesync.tokens) and operator tokens; None: anonymous
    #: joins (development mode), allowed on a loopback ``host`` alone unless ``insecure_dev``
    token_secret: bytes | None = None
    #: allow anonymous joins (no ``token_secret``) on a non-loopback ``host`` too, and through a
    #: reverse proxy; development only
    insecure_dev: bool = False
    #: browser Origins allowed to connect, and to read the JSON endpoints over CORS (exact
    #: "scheme://host[:port]"); None: any.
    #: Requests without an Origin header (bots, native clients) are not affected.
    allowed_origins: tuple[str, ...] | None = None
    #: connections open at once from one remote address
    max_connections_per_ip: int = 64
    #: new connections per second from one remote address (token bucket)
    connects_per_ip_per_s: float = 20.0
    connects_per_ip_burst: float = 40.0
    #: the two per-address limits above skip loopback peers (127.0.0.0/8, ::1): that is where
    #: a developer's own bots and benchmarks connect from, and where a reverse proxy on the
    #: same host forwards every player from (per-address limits are then the proxy's job)
    ip_limits_skip_loopback: bool = True

    #: a player whose connection drops keeps their seat (client id, entity, applied inputs)
    #: this long for a resume on a new connection; 0: seats go with their connection
    seat_grace_s: float = 10.0

    # connections
    max_connections: int = 4096
    backlog: int = 1024
    handshake_timeout_s: float = 5.0
    join_timeout_s: float = 5.0
    #: a silent client gets a WebSocket ping after this long ...
    heartbeat_s: float = 5.0
    #: ... and is closed after this long with no traffic at all
    idle_timeout_s: float = 15.0
    close_timeout_s: float = 1.0
    shutdown_timeout_s: float = 1.5

    #: negotiate permessage-deflate (RFC 7692) with clients that offer it, without context
    #: takeover; a frame is compressed when its events (what it carries besides the snapshot
    #: payload, compressed already) reach ``deflate_threshold`` bytes (gamesync.server.deflate)
    deflate: bool = True
    deflate_threshold: int = 1024

    # inbound limits
    max_message_bytes: int = 16 * 1024
    recv_chunk_bytes: int = 64 * 1024
    in_msgs_per_s: float = 120.0
    in_msgs_burst: float = 240.0
    in_bytes_per_s: float = 64 * 1024
    in_bytes_burst: float = 128 * 1024
    #: inputs applied per client per tick at most; more wait for the next tick, and a client
    #: with more than 4x this many waiting is closed as flooding
    max_inputs_per_tick: int = 32
    #: the input jitter buffer (core.inputs): a tick applies one input per client, and more
    #: only to leave at most this many waiting (0: every waiting input at the next tick)
    input_backlog: int = INPUT_BACKLOG
    #: a backlog that stood this many ticks in a row gives up one input early
    input_drain_ticks: int = DRAIN_TICKS

    # outbound limits
    #: the kernel's send buffer per client (SO_SNDBUF; Linux doubles it); 0: the kernel's own,
    #: which grows to megabytes. Bounded, a client that stops reading fills it within seconds,
    #: so it skips snapshots and is closed as a slow consumer instead of taking megabytes of
    #: state that grows staler, and a slow link holds at most this much in flight.
    send_buffer_bytes: int = 128 * 1024
    out_bytes_per_s: float = 2 * 1024 * 1024
    out_bytes_burst: float = 512 * 1024
    #: a client whose socket accepts nothing for this long is closed as a slow consumer
    unwritable_timeout_s: float = 3.0
    #: events waiting for a client that is skipping snapshots
    max_pending_events: int = 1024

    #: port of the HTTP side (health, metrics, rooms, the demo's files); None: no HTTP
    http_port: int | None = None
    #: directory served as the browser demo at / (None: gamesync.server.http.DEMO_DIR)
    demo_dir: str | None = None
    #: host names a request's Host header may carry for ``/api/server`` to answer with a
    #: WebSocket URL on that host (the pages then connect there); None: ``host`` itself when it
    #: is a specific address, plus localhost, 127.0.0.1 and ::1 on a loopback bind. A Host
    #: outside the list gets no URL: the page builds one from its own address. ``public_url``,
    #: when set, is the answer whatever the Host.
    public_hosts: tuple[str, ...] | None = None
    #: ``/rooms`` (the lobby) and ``/metrics`` (which names rooms) answer anyone; False: only
    #: operators (see ``docs/security.md``, "The HTTP side")
    public_lobby: bool = True

    #: directory of the SQLite file holding what games keep past their rooms (chat history,
    #: documents: ``Game.keep_state``) when the server runs alone; None: kept in memory, for
    #: the life of the process. A cluster keeps it in Redis and ignores this.
    data_dir: str | None = None

    # cluster (gamesync.cluster): several servers sharing rooms through one Redis
    #: redis://host:port of the cluster; None: this server runs alone
    redis_url: str | None = None
    #: this node's name in the cluster (default: hostname-port)
    node_id: str | None = None
    #: the ws:// or wss:// URL clients are redirected to for rooms hosted here (default: from host and port)
    public_url: str | None = None
    #: prefix of every key and channel, so several clusters can share one Redis
    redis_prefix: str = "gs:"
    #: where a new room goes: "load", the least loaded live node (rooms, clients, tick time),
    #: its first player redirected there; "local", the node that player reached
    placement: str = "load"
    #: seconds between state saves of rooms whose game opts in (Game.save_state)
    save_interval_s: float = 2.0
    #: on SIGTERM, rooms whose game does not save get this long to finish before being handed over
    drain_timeout_s: float = 10.0

    stats_interval_s: float = 5.0
    #: if set, this file is rewritten with ``Server.stats()`` as JSON every interval and at exit
    stats_file: str | None = None

    def __post_init__(self) -> None:
        if self.token_secret is not None:
            check_secret(self.token_secret, "token_secret")
        elif not (self.insecure_dev or is_loopback_host(self.host)):
            raise ValueError(f"refusing to serve {self.host} without join tokens: set token_secret, or "
                             "insecure_dev=True to allow anonymous joins there")
        if self.max_payloads_per_tick < 1:
            raise ValueError("max_payloads_per_tick must be at least 1")
        if self.max_inputs_per_tick < 1 or self.input_backlog < 0 or self.input_drain_ticks < 1:
            raise ValueError("max_inputs_per_tick and input_drain_ticks must be at least 1, input_backlog at least 0")
        self._check_settings()
        if self.history_ticks <= 0:
            self.history_ticks = max(8, math.ceil(self.tick_rate) + 2)

    def _check_settings(self) -> None:
        """ConfigError for the first setting an operator could get wrong that is unusable."""
        for name in ("port", "http_port"):
            port = getattr(self, name)
            if not (port is None and name == "http_port") and not (type(port) is int and 0 <= port <= 65535):
                raise ConfigError(name, port, "a port is 0..65535 (0: any free one)")
        if not (math.isfinite(self.tick_rate) and 0 < self.tick_rate <= MAX_TICK_RATE):
            raise ConfigError("tick_rate", self.tick_rate,
                              f"ticks per second must be above 0 and at most {MAX_TICK_RATE:g} (default 30)")
        for name, zero in (("stats_interval_s", False), ("save_interval_s", False), ("drain_timeout_s", True)):
            value = getattr(self, name)
            if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
                raise ConfigError(name, value, f"must be a number of seconds {'0 or more' if zero else 'above 0'}")
        for name, schemes in (("redis_url", ("redis", "rediss", "unix")), ("public_url", ("ws", "wss"))):
            url = getattr(self, name)
            problem = None if url is None else url_problem(url, schemes)
            if problem is not None:
                raise ConfigError(name, url, problem)
        if not (type(self.deflate_threshold) is int and self.deflate_threshold >= 0):
            raise ConfigError("deflate_threshold", self.deflate_threshold, "a number of bytes, 0 or more")
        if self.placement not in ("load", "local"):
            raise ConfigError("placement", self.placement, 'is "load" (the least loaded node) or "local"')
        for origin in self.allowed_origins or ():
            problem = origin_problem(origin)
            if problem is not None:
                raise ConfigError("allowed_origins", origin, problem)

    @property
    def dev_mode(self) -> bool:
        """Anonymous joins: no secret (on loopback, or by ``insecure_dev``)."""
        return self.token_secret is None

    def trusted_hosts(self) -> frozenset[str]:
        """The Host names ``/api/server`` may build a WebSocket URL on (``public_hosts``)."""
        if self.public_hosts is not None:
            return frozenset(h.lower() for h in self.public_hosts)
        hosts = set()
        if self.host not in WILDCARD_HOSTS:
            hosts.add(self.host.lower())
        if is_loopback_host(self.host):
            hosts.update(LOOPBACK_NAMES)
        return frozenset(hosts)
