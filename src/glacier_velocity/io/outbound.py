"""Where the tool may connect: the outbound-address policy of every fetch.

Everything that fetches over HTTP goes through this policy: the STAC API (pystac-client), STAC
items read by URL, GeoJSON given by URL (``aoi``, ``glacier_outlines``, ``points_of_interest``)
and GDAL's asset reads (through :mod:`.gdal_http`), their HEAD probes and every redirect
included. A request may go to

- a **public** address (globally routable: not loopback, link-local, private, shared
  (100.64/10), reserved, unspecified or multicast, nor an IPv4 address of those kinds mapped
  into IPv6);
- any address of a **host named as a parameter**: the host of ``stac_url`` for everything
  fetched from that catalogue (search pages, items, assets: the demo's STAC API on 127.0.0.1
  and its file server on another port of the same host), and the host of a GeoJSON URL for
  that one fetch. What the user chose is trusted for its own host, never for the addresses
  its answers point to: items of a remote catalogue cannot make the tool probe 127.0.0.1;
- any address the **operator allows** in ``GLACIER_VELOCITY_ALLOW_ADDRESSES``: a comma-separated
  list of addresses, networks (CIDR, e.g. ``10.0.0.0/8``) and host names.

The addresses are checked after DNS resolution - every address a name resolves to must be
allowed - and the connection is made to an address that was checked, so a second lookup
cannot answer differently (DNS rebinding). Each redirect is a new request, checked the same
way. A refused request is never sent, so the error reads the same whether anything listens
there or not.

Through an HTTP proxy (``HTTPS_PROXY``, ``HTTP_PROXY``) the proxy makes the connection: the
check then applies to the URL's host as this machine resolves it (addresses, and names that
resolve here); a name only the proxy resolves is the proxy's to allow.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InvalidParameter, OutboundRefused

#: Environment variable of the operator's allow-list (addresses, CIDR networks, host names).
ALLOW_ENV = "GLACIER_VELOCITY_ALLOW_ADDRESSES"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_of(url: str) -> str:
    """The host of ``url`` as compared here: lower case, without brackets or a trailing dot."""
    return normal_host(urlsplit(url).hostname or "")


def normal_host(host: str) -> str:
    """``host`` lower case, without IPv6 brackets, a zone id or a trailing dot."""
    return host.strip("[]").split("%")[0].rstrip(".").lower()


def is_public(address: Address) -> bool:
    """Whether ``address`` is globally routable (an IPv4-mapped IPv6 address counts as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse_allow_list(text: str, variable: str = ALLOW_ENV) -> tuple[tuple[Network, ...], frozenset[str]]:
    """The networks and host names of an allow-list (comma- or space-separated).

    Raises
    ------
    InvalidParameter
        An entry is neither an address, a network in CIDR form nor a host name.
    """
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = normal_host(entry)
        if not host or not all(part.isalnum() or part in "-._" for part in host) or "/" in entry:
            raise InvalidParameter(
                variable,
                f"{entry!r} is not an address, a network (e.g. 10.0.0.0/8) or a host name; fix or unset the "
                "environment variable",
            )
        hosts.add(host)
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class OutboundPolicy:
    """Where requests may go besides public addresses.

    Attributes
    ----------
    networks : tuple of ip_network
        Networks whose addresses are allowed (the operator's allow-list).
    hosts : frozenset of str
        Host names (or address literals, as written in a URL) allowed at any address: the hosts
        of URLs given as parameters, and host names of the operator's allow-list.
    """

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls, trusted: Iterable[str | None] = (), environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """The operator's allow-list (:data:`ALLOW_ENV`), and the hosts of the ``trusted`` URLs.

        Parameters
        ----------
        trusted : iterable of str or None
            URLs given as parameters (``stac_url``, a GeoJSON URL); their hosts are allowed at
            any address. None entries are skipped.
        environ : mapping, optional
            Default ``os.environ``.
        """
        env = os.environ if environ is None else environ
        networks, hosts = parse_allow_list(env.get(ALLOW_ENV, ""))
        return cls(networks, hosts).trusting(*trusted)

    def trusting(self, *urls: str | None) -> OutboundPolicy:
        """This policy, also allowing the hosts of ``urls`` at any address."""
        named = {host_of(url) for url in urls if url}
        named.discard("")
        return OutboundPolicy(self.networks, self.hosts | named) if named - self.hosts else self

    def allows_address(self, address: str | Address) -> bool:
        """Whether ``address`` is public or in an allowed network."""
        ip = ipaddress.ip_address(normal_host(address) if isinstance(address, str) else address)
        if is_public(ip):
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(mapped in network or ip in network for network in self.networks)

    def addresses(self, host: str, port: int, url: str) -> list[str]:
        """The addresses of ``host`` to connect to, every one of them allowed.

        Parameters
        ----------
        host : str
            Host name or address literal.
        port : int
            Port (for the lookup).
        url : str
            What is being fetched, for the error.

        Raises
        ------
        OutboundRefused
            ``host`` is not a named or allowed host and one of its addresses is not allowed.
        socket.gaierror
            ``host`` does not resolve.
        """
        name = normal_host(host)
        found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if name in self.hosts:
            return addresses
        if not addresses or not all(self.allows_address(a) for a in addresses):
            raise OutboundRefused(url)
        return addresses

    def check_url(self, url: str, *, unresolved_ok: bool = True) -> None:
        """Refuse ``url`` when its host resolves to an address that is not allowed.

        A host that does not resolve here passes when ``unresolved_ok`` (the request then fails
        on its own, or a proxy resolves it).

        Raises
        ------
        OutboundRefused
            The host resolves to an address that is not allowed.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            return
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            self.addresses(parts.hostname or "", port, url)
        except (socket.gaierror, UnicodeError):
            if not unresolved_ok:
                raise


__all__ = ["ALLOW_ENV", "OutboundPolicy", "host_of", "is_public", "normal_host", "parse_allow_list"]
