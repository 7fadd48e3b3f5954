"""--network values (pure)."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.network.mode import NetworkMode, NetworkOptions, SlirpOptions, parse_network


def test_simple_modes():
    assert parse_network("none") == NetworkMode("none")
    assert parse_network("private") == NetworkMode("none")
    assert parse_network("host") == NetworkMode("host")
    assert not parse_network("host").own_namespace
    assert parse_network("none").own_namespace and not parse_network("none").user_mode


def test_slirp_defaults_and_options():
    mode = parse_network("slirp4netns")
    assert mode == NetworkMode("slirp4netns", slirp=SlirpOptions())
    assert mode.user_mode
    assert not mode.slirp.allow_host_loopback and mode.slirp.mtu == 65520
    opts = parse_network(
        "slirp4netns:allow_host_loopback=true,mtu=1500,enable_ipv6=1,cidr=10.5.0.7/16,"
        "outbound_addr=192.0.2.2,port_handler=slirp4netns"
    ).slirp
    assert opts == SlirpOptions(
        allow_host_loopback=True,
        mtu=1500,
        enable_ipv6=True,
        cidr="10.5.0.0/16",
        outbound_addr="192.0.2.2",
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("slirp4netns:", "nothing after the colon"),
        ("slirp4netns:mtu", "is not key=value"),
        ("slirp4netns:mtu=big", "not a number"),
        ("slirp4netns:mtu=70000", "not a number in 68-65521"),
        ("slirp4netns:allow_host_loopback=maybe", "is not true or false"),
        ("slirp4netns:cidr=10.0.2.0/28", "too small"),
        ("slirp4netns:cidr=fd00::/64", "not an IPv4 network"),
        ("slirp4netns:outbound_addr=::1", "not an IPv4 address"),
        ("slirp4netns:port_handler=rootlessport", "not available"),
        ("slirp4netns:bogus=1", 'unknown slirp4netns option "bogus"'),
        ("host:x=1", "takes no options"),
        ("container:", "nothing after the colon"),
        ("container:-bad", "not a container name"),
        ("-net", "not a network name"),
        ("mynet:alias=a b", "not a valid name"),
        ("mynet:ip=10.0.0.300", "not an IP address"),
        ("mynet:ip=fd00::5", "not an IPv4 address"),
        ("mynet:mac=zz", "not a MAC address"),
        ("mynet:color=red", 'unknown network option "color"'),
    ],
)
def test_errors_name_the_value_and_reason(value, why):
    with pytest.raises(ConfigError) as err:
        parse_network(value)
    assert f'invalid --network "{value}"' in str(err.value)
    assert why in str(err.value)


def test_pasta_options_pass_through():
    assert parse_network("pasta") == NetworkMode("pasta")
    assert parse_network("pasta:-T,8080,--map-gw").pasta_args == ("-T", "8080", "--map-gw")


def test_container_and_user_networks():
    assert parse_network("container:web") == NetworkMode("container", name="web")
    assert not parse_network("container:web").own_namespace
    assert parse_network("backend") == NetworkMode(
        "network", name="backend", network=NetworkOptions()
    )
    mode = parse_network("backend:alias=db,alias=primary,ip=10.89.0.5,mac=92:D0:C6:0A:29:33")
    assert mode.network == NetworkOptions(
        aliases=("db", "primary"), ip="10.89.0.5", mac="92:d0:c6:0a:29:33"
    )


@pytest.mark.parametrize(
    ("field", "flag"),
    [
        ("add_hosts", "--add-host"),
        ("dns", "--dns"),
        ("dns_search", "--dns-search"),
        ("dns_options", "--dns-option"),
    ],
)
def test_joining_another_containers_network_refuses_its_own_name_files(tmp_path, field, flag):
    from rootless.engine.network import NetworkRequest, plan_network

    request = NetworkRequest(mode="container:db", **{field: ("x:1.2.3.4",)})
    with pytest.raises(ConfigError, match=f"cannot use {flag} with --network container:db"):
        plan_network(request, cdir=tmp_path, hostname="h", names=("c",))
