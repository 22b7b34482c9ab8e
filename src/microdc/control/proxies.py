"""Whose `X-Forwarded-*` headers to believe: only a direct peer inside `trusted_proxies` (rule
``xff-trusted-proxies``). Pure functions, no web framework.

From any other peer — loopback included — the headers are ignored, so a client cannot pick the IP that
login rate limits and the audit log see. Behind trusted proxies the client is the right-most address in
`X-Forwarded-For` that is not itself a trusted proxy (what uvicorn's ProxyHeadersMiddleware computes, so
applying both gives the same answer).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=32)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(host: str, cidrs: tuple[str, ...]) -> bool:
    if not cidrs or not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks(cidrs))


def _host_of(item: str) -> str:
    """An X-Forwarded-For element without a port (``1.2.3.4:5``, ``[::1]:5``)."""
    item = item.strip().strip('"')
    if item.startswith("["):
        return item[1 : item.find("]")] if "]" in item else item
    if item.count(":") == 1:
        return item.split(":", 1)[0]
    return item


def client_address(peer: str, forwarded_for: Iterable[str], cidrs: tuple[str, ...]) -> str:
    """The address to rate-limit and audit: the direct peer, unless the peer is a trusted proxy."""
    if not is_trusted(peer, cidrs):
        return peer
    hops = [_host_of(h) for value in forwarded_for for h in value.split(",") if h.strip()]
    nearest = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # garbage in the chain: the trusted hop that passed it on is the client
        if not is_trusted(hop, cidrs):
            return hop
        nearest = hop
    return nearest
