"""Addresses and headers: loopback peers, wildcard binds, requests that came through a proxy;
and what an operator may get wrong about them (ports taken, URLs and origins malformed)."""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..core.errors import StartupError

#: names of this machine's loopback interface as a bind address or a Host header
LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})
#: bind addresses that mean every interface (no one host name)
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
#: request headers a reverse proxy adds (lower case): their presence means the peer address
#: is the proxy's, not the caller's
PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-real-ip",
                           b"x-forwarded-proto"})


@functools.lru_cache(maxsize=1024)
def is_loopback(ip: str) -> bool:
    """Whether a peer address is the loopback (IPv4-mapped IPv6 included)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether a bind address (or name) is this machine's loopback."""
    return host.lower() in LOOPBACK_NAMES or is_loopback(host)


def proxied(header_names: Iterable[bytes]) -> bool:
    """Whether a request carries a header that a reverse proxy adds."""
    return any(name.lower() in PROXY_HEADERS for name in header_names)


# -- what an operator may get wrong: addresses to bind, URLs and origins to configure -----------


def bind_failure(e: OSError, host: str, port: int, what: str, setting: str) -> StartupError:
    """Why ``host``:``port`` (``what`` listens there) could not be bound, naming the setting
    to change: ``setting`` (the port's) for a port that is taken or privileged, ``host`` for an
    address this machine does not have."""
    where = f"cannot listen on {host}:{port} ({what})"
    if e.errno == errno.EADDRINUSE:
        return StartupError(f"{where}: the port is in use (another gamesync serve?)", setting)
    if e.errno == errno.EACCES:
        return StartupError(f"{where}: permission denied (ports below 1024 need privileges)", setting)
    if e.errno == errno.EADDRNOTAVAIL or isinstance(e, socket.gaierror):
        return StartupError(f"{where}: {host} is not an address of this machine", "host")
    return StartupError(f"{where}: {e.strerror or e}", setting)


def check_bindable(host: str, port: int, what: str, setting: str) -> None:
    """StartupError (``bind_failure``) unless a listening socket could bind ``host``:``port``
    now (the way servers bind: SO_REUSEADDR on)."""
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise bind_failure(e, host, port, what, setting) from None


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with ``url`` as a URL of one of ``schemes`` naming a host (None: nothing)."""
    try:
        u = urlsplit(url)
        u.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
    except ValueError as e:
        return f"not a URL ({e})"
    example = f"{schemes[0]}://HOST:PORT"
    if u.scheme not in schemes:
        return f"must start with {' or '.join(s + '://' for s in schemes)}, e.g. {example}"
    if u.scheme != "unix" and not u.hostname:
        return f"names no host, e.g. {example}"
    return None


def origin_problem(origin: str) -> str | None:
    """What is wrong with ``origin`` as an entry of an Origin allowlist (None: nothing). A
    browser sends ``scheme://host[:port]``, lower case, with no path and no default port, and
    the allowlist compares exactly, so anything else would never match."""
    try:
        u = urlsplit(origin)
        port = u.port
    except ValueError as e:
        return f"not an origin ({e})"
    default = {"http": 80, "https": 443}.get(u.scheme)
    if default is None or not u.hostname or "*" in origin or u.username is not None:
        return ("an origin is scheme://host[:port] exactly as a browser sends it, e.g. https://game.example "
                "(http or https, no wildcard)")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    fixed = f"{u.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
    if origin != fixed:
        return (f"a browser sends it as {fixed} (lower case, no path, query or trailing slash, no default "
                "port), and origins are compared exactly")
    return None
