"""Who is asking: the peer's address, or behind a trusted reverse proxy, the client it names.

Behind nginx every request comes from the proxy, so without this the login throttle, the rate
limits and the audit would see one address for everybody: five bad passwords from the internet
would lock a real judge out. Only a peer in TRUSTED_PROXIES is believed, since anyone else can
write any X-Forwarded-For. Each proxy appends the address that called it, so the header is read
from the right and the first address that is not itself a trusted proxy is the client; whatever
lies to its left was written by the client and proves nothing. A hop that is not an address
(garbage, a port we cannot read, a proxy that passed the header on without appending) ends the
walk, and the last address vouched for stands.

The app key lives here, not in keys.py: errors.py logs the address, and keys.py -> cors.py ->
errors.py would close a cycle.
"""
from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

from aiohttp import web

X_FORWARDED_FOR: Final = "X-Forwarded-For"
# Hops read from the right; a longer chain stops at the last one read (a trusted proxy's address).
MAX_HOPS: Final = 16
UNKNOWN: Final = "?"  # no peer address (a Unix socket); one shared key rather than none

Address = IPv4Address | IPv6Address


class ClientAddresses:
    """TRUSTED_PROXIES, and the client address of each request under them."""

    def __init__(self, trusted: Sequence[IPv4Network | IPv6Network] = ()) -> None:
        self._trusted = tuple(trusted)

    def of(self, request: web.Request) -> str:
        peer = request.remote or UNKNOWN
        if not self._trusted:
            return peer  # the usual venue set-up: one header lookup saved on every command
        address = _parse(peer)
        if address is None or not self._trusts(address):
            return peer
        forwarded = request.headers.getall(X_FORWARDED_FOR, ())
        hops = ",".join(forwarded).rsplit(",", MAX_HOPS) if forwarded else []
        for raw in reversed(hops[-MAX_HOPS:]):
            hop = _parse(raw)
            if hop is None:
                break
            address = hop
            if not self._trusts(hop):
                break
        return str(address)

    def _trusts(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)


CLIENT_ADDRESSES = web.AppKey("client_addresses", ClientAddresses)


def client_address(request: web.Request) -> str:
    """The one answer for the login throttle, the rate limits, the audit and the logs."""
    return request.app[CLIENT_ADDRESSES].of(request)


def _parse(text: str) -> Address | None:
    """An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or with a port,
    `192.0.2.1:4711` and `[2001:db8::1]:4711`. An IPv4 address mapped into IPv6 (a dual-stack
    socket's view) is the IPv4 address, so one client has one key."""
    text = text.strip(" \t")
    if text.startswith("["):
        text, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
