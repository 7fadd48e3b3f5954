"""Address planning for user networks (pure): subnets, gateways, container addresses.

A network's subnet must not overlap another user network, a route of the host (the
containers could no longer reach what is behind it), or the network of the egress
(slirp4netns's 10.0.2.0/24 inside the network's namespace). Without ``--subnet`` the
first free /24 of 10.89.0.0/16 is taken, as Podman does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable

from rootless._record import Record
from rootless.errors import ConfigError

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address

POOL = Net("10.89.0.0/16")  # where subnets are chosen from
POOL_PREFIX = 24
EGRESS_CIDR = Net("10.0.2.0/24")  # slirp4netns's network inside the holder's namespace
MAX_PREFIX = 30  # a /30 has two usable addresses: the gateway and one container


class NetworkAddresses(Record):
    subnet: str  # "10.89.0.0/24"
    gateway: str  # "10.89.0.1"


def parse_subnet(text: str) -> Net:
    """``--subnet`` value to a network; host bits must be zero."""
    if "/" not in text:
        raise ConfigError(f'invalid subnet "{text}": no prefix length', hint=f"e.g. {text}/24")
    try:
        net = Net(text, strict=False)
    except ValueError:
        raise ConfigError(
            f'invalid subnet "{text}": not an IPv4 network', hint="e.g. --subnet 10.89.5.0/24"
        ) from None
    if net.network_address != Addr(text.split("/")[0]):
        raise ConfigError(f'invalid subnet "{text}": host bits are set', hint=f"use {net}")
    if net.prefixlen > MAX_PREFIX:
        raise ConfigError(
            f'invalid subnet "{text}": too small for a gateway and a container',
            hint=f"use a /{MAX_PREFIX} or larger",
        )
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_reserved:
        raise ConfigError(
            f'invalid subnet "{text}": loopback, link-local, multicast and reserved addresses '
            "cannot be used",
            hint="use a private range such as 10.89.5.0/24",
        )
    return net


def host_routes(route_text: str) -> list[Net]:
    """The destinations of the host's routes, from /proc/net/route, without the default."""
    out = []
    for line in route_text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = Addr(int(fields[1], 16).to_bytes(4, "little"))
        mask = Addr(int(fields[7], 16).to_bytes(4, "little"))
        net = Net(f"{dest}/{mask}", strict=False)
        if net.prefixlen > 0:
            out.append(net)
    return out


def _conflict(net: Net, networks: Iterable[tuple[str, Net]]) -> str | None:
    for what, other in networks:
        if net.overlaps(other):
            return f"{what} ({other})"
    return None


def plan_addresses(
    subnet: str | None,
    gateway: str | None,
    *,
    networks: Collection[tuple[str, str]] = (),
    routes: Collection[Net] = (),
) -> NetworkAddresses:
    """The subnet and gateway of a new network.

    ``networks`` are (name, subnet) of the existing user networks; ``routes`` the
    host's route destinations (see :func:`host_routes`).
    """
    taken = [(f'network "{name}"', Net(sub)) for name, sub in networks]
    taken += [("a route of the host", r) for r in routes]
    taken.append(("the network of the egress (slirp4netns)", EGRESS_CIDR))
    if subnet is None:
        if gateway is not None:
            raise ConfigError("--gateway needs --subnet", hint="give --subnet CIDR too")
        for candidate in POOL.subnets(new_prefix=POOL_PREFIX):
            if _conflict(candidate, taken) is None:
                return NetworkAddresses(str(candidate), str(candidate[1]))
        raise ConfigError(
            f"cannot choose a subnet: every /{POOL_PREFIX} of {POOL} is in use",
            hint="remove unused networks (rootless network prune) or give --subnet",
        )
    net = parse_subnet(subnet)
    clash = _conflict(net, taken)
    if clash is not None:
        raise ConfigError(f"subnet {net} overlaps {clash}", hint="choose another --subnet")
    if gateway is None:
        return NetworkAddresses(str(net), str(net[1]))
    gw = _address(gateway, "gateway")
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise ConfigError(
            f"gateway {gw} is not a host address of subnet {net}",
            hint=f"e.g. --gateway {net[1]}",
        )
    return NetworkAddresses(str(net), str(gw))


def _address(text: str, what: str) -> Addr:
    try:
        return Addr(text)
    except ValueError:
        raise ConfigError(
            f'invalid {what} "{text}": not an IPv4 address', hint="e.g. 10.89.0.5"
        ) from None


def choose_address(
    addresses: NetworkAddresses, used: Collection[str], requested: str | None = None
) -> str:
    """A container's address: ``requested`` if it is free, else the lowest free one."""
    net = Net(addresses.subnet)
    reserved = {str(net.network_address), str(net.broadcast_address), addresses.gateway}
    if requested is not None:
        check_requested(addresses, requested)
        if requested in used:
            raise ConfigError(
                f"address {requested} of subnet {net} is already in use",
                hint="choose another ip= or leave it out to get a free one",
            )
        return requested
    for host in net.hosts():
        text = str(host)
        if text not in reserved and text not in used:
            return text
    raise ConfigError(
        f"no free address left in subnet {net}",
        hint="stop a container on this network or create a network with a larger subnet",
    )


def check_requested(addresses: NetworkAddresses, requested: str) -> None:
    """A requested ``ip=`` must be a host address of the subnet other than the gateway."""
    net = Net(addresses.subnet)
    addr = _address(requested, "ip")
    if addr not in net or addr in (net.network_address, net.broadcast_address):
        raise ConfigError(
            f"address {addr} is not a host address of subnet {net}",
            hint=f"choose an ip= in {net}",
        )
    if str(addr) == addresses.gateway:
        raise ConfigError(
            f"address {addr} is the gateway of subnet {net}", hint="choose another ip="
        )


def mac_for(ip: str) -> str:
    """The MAC a container gets on a user network unless it asks for one: locally
    administered and derived from its IPv4 address (as Docker's bridge does), so a
    container that reuses a freed address also reuses its MAC and the neighbour
    entries the bridge, the holder and the other containers still have stay right."""
    return "02:52:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)
