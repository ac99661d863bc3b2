"""Which client a request is from: the peer, or what a trusted proxy reports."""

from __future__ import annotations

import ipaddress

import pytest

from feedserver.clients import client_address

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))


@pytest.mark.parametrize(
    ("peer", "reported", "proxies", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", LOOPBACK, "203.0.113.7"),
        ("::1", "2001:db8::1", LOOPBACK, "2001:db8::1"),
        ("::ffff:127.0.0.1", " 203.0.113.7 ", LOOPBACK, "203.0.113.7"),
        ("127.0.0.1", None, LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "not an address", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7, 198.51.100.1", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", "1" * 100, LOOPBACK, "127.0.0.1"),
        ("198.51.100.2", "203.0.113.7", LOOPBACK, "198.51.100.2"),  # not a proxy of ours
        ("127.0.0.1", "203.0.113.7", (), "127.0.0.1"),  # no proxy trusted
        ("", "203.0.113.7", LOOPBACK, ""),  # a Unix socket's peer
    ],
)
def test_client_address(
    peer: str,
    reported: str | None,
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    expected: str,
) -> None:
    environ = {"REMOTE_ADDR": peer}
    if reported is not None:
        environ["HTTP_X_REAL_IP"] = reported
    assert client_address(environ, proxies) == expected
