"""The server's HTTP side: health, metrics, the room list and the browser demo's files.

Who may read what is in docs/security.md ("The HTTP side"): the endpoints that name players
or describe the cluster (/presence, /nodes, /stats) answer operators only; the lobby
(/rooms, /metrics) answers anyone unless ``public_lobby`` is off.

An ASGI app (Starlette) served by Hypercorn on trio, in the server's own nursery, on its own
port. Both are well-kept libraries that already do HTTP/1.1 (and h2), keep-alive, range
requests, content types and path safety for static files; none of that is written here.
``/metrics`` is Prometheus's text format from prometheus_client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sized
from pathlib import Path
from typing import Any, Protocol

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import tokens
from ..core.errors import Unauthorized
from ..core.protocol import PROTOCOL_VERSION, SUPPORTED_VERSIONS
from .config import ServerConfig
from .cors import CorsMiddleware, CorsPolicy
from .netaddr import check_bindable, is_loopback, proxied

logger = logging.getLogger(__name__)

#: the browser demo: in an installed package, the copy its build put there (setup.py: the
#: pages and their JavaScript dependency); else, from a checkout (an editable install), demo/
_PACKAGED_DEMO = Path(__file__).resolve().parents[1] / "demo"
DEMO_DIR = _PACKAGED_DEMO if _PACKAGED_DEMO.is_dir() else Path(__file__).resolve().parents[2] / "demo"


class ServerView(Protocol):
    """What the HTTP side reads of the server (gamesync.server.app.Server)."""

    config: ServerConfig
    connections: int
    port: int | None
    rooms: Sized

    @property
    def stopping(self) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    async def lobby(self) -> list[dict[str, Any]]: ...

    async def cluster_view(self, what: str) -> Any: ...


class _Collector:
    """Prometheus metrics read from the server's own counters at scrape time."""

    def __init__(self, server: ServerView) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        st = self.server.stats()
        yield GaugeMetricFamily("gamesync_connections", "Open connections", value=st["connections"])
        yield GaugeMetricFamily("gamesync_rooms", "Rooms running", value=len(st["rooms"]))
        clients = GaugeMetricFamily("gamesync_room_clients", "Clients in a room", labels=["room", "game"])
        tick_ms = GaugeMetricFamily("gamesync_room_tick_ms", "Tick time in ms (mean, p99)",
                                    labels=["room", "stat"])
        ticks = CounterMetricFamily("gamesync_room_ticks", "Ticks run", labels=["room"])
        overruns = CounterMetricFamily("gamesync_room_tick_overruns", "Ticks longer than the period", labels=["room"])
        out = CounterMetricFamily("gamesync_room_bytes_out", "Bytes written to clients", labels=["room"])
        for r in st["rooms"]:
            room = r["room"]
            clients.add_metric([room, r["game"]], r["clients"])
            tick_ms.add_metric([room, "mean"], r["tick_ms_mean"])
            tick_ms.add_metric([room, "p99"], r["tick_ms_p99"])
            ticks.add_metric([room], r["ticks"])
            overruns.add_metric([room], r["overruns"])
            out.add_metric([room], r["bytes_out"])
        yield from (clients, tick_ms, ticks, overruns, out)


def operator_refusal(request: Request, secret: bytes | None) -> str | None:
    """Why ``request`` may not read an operator endpoint, or None. With a secret: it needs
    ``Authorization: Bearer`` and an operator token (``gamesync token --operator``). Without
    one (development mode): only a caller on this machine, directly (not through a proxy)."""
    if secret is None:
        peer = request.client.host if request.client is not None else ""
        if is_loopback(peer) and not proxied(k.encode("latin-1") for k in request.headers):
            return None
        return "operator endpoints of a server without a secret answer local callers only"
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return "an operator token is required: Authorization: Bearer $(gamesync token --operator)"
    try:
        tokens.verify_operator(secret, credential.strip(), time.time())
    except Unauthorized as e:
        return e.reason
    return None


def _refused(reason: str) -> JSONResponse:
    return JSONResponse({"error": "unauthorized", "reason": reason}, status_code=401,
                        headers={"www-authenticate": 'Bearer realm="gamesync operator"'})


