"""Parse ``--network`` values (pure).

==========================  ===================================================
``slirp4netns[:k=v,...]``   own namespace, NAT through slirp4netns (the default)
``pasta[:opt,...]``         own namespace, NAT through pasta; options passed through
``none``                    own namespace with only ``lo``
``private``                 same as ``none`` (the runtime's name for it)
``host``                    the host's namespace
``container:NAME``          the namespace of container NAME
``NAME[:k=v,...]``          user network NAME (options alias=, ip=, ip6=, mac=)
==========================  ===================================================
"""

from __future__ import annotations

import ipaddress
import re

from rootless._record import Record
from rootless.errors import ConfigError

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\Z")
DEFAULT_MTU = 65520  # as Podman: large frames make the user-mode stack much faster
DEFAULT_SLIRP_CIDR = "10.0.2.0/24"


class SlirpOptions(Record):
    allow_host_loopback: bool = False
    mtu: int = DEFAULT_MTU
    enable_ipv6: bool = False
    cidr: str = DEFAULT_SLIRP_CIDR
    outbound_addr: str | None = None
    outbound_addr6: str | None = None
    mac: str | None = None  # of tap0 (--mac-address)


class NetworkOptions(Record):
    """Options of a container on a user network."""

    aliases: tuple[str, ...] = ()
    ip: str | None = None
    ip6: str | None = None
    mac: str | None = None


class NetworkMode(Record):
    kind: str  # "slirp4netns" | "pasta" | "none" | "host" | "container" | "network"
    name: str | None = None  # the container or network name
    slirp: SlirpOptions | None = None
    pasta_args: tuple[str, ...] = ()
    network: NetworkOptions | None = None

    @property
    def own_namespace(self) -> bool:
        return self.kind not in ("host", "container")

    @property
    def user_mode(self) -> bool:
        """A helper (slirp4netns or pasta) must run for this mode."""
        return self.kind in ("slirp4netns", "pasta")


def _bad(value: str, why: str, hint: str) -> ConfigError:
    return ConfigError(f'invalid --network "{value}": {why}', hint=hint)


def _pairs(value: str, text: str) -> list[tuple[str, str]]:
    out = []
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise _bad(value, f'option "{item}" is not key=value', "write options as key=value,...")
        out.append((key.strip(), val.strip()))
    return out


def _bool(value: str, key: str, text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise _bad(value, f'{key}="{text}" is not true or false', f"use {key}=true or {key}=false")


def _ip(value: str, key: str, text: str, version: int | None = None) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise _bad(value, f'{key}="{text}" is not an IP address', f"e.g. {key}=10.0.0.5") from None
    if version is not None and addr.version != version:
        raise _bad(value, f'{key}="{text}" is not an IPv{version} address', "check the address")
    return str(addr)


def parse_slirp_options(value: str, text: str) -> SlirpOptions:
    fields: dict[str, object] = {}
    for key, val in _pairs(value, text):
        if key in ("allow_host_loopback", "enable_ipv6"):
            fields[key] = _bool(value, key, val)
        elif key == "mtu":
            if not val.isdigit() or not 68 <= int(val) <= 65521:
                raise _bad(value, f'mtu="{val}" is not a number in 68-65521', "e.g. mtu=1500")
            fields["mtu"] = int(val)
        elif key == "cidr":
            try:
                net = ipaddress.IPv4Network(val, strict=False)
            except ValueError:
                why = f'cidr="{val}" is not an IPv4 network'
                raise _bad(value, why, "e.g. cidr=10.5.0.0/24") from None
            if net.prefixlen > 25:
                raise _bad(value, f'cidr="{val}" is too small', "use a /25 or larger")
            fields["cidr"] = str(net)
        elif key == "outbound_addr":
            fields[key] = _ip(value, key, val, 4)
        elif key == "outbound_addr6":
            fields[key] = _ip(value, key, val, 6)
        elif key == "port_handler":
            if val != "slirp4netns":
                why = f'port_handler "{val}" is not available'
                raise _bad(value, why, "use port_handler=slirp4netns")
        else:
            raise _bad(
                value,
                f'unknown slirp4netns option "{key}"',
                "known: allow_host_loopback, mtu, enable_ipv6, cidr, outbound_addr, outbound_addr6",
            )
    return SlirpOptions(**fields)  # type: ignore[arg-type]


def parse_network_options(value: str, text: str) -> NetworkOptions:
    aliases: list[str] = []
    fields: dict[str, str] = {}
    for key, val in _pairs(value, text):
        if key == "alias":
            if not _NAME.match(val):
                why = f'alias "{val}" is not a valid name'
                raise _bad(value, why, "use letters, digits, _ . -")
            aliases.append(val)
        elif key == "ip":
            fields["ip"] = _ip(value, key, val, 4)
        elif key == "ip6":
            fields["ip6"] = _ip(value, key, val, 6)
        elif key == "mac":
            if not _MAC.match(val):
                raise _bad(value, f'mac="{val}" is not a MAC address', "e.g. mac=92:d0:c6:0a:29:33")
            if not _unicast(val):
                why = f'mac="{val}" is a multicast address, not a unicast one'
                raise _bad(value, why, "use an even first octet, e.g. mac=92:d0:c6:0a:29:33")
            fields["mac"] = val.lower()
        else:
            raise _bad(value, f'unknown network option "{key}"', "known: alias, ip, ip6, mac")
    return NetworkOptions(aliases=tuple(aliases), **fields)


def _unicast(mac: str) -> bool:
    # The low bit of the first octet marks multicast (and broadcast), which no
    # interface may take as its own address.
    return not int(mac[:2], 16) & 1


MAC_MODES = ("slirp4netns", "pasta", "network")


def parse_mac(text: str) -> str:
    """A ``--mac-address`` value, checked and lower-cased."""
    if not _MAC.match(text) or not _unicast(text):
        raise ConfigError(
            f'invalid --mac-address "{text}": not a unicast MAC address',
            hint="six hex pairs separated by colons with an even first octet, "
            "e.g. 92:d0:c6:0a:29:33",
        )
    return text.lower()


def parse_network(value: str) -> NetworkMode:
    """One ``--network`` value to a :class:`NetworkMode`."""
    kind, sep, rest = value.partition(":")
    if sep and not rest:
        raise _bad(value, "nothing after the colon", "drop the colon or add options")
    if kind in ("none", "private", "host"):
        if sep:
            raise _bad(value, f'"{kind}" takes no options', f"use --network {kind}")
        return NetworkMode("none" if kind == "private" else kind)
    if kind == "slirp4netns":
        return NetworkMode(kind, slirp=parse_slirp_options(value, rest) if sep else SlirpOptions())
    if kind == "pasta":
        # Podman's syntax: the options are pasta's own, comma-separated.
        return NetworkMode(kind, pasta_args=tuple(rest.split(",")) if sep else ())
    if kind == "container":
        if not _NAME.match(rest):
            raise _bad(value, "not a container name", "use --network container:NAME")
        return NetworkMode("container", name=rest)
    if not _NAME.match(kind):
        raise _bad(value, f'"{kind}" is not a network name', "use letters, digits, _ . -")
    options = parse_network_options(value, rest) if sep else NetworkOptions()
    return NetworkMode("network", name=kind, network=options)
