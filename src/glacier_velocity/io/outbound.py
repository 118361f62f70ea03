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
  its answers point to: items of a remote catalogue cannot make the tool probe 127.0.0.1.
  A service whose parameters come from its clients (``glacier-velocity ogc-serve``) turns this
  off with ``GLACIER_VELOCITY_TRUST_GIVEN_HOSTS=0``;
- any address the **operator allows** in ``GLACIER_VELOCITY_ALLOW_ADDRESSES``: a comma-separated
  list of addresses, networks (CIDR, e.g. ``10.0.0.0/8``) and host names, each optionally on one
  port (``127.0.0.1:7822``).

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
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InvalidParameter, OutboundRefused

#: Environment variable of the operator's allow-list (addresses, CIDR networks, host names,
#: each optionally with a port).
ALLOW_ENV = "GLACIER_VELOCITY_ALLOW_ADDRESSES"
#: Environment variable saying whether the hosts of URLs given as parameters are trusted: ``1``
#: (default) or ``0``. A service running jobs for clients sets ``0``: a client's ``stac_url`` is
#: then held to the same rule as anything else.
TRUST_ENV = "GLACIER_VELOCITY_TRUST_GIVEN_HOSTS"

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


#: An allow-list entry: a network (an address is a network of one) or a host name, and the one
#: port it is allowed on (None: any port).
NetworkEntry = tuple[Network, int | None]
HostEntry = tuple[str, int | None]

_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d+))?$")


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host`` and port of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    bracketed = _BRACKETED.match(entry)
    if bracketed:
        port = bracketed.group("port")
        return bracketed.group("host"), int(port) if port else None
    host, colon, port = entry.rpartition(":")
    if colon and host.count(":") == 0 and port.isdigit():
        return host, int(port)
    return entry, None


def parse_allow_list(text: str, variable: str = ALLOW_ENV) -> tuple[tuple[NetworkEntry, ...], frozenset[HostEntry]]:
    """The networks and host names of an allow-list (comma- or space-separated), each with its
    port when one is given (``127.0.0.1:7822``, ``[::1]:7822``, ``stac.internal:8080``).

    Raises
    ------
    InvalidParameter
        An entry is neither an address, a network in CIDR form nor a host name (with a port).
    """
    networks: list[NetworkEntry] = []
    hosts: set[HostEntry] = set()
    for entry in text.replace(",", " ").split():
        name, port = _split_port(entry)
        if port is not None and not 0 < port < 65536:
            name = ""  # refused below
        try:
            networks.append((ipaddress.ip_network(name, strict=False), port))
            continue
        except ValueError:
            pass
        host = normal_host(name)
        if not host or "/" in name or not all(c.isalnum() or c in "-._" for c in host):
            raise InvalidParameter(
                variable,
                f"{entry!r} is not an address, a network (e.g. 10.0.0.0/8) or a host name, with an optional port "
                "(e.g. 127.0.0.1:7822); fix or unset the environment variable",
            )
        hosts.add((host, port))
    return tuple(networks), frozenset(hosts)


def trusts_given_hosts(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the hosts of URLs given as parameters are trusted (:data:`TRUST_ENV`, default yes)."""
    env = os.environ if environ is None else environ
    value = env.get(TRUST_ENV, "1").strip().lower()
    if value in ("1", "yes", "true", ""):
        return True
    if value in ("0", "no", "false"):
        return False
    raise InvalidParameter(TRUST_ENV, f"must be 1 or 0, got {value!r}; fix or unset the environment variable")


@dataclass(frozen=True)
class OutboundPolicy:
    """Where requests may go besides public addresses.

    Attributes
    ----------
    networks : tuple of (ip_network, port or None)
        Networks whose addresses are allowed (the operator's allow-list), on one port or any.
    hosts : frozenset of (str, port or None)
        Host names (or address literals, as written in a URL) allowed at any address: the hosts
        of URLs given as parameters (on any port), and host names of the operator's allow-list.
    trusts_named_hosts : bool
        False for a service whose parameters come from its clients (:data:`TRUST_ENV` ``0``):
        :meth:`trusting` then adds nothing, and refusals say so.
    """

    networks: tuple[NetworkEntry, ...] = ()
    hosts: frozenset[HostEntry] = field(default_factory=frozenset)
    trusts_named_hosts: bool = True

    @classmethod
    def from_env(cls, trusted: Iterable[str | None] = (), environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """The operator's allow-list (:data:`ALLOW_ENV`), and the hosts of the ``trusted`` URLs.

        Parameters
        ----------
        trusted : iterable of str or None
            URLs given as parameters (``stac_url``, a GeoJSON URL); their hosts are allowed at
            any address - unless :data:`TRUST_ENV` is ``0`` (a service whose parameters come
            from its clients). None entries are skipped.
        environ : mapping, optional
            Default ``os.environ``.
        """
        env = os.environ if environ is None else environ
        networks, hosts = parse_allow_list(env.get(ALLOW_ENV, ""))
        return cls(networks, hosts, trusts_given_hosts(env)).trusting(*trusted)

    def trusting(self, *urls: str | None) -> OutboundPolicy:
        """This policy, also allowing the hosts of ``urls`` at any address and port (unless it
        trusts no named host)."""
        named = {(host_of(url), None) for url in urls if url} if self.trusts_named_hosts else set()
        named.discard(("", None))
        return OutboundPolicy(self.networks, self.hosts | named) if named - self.hosts else self

    def allows_address(self, address: str | Address, port: int | None = None) -> bool:
        """Whether ``address`` is public or in an allowed network (on ``port``, when the entry names one)."""
        ip = ipaddress.ip_address(normal_host(address) if isinstance(address, str) else address)
        if is_public(ip):
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(
            (mapped in network or ip in network) and (allowed is None or allowed == port)
            for network, allowed in self.networks
        )

    def allows_host(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` is named (a parameter's host, or an allow-list host name) for ``port``."""
        name = normal_host(host)
        return (name, None) in self.hosts or (port is not None and (name, port) in self.hosts)

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
        if self.allows_host(name, port):
            return addresses
        if not addresses or not all(self.allows_address(a, port) for a in addresses):
            raise OutboundRefused(url, named_hosts=self.trusts_named_hosts)
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


__all__ = [
    "ALLOW_ENV",
    "TRUST_ENV",
    "OutboundPolicy",
    "host_of",
    "is_public",
    "normal_host",
    "parse_allow_list",
    "trusts_given_hosts",
]
