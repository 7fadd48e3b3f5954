"""/etc/hosts, /etc/resolv.conf, /etc/hostname contents and address plans (pure)."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.network.etcfiles import (
    Addresses,
    HostFacts,
    ResolvConf,
    hostname_file,
    hosts,
    parse_add_host,
    parse_resolv_conf,
    plan_addresses,
    resolv_conf,
)
from rootless.network.mode import parse_network

HOST = HostFacts(
    resolv=ResolvConf(("127.0.0.53", "192.0.2.53"), ("corp.example",), ("ndots:2",)),
    address="192.0.2.2",
    gateway="192.0.2.1",
)


def test_parse_resolv_conf():
    text = (
        "# generated\n"
        "nameserver 1.1.1.1\n"
        "nameserver 2606:4700::1111 # v6\n"
        "domain old.example\n"
        "search a.example b.example\n"
        "options ndots:5 edns0\n"
        "options rotate\n"
        "nameserver\n"
    )
    assert parse_resolv_conf(text) == ResolvConf(
        ("1.1.1.1", "2606:4700::1111"), ("a.example", "b.example"), ("ndots:5", "edns0", "rotate")
    )


def test_slirp_addresses():
    default = plan_addresses(parse_network("slirp4netns"), HOST)
    assert default == Addresses("10.0.2.100", "10.0.2.2", ("10.0.2.3",), "192.0.2.2")
    allowed = plan_addresses(parse_network("slirp4netns:allow_host_loopback=true"), HOST)
    assert allowed.host_gateway == "10.0.2.2"
    custom = plan_addresses(parse_network("slirp4netns:cidr=10.9.0.0/16"), HOST)
    assert (custom.ip, custom.gateway, custom.nameservers) == (
        "10.9.0.100",
        "10.9.0.2",
        ("10.9.0.3",),
    )


def test_pasta_addresses():
    plain = plan_addresses(parse_network("pasta"), HOST)
    # The host's address and gateway are copied; loopback resolvers are useless inside.
    assert plain == Addresses("192.0.2.2", "192.0.2.1", ("192.0.2.53",), None)
    mapped = plan_addresses(parse_network("pasta:--map-gw,-a,10.1.1.5,-g,10.1.1.1"), HOST)
    assert mapped == Addresses("10.1.1.5", "10.1.1.1", ("192.0.2.53",), "10.1.1.1")
    only_local = HostFacts(resolv=ResolvConf(("127.0.0.53",)), address="192.0.2.2")
    assert plan_addresses(parse_network("pasta"), only_local).nameservers == ("169.254.1.1",)


def test_none_has_no_addresses():
    assert plan_addresses(parse_network("none"), HOST) == Addresses(None, None, (), None)


def test_resolv_conf_copies_search_and_options():
    out = resolv_conf(HOST.resolv, ["10.0.2.3"])
    assert out == "search corp.example\nnameserver 10.0.2.3\noptions ndots:2\n"


def test_resolv_conf_flags_win():
    out = resolv_conf(
        HOST.resolv, ["10.0.2.3"], dns=["9.9.9.9", "1.1.1.1"], dns_search=["x.example"],
        dns_options=["timeout:1"],
    )  # fmt: skip
    assert out == "search x.example\nnameserver 9.9.9.9\nnameserver 1.1.1.1\noptions timeout:1\n"
    assert "search" not in resolv_conf(HOST.resolv, ["10.0.2.3"], dns_search=["."])


def test_hosts_for_slirp():
    addrs = plan_addresses(parse_network("slirp4netns:allow_host_loopback=true"), HOST)
    out = hosts(
        hostname="abc123",
        names=["web", "abc123"],
        addresses=addrs,
        add_hosts=[("db", "10.0.0.5"), ("me", "host-gateway")],
    )
    assert out.splitlines() == [
        "10.0.0.5\tdb",
        "10.0.2.2\tme",
        "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4",
        "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6",
        "10.0.2.100\tabc123 web",
        "10.0.2.2\thost.containers.internal host.docker.internal",
    ]


def test_hosts_without_network():
    out = hosts(hostname="box", addresses=plan_addresses(parse_network("none"), HOST))
    assert "127.0.1.1\tbox\n" in out
    assert "host.containers.internal" not in out
    with pytest.raises(ConfigError, match="host-gateway"):
        hosts(
            hostname="box",
            addresses=plan_addresses(parse_network("none"), HOST),
            add_hosts=[("h", "host-gateway")],
        )


def test_hosts_on_the_host_network_starts_from_the_host_file():
    base = "127.0.0.1 localhost\n192.0.2.2 myhost\n"
    out = hosts(hostname="myhost", addresses=plan_addresses(parse_network("host"), HOST), base=base)
    assert out.startswith(base)
    assert "192.0.2.2\tmyhost" in out


def test_parse_add_host():
    assert parse_add_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert parse_add_host("v6:fd00::5") == ("v6", "fd00::5")
    assert parse_add_host("v6:[fd00::5]") == ("v6", "fd00::5")
    assert parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    for bad in ("db", "db:", ":1.2.3.4", "db:not-an-ip"):
        with pytest.raises(ConfigError, match="invalid --add-host"):
            parse_add_host(bad)


def test_hostname_file():
    assert hostname_file("box") == "box\n"
