"""Addresses and headers: loopback peers, wildcard binds, requests that came through a proxy."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

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
