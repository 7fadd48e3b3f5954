"""Contents of a container's /etc/hosts, /etc/resolv.conf and /etc/hostname (pure).

The caller reads the host's facts (:mod:`rootless.network.hostfacts`), plans the
container's addresses with :func:`plan_addresses`, renders the files with the functions
below and bind-mounts them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.network.mode import NetworkMode

HOST_NAMES = ("host.containers.internal", "host.docker.internal")
HOST_GATEWAY = "host-gateway"  # --add-host NAME:host-gateway, as in Docker and Podman
LOCALHOST4 = "localhost localhost.localdomain localhost4 localhost4.localdomain4"
LOCALHOST6 = "localhost localhost.localdomain localhost6 localhost6.localdomain6"
PASTA_DNS_FORWARD = "169.254.1.1"  # pasta forwards queries to this address to the host's resolver


class ResolvConf(Record):
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


class HostFacts(Record):
    """What the container's files need to know about the host."""

    resolv: ResolvConf = ResolvConf()
    address: str | None = None  # the host's IPv4 address on its default route
    gateway: str | None = None  # the host's default IPv4 gateway


class Addresses(Record):
    """A container's addresses as the user-mode helper will configure them."""

    ip: str | None  # None: no address but loopback
    gateway: str | None
    nameservers: tuple[str, ...]
    host_gateway: str | None  # host.containers.internal; None when the host is unreachable


def parse_resolv_conf(text: str) -> ResolvConf:
    servers: list[str] = []
    search: tuple[str, ...] = ()
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        if words[0] == "nameserver":
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = tuple(words[1:])  # the last one wins, as in glibc
        elif words[0] == "options":
            options.extend(words[1:])
    return ResolvConf(tuple(servers), search, tuple(options))


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def _pasta_value(args: Sequence[str], short: str, long: str) -> str | None:
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
    return None


def plan_addresses(mode: NetworkMode, host: HostFacts) -> Addresses:
    """The container's IPv4 address, gateway, DNS and host address for user-mode networks."""
    if mode.kind == "slirp4netns":
        assert mode.slirp is not None
        net = ipaddress.IPv4Network(mode.slirp.cidr)
        # slirp reaches the host's loopback through its gateway only when allowed; the
        # host's own address works otherwise (services bound to all addresses).
        host_gw = str(net[2]) if mode.slirp.allow_host_loopback else host.address
        return Addresses(str(net[100]), str(net[2]), (str(net[3]),), host_gw)
    if mode.kind == "pasta":
        # pasta copies the host's address and gateway unless told otherwise.
        ip = _pasta_value(mode.pasta_args, "-a", "--address") or host.address
        pasta_gw = _pasta_value(mode.pasta_args, "-g", "--gateway") or host.gateway
        servers = tuple(s for s in host.resolv.nameservers if not _is_loopback(s))
        host_gw = pasta_gw if "--map-gw" in mode.pasta_args else None
        return Addresses(ip, pasta_gw, servers or (PASTA_DNS_FORWARD,), host_gw)
    if mode.kind == "host":
        return Addresses(host.address, host.gateway, host.resolv.nameservers, "127.0.0.1")
    return Addresses(None, None, (), None)


def resolv_conf(
    host: ResolvConf,
    nameservers: Sequence[str],
    *,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """/etc/resolv.conf: ``--dns*`` values win; search domains and options come from the host.

    ``--dns-search .`` means no search domains, as in Podman.
    """
    servers = tuple(dns) or tuple(nameservers)
    search = tuple(dns_search) or host.search
    if search == (".",):
        search = ()
    options = tuple(dns_options) or host.options
    lines = []
    if search:
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "".join(line + "\n" for line in lines)


def parse_add_host(spec: str) -> tuple[str, str]:
    """``--add-host NAME:IP`` (IPv6 as is, or in brackets; ``host-gateway`` allowed)."""
    name, sep, ip = spec.partition(":")
    ip = ip.removeprefix("[").removesuffix("]")
    hint = "use --add-host NAME:IP, e.g. db:10.0.0.5"
    if not sep or not name or not ip:
        raise ConfigError(f'invalid --add-host "{spec}": expected NAME:IP', hint=hint)
    if ip != HOST_GATEWAY:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            why = f'"{ip}" is not an IP address'
            raise ConfigError(f'invalid --add-host "{spec}": {why}', hint=hint) from None
    return name, ip


def hosts(
    *,
    hostname: str,
    names: Sequence[str] = (),
    addresses: Addresses,
    add_hosts: Sequence[tuple[str, str]] = (),
    base: str | None = None,
) -> str:
    """/etc/hosts: ``--add-host`` entries first (they win), then localhost, the container
    (hostname and ``names``) and host.containers.internal.

    ``base`` (the host's own file, for ``--network host``) replaces the localhost lines.
    """
    lines: list[str] = []
    for name, ip in add_hosts:
        if ip == HOST_GATEWAY:
            if addresses.host_gateway is None:
                raise ConfigError(
                    f"cannot resolve --add-host {name}:{HOST_GATEWAY}: the host is not "
                    "reachable from this network mode",
                    hint="use slirp4netns:allow_host_loopback=true or an explicit IP",
                )
            ip = addresses.host_gateway
        lines.append(f"{ip}\t{name}")
    if base is not None:
        lines.append(base.rstrip("\n"))
    else:
        lines += [f"127.0.0.1\t{LOCALHOST4}", f"::1\t{LOCALHOST6}"]
    own = " ".join(dict.fromkeys([hostname, *names]))
    if addresses.ip is not None:
        lines.append(f"{addresses.ip}\t{own}")
    elif base is None:
        lines.append(f"127.0.1.1\t{own}")
    if addresses.host_gateway is not None:
        lines.append(f"{addresses.host_gateway}\t{' '.join(HOST_NAMES)}")
    return "".join(line + "\n" for line in lines)


def hostname_file(hostname: str) -> str:
    return hostname + "\n"
