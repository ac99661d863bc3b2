"""Which client a request comes from, for polite polling and the reader counts: the
connection's peer, or, when that peer is a proxy in `trusted_proxies` (the bundled nginx, on
this machine), the address the proxy reports in `X-Real-IP`. Without this, every client
behind nginx would be nginx: one polling allowance per User-Agent for all of them, and one
reader per User-Agent in the figures.

Access to `/healthz` details, `/stats` and `/metrics` never reads the header (health.py):
a client that forges it can only spread its own polls over more allowances."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from .networks import Network, peer_in

# Longer than any address written out, so a bigger header is no address.
_MAX_ADDRESS = 64


def client_address(environ: dict[str, Any], proxies: Iterable[Network]) -> str:
    """The client's address: X-Real-IP when a trusted proxy sends a valid one, else the peer."""
    peer = str(environ.get("REMOTE_ADDR", ""))
    reported = environ.get("HTTP_X_REAL_IP")
    if not reported or len(reported) > _MAX_ADDRESS or not peer_in(peer, proxies):
        return peer
    try:
        return str(ipaddress.ip_address(reported.strip()))
    except ValueError:
        return peer
