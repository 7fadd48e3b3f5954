"""Published ports: parse ``-p``/``-P`` specs (pure), then pick and check host ports.

A :class:`PortMapping` with ``host_port == 0`` means "any free port"; :func:`assign_free_ports`
fills those in. ``host_ip == ""`` means every address of the host.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable, Sequence

from rootless._record import Record
from rootless.errors import ConfigError

PROTOCOLS = ("tcp", "udp")


class PortMapping(Record):
    host_ip: str
    host_port: int
    container_port: int
    protocol: str  # "tcp" | "udp"

    def __str__(self) -> str:
        """Podman's ``port`` format: ``80/tcp -> 0.0.0.0:8080``."""
        ip = self.host_ip or "0.0.0.0"
        host = f"[{ip}]" if ":" in ip else ip
        return f"{self.container_port}/{self.protocol} -> {host}:{self.host_port}"


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(
        f'invalid port spec "{spec}": {why}',
        hint="use [ip:][hostPort:]containerPort[/tcp|udp], e.g. -p 8080:80 or -p 8000-8005:80-85",
    )


def _port_range(text: str, spec: str) -> range:
    first, sep, last = text.partition("-")
    try:
        lo = int(first)
        hi = int(last) if sep else lo
    except ValueError:
        raise _bad(spec, f'"{text}" is not a port or a range of ports') from None
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise _bad(spec, f'port "{text}" is out of range 1-65535')
    if hi < lo:
        raise _bad(spec, f'range "{text}" ends before it starts')
    return range(lo, hi + 1)


def _split_ip(spec: str, rest: str) -> tuple[str, str]:
    """Take a leading host IP off ``rest`` (``[::1]:`` for IPv6); "" when there is none."""
    if rest.startswith("["):
        ip, sep, tail = rest[1:].partition("]:")
        if not sep:
            raise _bad(spec, "an IPv6 address must be written as [addr]:port")
    else:
        parts = rest.split(":")
        if len(parts) < 3:
            return "", rest
        ip, tail = parts[0], ":".join(parts[1:])
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise _bad(spec, f'"{ip}" is not an IP address') from None
    return ip, tail


def parse_publish(spec: str) -> list[PortMapping]:
    """Parse one ``-p`` value; host ports left out come back as 0 (choose one later)."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise _bad(spec, f'protocol "{proto}" is not tcp or udp')
    host_ip, rest = _split_ip(spec, rest)
    host_text, sep, container_text = rest.rpartition(":")
    if not container_text:
        raise _bad(spec, "no container port")
    container = _port_range(container_text, spec)
    if not sep or not host_text:
        return [PortMapping(host_ip, 0, port, proto) for port in container]
    host = _port_range(host_text, spec)
    if len(host) != len(container):
        why = f"host range has {len(host)} ports, container range {len(container)}"
        raise _bad(spec, why)
    return [PortMapping(host_ip, h, c, proto) for h, c in zip(host, container, strict=True)]


def parse_expose(exposed: Iterable[str]) -> list[PortMapping]:
    """``-P``: each of the image's ``ExposedPorts`` keys (``80/tcp``, ``53/udp``, ``8000-8001``)
    to a random host port."""
    out: list[PortMapping] = []
    for key in exposed:
        if ":" in key:
            raise ConfigError(
                f'invalid exposed port "{key}" in the image',
                hint="EXPOSE takes port[/tcp|udp] or a range",
            )
        out.extend(parse_publish(key))
    return out


def plan_publish(specs: Sequence[str], exposed: Iterable[str] = ()) -> list[PortMapping]:
    """All ``-p`` values plus ``-P`` entries, with conflicts between them reported.

    An exposed port already published by ``-p`` is not published twice.
    """
    mappings = [m for spec in specs for m in parse_publish(spec)]
    published = {(m.container_port, m.protocol) for m in mappings}
    mappings += [
        m for m in parse_expose(exposed) if (m.container_port, m.protocol) not in published
    ]
    fixed = [m for m in mappings if m.host_port]
    for i, m in enumerate(fixed):
        for other in fixed[:i]:
            same_port = (other.host_port, other.protocol) == (m.host_port, m.protocol)
            # "" is every address, so it overlaps any specific one.
            if same_port and (other.host_ip == m.host_ip or "" in (other.host_ip, m.host_ip)):
                raise ConfigError(
                    f"host port {m.host_port}/{m.protocol} is published twice",
                    hint="give each -p its own host port",
                )
    return mappings


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _bind(m: PortMapping, port: int) -> socket.socket:
    kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(_family(m.host_ip), kind)
    try:
        if kind == socket.SOCK_STREAM:
            # As a server would: a port only in TIME_WAIT is free to use.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((m.host_ip, port))
    except BaseException:
        s.close()
        raise
    return s


def assign_free_ports(mappings: Sequence[PortMapping]) -> list[PortMapping]:
    """Replace every host port 0 by a port the kernel says is free now.

    The ports are held until all are chosen, so two mappings never get the same one.
    """
    held: list[socket.socket] = []
    out: list[PortMapping] = []
    try:
        for m in mappings:
            if m.host_port:
                out.append(m)
                continue
            s = _bind(m, 0)
            held.append(s)
            out.append(m._replace(host_port=s.getsockname()[1]))
    except OSError as e:
        raise ConfigError(
            f"cannot choose a free host port for {m.container_port}/{m.protocol} "
            f'on "{m.host_ip or "0.0.0.0"}": {e.strerror}',
            hint="give the host port explicitly",
        ) from None
    finally:
        for s in held:
            s.close()
    return out


def check_free(mappings: Iterable[PortMapping]) -> None:
    """Raise ConfigError naming the first host port that cannot be bound."""
    for m in mappings:
        if not m.host_port:
            continue
        try:
            _bind(m, m.host_port).close()
        except OSError as e:
            where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.protocol}"
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"cannot publish port {m.container_port}/{m.protocol}: "
                    f"host port {where} is already in use",
                    hint=f"stop what listens on {m.host_port} or choose another host port "
                    f"(-p OTHER:{m.container_port})",
                ) from None
            if e.errno == errno.EACCES:
                raise ConfigError(
                    f"cannot publish port {m.container_port}/{m.protocol}: host port {where} "
                    "is privileged",
                    hint="use a host port >= the value of net.ipv4.ip_unprivileged_port_start",
                ) from None
            raise ConfigError(
                f"cannot publish port {m.container_port}/{m.protocol} on {where}: {e.strerror}",
                hint="check the host address exists on this machine",
            ) from None


def publish(specs: Sequence[str], exposed: Iterable[str] = ()) -> list[PortMapping]:
    """Plan, choose random host ports and check every one is free: call before the start."""
    mappings = assign_free_ports(plan_publish(specs, exposed))
    check_free(mappings)
    return mappings
