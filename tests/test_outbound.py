"""Outbound requests go only to public addresses, the hosts the user named, and what the
operator allows (issue 22, finding 8): a remote catalogue cannot make the tool probe this
machine's services, neither by naming them nor by redirecting to them, and the error reads the
same whether anything listens there. Every server is a real one on 127.0.0.1; the catalogue
the user names is ``http://localhost:<port>`` (the same server under a host name), so the
"internal service" at ``127.0.0.1:<other port>`` is another host to the policy.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doc_rows import assert_documented
from flaky_http import FlakyServer
from glacier_velocity.demo.stacserver import free_port
from glacier_velocity.errors import InvalidParameter, OutboundRefused
from glacier_velocity.io.aoi import parse_aoi
from glacier_velocity.io.outbound import ALLOW_ENV, TRUST_ENV, OutboundPolicy, is_public, parse_allow_list
from glacier_velocity.io.raster import read_window
from glacier_velocity.io.retry import http_session
from glacier_velocity.stac.discovery import open_catalog
from glacier_velocity.workflow.correlate import attempt_pair
from test_hostile_assets import PARAMS, REF_ID, _served_item, local_pair  # noqa: F401 - fixture
from test_partial_failure import pair_items  # noqa: F401 - fixture

REFUSED = (
    "{url} resolves to a non-public address (loopback, link-local, private or reserved) and was not contacted; "
    "only public addresses are fetched from, besides the hosts of URLs given as parameters (stac_url, aoi, "
    "glacier_outlines, points_of_interest) and what the operator allows in GLACIER_VELOCITY_ALLOW_ADDRESSES"
)


def _named(server: FlakyServer) -> str:
    """The server as the user names it: by host name, another host than 127.0.0.1 to the policy."""
    return server.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", ALLOW_ENV):
        monkeypatch.delenv(var, raising=False)


def _pair_from(catalogue: FlakyServer, stac_url: str, ref, sec, nir_href: str, out):
    catalogue.files["/ref/item.json"] = _served_item(ref, nir_href)
    catalogue.files["/sec/item.json"] = _served_item(sec, nir_href)
    return attempt_pair(
        f"{stac_url}/ref/item.json",
        f"{stac_url}/sec/item.json",
        out,
        replace(PARAMS, stac_url=stac_url),
        pair_id="p",
    )


@pytest.mark.usefixtures("no_proxy_env")
def test_items_of_a_catalogue_cannot_make_the_tool_probe_a_loopback_service(local_pair):  # noqa: F811
    ref, sec, tmp_path = local_pair
    cog = (tmp_path / "ref_B08.tif").read_bytes()  # a real COG: before, the pair succeeded reading it
    closed_port = free_port()
    reasons = []
    with FlakyServer() as catalogue, FlakyServer(files={"/B08.tif": cog}) as internal:
        stac_url = _named(catalogue)
        for n, port in enumerate((int(internal.url.rsplit(":", 1)[1]), closed_port)):
            href = f"http://127.0.0.1:{port}/B08.tif"
            attempt = _pair_from(catalogue, stac_url, ref, sec, href, tmp_path / f"out{n}")
            assert not attempt.succeeded and attempt.status.error_type == "OutboundRefused"
            reasons.append(attempt.status.reason.replace(str(port), "<port>"))
            assert not (tmp_path / f"out{n}").exists()
        assert internal.requests == []  # not even a HEAD probe
        assert [r.path for r in catalogue.requests] == ["/ref/item.json", "/sec/item.json"] * 2
    # A listening service and a closed port read the same.
    assert reasons[0] == reasons[1]
    what = f"cannot read raster reference {REF_ID!r} nir"
    url = "http://127.0.0.1:<port>/B08.tif"
    assert reasons[0] == f"{what}: " + REFUSED.format(url=url)
    assert_documented(reasons[0], what, url)


def test_through_a_proxy_the_address_is_checked_before_the_request_goes(local_pair, monkeypatch):  # noqa: F811
    """A catalogue reached through an HTTP proxy: the proxy would connect, so the URL's address is
    checked before anything is sent to it."""
    ref, sec, tmp_path = local_pair
    cog = (tmp_path / "ref_B08.tif").read_bytes()
    with FlakyServer() as proxy, FlakyServer(files={"/B08.tif": cog}) as internal:
        for var in ("NO_PROXY", "no_proxy", ALLOW_ENV):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        remote = "http://catalogue.example"
        for role, item in (("ref", ref), ("sec", sec)):
            proxy.files[f"{remote}/{role}/item.json"] = _served_item(item, f"{internal.url}/B08.tif")
        attempt = attempt_pair(
            f"{remote}/ref/item.json", f"{remote}/sec/item.json", tmp_path / "out", replace(PARAMS, stac_url=remote)
        )
        assert not attempt.succeeded and attempt.status.error_type == "OutboundRefused"
        assert [r.path for r in proxy.requests] == [f"{remote}/ref/item.json", f"{remote}/sec/item.json"]
        assert internal.requests == []


@pytest.mark.usefixtures("no_proxy_env")
def test_a_redirect_to_a_loopback_service_is_refused_for_assets_geojson_and_the_stac_api(tmp_path):
    cog_request = "/B08.tif"
    with FlakyServer() as named, FlakyServer(files={"/x": b"{}"}) as internal:
        target = f"{internal.url}/x"
        named.redirects.update({cog_request: target, "/aoi.geojson": target, "/": target})
        base = _named(named)
        # An asset (GDAL, through the gate), its HEAD probe included.
        with pytest.raises(OutboundRefused) as caught:
            read_window(f"{base}{cog_request}", outbound=OutboundPolicy().trusting(base))
        assert str(caught.value) == "cannot read raster asset: " + REFUSED.format(url=target)
        # A GeoJSON parameter given by URL.
        with pytest.raises(InvalidParameter) as caught_aoi:
            parse_aoi(f"{base}/aoi.geojson")
        assert str(caught_aoi.value) == "aoi: " + REFUSED.format(url=target)
        # The STAC API's own answers (pystac-client).
        with pytest.raises(OutboundRefused) as caught_api:
            open_catalog(base)
        assert str(caught_api.value) == f"the STAC API at {base}: " + REFUSED.format(url=target)
        assert internal.requests == []
        assert {r.path for r in named.requests} == {cog_request, "/aoi.geojson", "/"}


@pytest.mark.usefixtures("no_proxy_env")
def test_the_operator_allow_list_opens_an_address(local_pair, monkeypatch):  # noqa: F811
    ref, sec, tmp_path = local_pair
    cog = (tmp_path / "ref_B08.tif").read_bytes()
    monkeypatch.setenv(ALLOW_ENV, "10.0.0.0/8, 127.0.0.1")
    with (
        FlakyServer() as catalogue,
        FlakyServer(files={"/ref.tif": cog, "/sec.tif": (tmp_path / "sec_B08.tif").read_bytes()}) as assets,
    ):
        stac_url = _named(catalogue)
        catalogue.files["/ref/item.json"] = _served_item(ref, f"{assets.url}/ref.tif")
        catalogue.files["/sec/item.json"] = _served_item(sec, f"{assets.url}/sec.tif")
        attempt = attempt_pair(
            f"{stac_url}/ref/item.json",
            f"{stac_url}/sec/item.json",
            tmp_path / "out",
            replace(PARAMS, stac_url=stac_url),
        )
        assert attempt.succeeded, attempt.status.reason
        assert {r.path for r in assets.requests} == {"/ref.tif", "/sec.tif"}


@pytest.mark.usefixtures("no_proxy_env")
def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """One lookup per connection, and the connection is made to its answer: a DNS server that
    answers differently the second time (DNS rebinding) is not asked again."""
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host == "pinned.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with FlakyServer(files={"/a.json": b"{}"}) as server:
        port = server.url.rsplit(":", 1)[1]
        policy = OutboundPolicy(networks=((ipaddress.ip_network("127.0.0.1/32"), None),))
        with http_session(outbound=policy) as session:
            answer = session.get(f"http://pinned.test:{port}/a.json", timeout=5)
        assert answer.status_code == 200 and lookups == ["pinned.test"]
        # The other way round: a name that resolves to a refused address is never connected to.
        lookups.clear()
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real("10.255.255.1", port, *a, **k))
        with http_session(outbound=policy) as session, pytest.raises(OutboundRefused):
            session.get(f"http://pinned.test:{port}/a.json", timeout=5)
        assert len(server.requests) == 1


def test_a_name_with_any_non_public_address_is_refused(monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real("93.184.215.14", port, *a, **k) + real("127.0.0.1", port, *a, **k),
    )
    with pytest.raises(OutboundRefused):
        OutboundPolicy().addresses("mixed.test", 80, "http://mixed.test/")
    assert OutboundPolicy().trusting("http://mixed.test:8000/x").addresses("mixed.test", 80, "u") == [
        "93.184.215.14",
        "127.0.0.1",
    ]


# Independent of the code: the IANA special-purpose ranges a request must never reach, and the
# rest of the special-purpose registry (neither side of the property).
_REFUSED_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
]  # fmt: skip
_SPECIAL_V4 = [
    *_REFUSED_V4,
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
]
_REFUSED_V6 = ["::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8"]


def _in(address, ranges):
    return any(address in ipaddress.ip_network(r) for r in ranges)


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_an_ipv4_address_is_refused_in_the_special_ranges_and_allowed_elsewhere(address):
    policy = OutboundPolicy()
    if _in(address, _REFUSED_V4):
        assert not policy.allows_address(address)
    elif not _in(address, _SPECIAL_V4):
        assert policy.allows_address(address)
    # No way round through IPv6: the mapped form is judged as the IPv4 address.
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert policy.allows_address(mapped) == policy.allows_address(address)
    # The operator's allow-list opens exactly what it names.
    assert OutboundPolicy(networks=((ipaddress.ip_network(f"{address}/32"), None),)).allows_address(mapped)


@given(
    st.one_of(
        st.sampled_from(_REFUSED_V6).flatmap(
            lambda r: st.integers(0, ipaddress.ip_network(r).num_addresses - 1).map(
                lambda k, r=r: ipaddress.ip_network(r)[k]
            )
        ),
        # Global unicast 2000::/3 outside the special 2001::/16 and 2002::/16.
        st.integers(0x2003 << 112, (0x4000 << 112) - 1).map(ipaddress.IPv6Address),
    )
)
def test_an_ipv6_address_is_refused_in_the_special_ranges_and_allowed_in_global_unicast(address):
    assert OutboundPolicy().allows_address(address) == (not _in(address, _REFUSED_V6))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
     "fd00::1", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"],
)  # fmt: skip
def test_loopback_link_local_private_and_reserved_addresses_are_refused(address):
    assert not OutboundPolicy().allows_address(address)
    assert not is_public(ipaddress.ip_address(address))


def test_the_allow_list_takes_addresses_networks_and_host_names_with_ports():
    networks, hosts = parse_allow_list("10.0.0.0/8,127.0.0.1:7822 [fd00::1] [::1]:80 fd00::/8 stac.internal st:8080")
    assert [(str(n), p) for n, p in networks] == [
        ("10.0.0.0/8", None),
        ("127.0.0.1/32", 7822),
        ("fd00::1/128", None),
        ("::1/128", 80),
        ("fd00::/8", None),
    ]
    assert hosts == {("stac.internal", None), ("st", 8080)}
    policy = OutboundPolicy.from_env(
        environ={ALLOW_ENV: "10.0.0.0/8,127.0.0.1:7822"}, trusted=["http://LocalHost.:9/x", None]
    )
    assert policy.allows_address("10.20.30.40") and not policy.allows_address("192.168.0.1")
    assert policy.allows_address("127.0.0.1", 7822) and not policy.allows_address("127.0.0.1", 7823)
    assert policy.hosts == {("localhost", None)}
    for bad in ("http://x/", "127.0.0.1:99999", "a b/c"):
        with pytest.raises(InvalidParameter, match=re.escape(f"{ALLOW_ENV}: ")):
            parse_allow_list(bad)


def test_a_service_does_not_trust_the_hosts_its_clients_name():
    """GLACIER_VELOCITY_TRUST_GIVEN_HOSTS=0 (what ogc-serve sets for its jobs): a client's
    stac_url is held to the same rule as the addresses its items name."""
    trusted = ["http://127.0.0.1:6379/"]
    assert OutboundPolicy.from_env(trusted=trusted, environ={}).allows_host("127.0.0.1", 6379)
    service = OutboundPolicy.from_env(trusted=trusted, environ={TRUST_ENV: "0"})
    assert service.hosts == frozenset()
    with pytest.raises(OutboundRefused):
        service.check_url("http://127.0.0.1:6379/")
    with pytest.raises(InvalidParameter, match=f"^{TRUST_ENV}: must be 1 or 0"):
        OutboundPolicy.from_env(environ={TRUST_ENV: "maybe"})


def test_a_catalogue_at_a_public_host_keeps_its_assets_elsewhere_public_only():
    """The host of stac_url is trusted, not the addresses its items name."""
    policy = OutboundPolicy.from_env(trusted=["https://earth-search.aws.element84.com/v1"], environ={})
    assert policy.hosts == {("earth-search.aws.element84.com", None)}
    with pytest.raises(OutboundRefused):
        policy.check_url("http://127.0.0.1:6379/")
    with pytest.raises(OutboundRefused):
        policy.check_url("http://169.254.169.254/latest/meta-data/")