def _endpoint(server: ServerView) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The /api/server handler."""
    cfg = server.config
    trusted_hosts = cfg.trusted_hosts()

    async def endpoint(request: Request) -> JSONResponse:
        """Where the game's WebSocket is: ``public_url`` if set, else this server's scheme and
        port on the request's host when that host is one of ``trusted_hosts`` (never a host
        a request alone names: a Host header relayed by a proxy or a cache would steer the
        page elsewhere), else ``url`` is null and the page uses its own host with ``scheme``
        and ``port``. ``urls`` adds the other live nodes of a cluster. The demo pages read
        this before they connect."""
        scheme = "wss" if cfg.ssl_context is not None else "ws"
        url = cfg.public_url
        host = (request.url.hostname or "").lower()
        if url is None and host in trusted_hosts:
            url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{server.port}/"
        # in a cluster, the other live nodes too: a page whose node dies reconnects through them
        others = [n["url"] for n in await server.cluster_view("nodes")
                  if isinstance(n, dict) and n.get("url") and not n.get("draining")]
        urls = ([url] if url else []) + [u for u in others if u != url]
        return JSONResponse({"url": url, "urls": urls, "scheme": scheme, "port": server.port,
                             "protocol": PROTOCOL_VERSION, "protocols": list(SUPPORTED_VERSIONS),
                             "tick_rate": cfg.tick_rate,
                             "game": cfg.default_game})

    return endpoint


#: the JSON endpoints anyone may read, and those for operators (see ``build_app``)
PUBLIC_PATHS = ("/health", "/api/server")
LOBBY_PATHS = ("/rooms", "/metrics")
OPERATOR_PATHS = ("/stats", "/presence", "/nodes")


def cors_policy(cfg: ServerConfig) -> CorsPolicy:
    """CORS for the JSON endpoints, from the WebSocket's Origin allowlist (gamesync.server.cors)."""
    lobby_public = cfg.public_lobby
    return CorsPolicy(cfg.allowed_origins, PUBLIC_PATHS + (LOBBY_PATHS if lobby_public else ()),
                      OPERATOR_PATHS + (() if lobby_public else LOBBY_PATHS), cfg.token_secret is not None)


def build_app(server: ServerView, demo_dir: Path | None) -> Any:
    started = time.time()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(server))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": not server.stopping, "connections": server.connections,
                             "rooms": len(server.rooms), "uptime_s": round(time.time() - started, 1)},
                            status_code=503 if server.stopping else 200)

    cfg = server.config
    Handler = Callable[[Request], Awaitable[Response]]

    def operators(handler: Handler, only: bool = True) -> Handler:
        """``handler`` behind the operator check (``only``: else it answers anyone)."""
        if not only:
            return handler

        async def guarded(request: Request) -> Response:
            why = operator_refusal(request, cfg.token_secret)
            return _refused(why) if why is not None else await handler(request)

        return guarded

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(server.stats())

    async def rooms(request: Request) -> JSONResponse:
        return JSONResponse(await server.lobby())  # in a cluster: every node's rooms, from Redis

    async def cluster(request: Request) -> JSONResponse:
        return JSONResponse(await server.cluster_view(request.url.path.strip("/")))

    endpoint = _endpoint(server)
    lobby_only = not cfg.public_lobby
    routes: list[Any] = [Route("/health", health), Route("/api/server", endpoint),
                         Route("/metrics", operators(metrics, lobby_only)),
                         Route("/rooms", operators(rooms, lobby_only)),
                         Route("/stats", operators(stats)), Route("/presence", operators(cluster)),
                         Route("/nodes", operators(cluster))]
    if demo_dir is not None and demo_dir.is_dir():
        routes.append(Mount("/", app=StaticFiles(directory=demo_dir, html=True), name="demo"))
    return CorsMiddleware(Starlette(routes=routes), cors_policy(cfg))


async def serve_http(server: ServerView, host: str, port: int, demo_dir: Path | None,
                     task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the HTTP side until cancelled; ``task_status`` gets its base URL."""
    cfg = HypercornConfig()
    cfg.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    cfg.accesslog = None
    cfg.errorlog = logger
    cfg.graceful_timeout = 0.5
    app = build_app(server, demo_dir)
    check_bindable(host, port, "HTTP", "http_port")  # Hypercorn's own bind error would not say which port
    async with trio.open_nursery() as n:
        binds = await n.start(hypercorn_serve, app, cfg)
        url = binds[0]
        logger.info("HTTP on %s/ (health, metrics, rooms%s)", url,
                    f", files of {demo_dir}" if demo_dir is not None and demo_dir.is_dir() else "")
        if demo_dir is not None and (demo_dir / "index.html").is_file():
            logger.info("demo: open %s/ in a browser (the notes pad: %s/notes.html)", url, url)
            if not (demo_dir / "node_modules" / "@msgpack" / "msgpack").is_dir():
                logger.warning("demo: %s has no node_modules: run `npm ci --prefix %s` or the pages cannot "
                               "load their msgpack library", demo_dir, demo_dir)
        task_status.started(url)
