"""Addresses and the networks settings name (`health_details_from`, `trusted_proxies`):
whether a connection's peer is one of them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_in(remote_addr: str | None, networks: Iterable[Network]) -> bool:
    """Whether a peer address (REMOTE_ADDR, as the WSGI server gives it) is in the networks.

    No header is read here: gunicorn applies its forwarded-allow-ips rules itself, and the
    one header the server trusts (X-Real-IP, clients.py) never decides access."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return False  # a Unix socket or nothing at all: not in any network
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)  # ::ffff:127.0.0.1 on a dual-stack socket
    return any(a in network for a in candidates for network in networks)
