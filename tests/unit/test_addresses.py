"""Address planning for user networks (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from rootless.errors import ConfigError
from rootless.network.addresses import (
    NetworkAddresses,
    check_requested,
    choose_address,
    host_routes,
    parse_subnet,
    plan_addresses,
)

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000059AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_host_routes_skip_the_default_route() -> None:
    assert [str(n) for n in host_routes(ROUTE)] == ["192.168.2.0/24", "172.89.0.0/16"]


def test_default_subnet_is_the_first_free_slash_24_of_the_pool() -> None:
    assert plan_addresses(None, None) == NetworkAddresses("10.89.0.0/24", "10.89.0.1")
    taken = [("a", "10.89.0.0/24"), ("b", "10.89.1.0/24")]
    assert plan_addresses(None, None, networks=taken).subnet == "10.89.2.0/24"


def test_default_subnet_avoids_host_routes() -> None:
    routes = [ipaddress.IPv4Network("10.89.0.0/23")]
    assert plan_addresses(None, None, routes=routes).subnet == "10.89.2.0/24"


def test_given_subnet_and_gateway() -> None:
    got = plan_addresses("10.20.0.0/16", "10.20.0.254")
    assert got == NetworkAddresses("10.20.0.0/16", "10.20.0.254")
    assert plan_addresses("10.20.0.0/16", None).gateway == "10.20.0.1"


@pytest.mark.parametrize(
    ("subnet", "words"),
    [
        ("10.89.0.0/24", 'overlaps network "a"'),
        ("10.89.0.128/25", 'overlaps network "a"'),
        ("10.0.0.0/8", 'overlaps network "a"'),
        ("10.0.2.0/24", "egress"),
        ("192.168.2.0/25", "route of the host"),
    ],
)
def test_conflicts_are_refused(subnet: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        plan_addresses(
            subnet,
            None,
            networks=[("a", "10.89.0.0/24")],
            routes=host_routes(ROUTE),
        )


@pytest.mark.parametrize(
    ("subnet", "words"),
    [
        ("10.89.0.1/24", "host bits are set"),
        ("10.89.0.0", "no prefix length"),
        ("banana/24", "not an IPv4 network"),
        ("10.89.0.0/31", "too small"),
        ("127.0.0.0/24", "loopback"),
        ("169.254.0.0/24", "link-local"),
        ("fd00::/64", "not an IPv4 network"),
    ],
)
def test_bad_subnets(subnet: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_subnet(subnet)


def test_bad_gateways() -> None:
    with pytest.raises(ConfigError, match="not a host address"):
        plan_addresses("10.30.0.0/24", "10.31.0.1")
    with pytest.raises(ConfigError, match="not a host address"):
        plan_addresses("10.30.0.0/24", "10.30.0.255")
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        plan_addresses("10.30.0.0/24", "x")
    with pytest.raises(ConfigError, match="needs --subnet"):
        plan_addresses(None, "10.30.0.1")


NET = NetworkAddresses("10.89.0.0/29", "10.89.0.1")


def test_choose_the_lowest_free_address() -> None:
    assert choose_address(NET, set()) == "10.89.0.2"
    assert choose_address(NET, {"10.89.0.2", "10.89.0.3"}) == "10.89.0.4"
    gw_high = NetworkAddresses("10.89.0.0/29", "10.89.0.6")
    assert choose_address(gw_high, set()) == "10.89.0.1"


def test_full_subnet() -> None:
    used = {f"10.89.0.{i}" for i in range(2, 7)}
    with pytest.raises(ConfigError, match="no free address"):
        choose_address(NET, used)


def test_requested_address() -> None:
    assert choose_address(NET, {"10.89.0.2"}, "10.89.0.5") == "10.89.0.5"
    with pytest.raises(ConfigError, match="already in use"):
        choose_address(NET, {"10.89.0.5"}, "10.89.0.5")
    with pytest.raises(ConfigError, match="is the gateway"):
        check_requested(NET, "10.89.0.1")
    for bad in ("10.89.0.0", "10.89.0.7", "10.90.0.3"):
        with pytest.raises(ConfigError, match="not a host address"):
            check_requested(NET, bad)


def test_mac_for_is_local_unicast_and_follows_the_address() -> None:
    from rootless.network.addresses import mac_for

    assert mac_for("10.89.0.2") == "02:52:0a:59:00:02"
    assert mac_for("10.89.0.2") == mac_for("10.89.0.2") != mac_for("10.89.0.3")
    first = int(mac_for("192.168.1.1").split(":")[0], 16)
    assert first & 0b10 and not first & 0b01  # locally administered, unicast
