"""A container's network: its mode, its /etc files, published ports, and the helper.

Planning (`plan_network`) happens when the container is created: ports are chosen and
checked free, and /etc/hosts, /etc/resolv.conf and /etc/hostname are written into the
container's directory and bound into it. Attaching (`NetworkAttachment`) happens each
time it starts: the supervisor (the foreground CLI or the monitor) starts slirp4netns
or pasta for PID 1's namespace before the command runs, and stops it afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rootless.runtime.spec import Mount


class NetworkRequest(NamedTuple):
    mode: str = "slirp4netns"  # --network
    publish: tuple[str, ...] = ()  # -p
    publish_all: bool = False  # -P
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()


class NetworkPlan(NamedTuple):
    own_namespace: bool  # False for --network host
    mounts: tuple[Mount, ...]  # /etc/hosts, /etc/resolv.conf, /etc/hostname
    options: Mapping[str, Any]  # kept in the container record for each start and `port`


def plan_network(
    request: NetworkRequest, *, cdir: Path, hostname: str, names: Sequence[str],
    exposed: Sequence[str] = (),
) -> NetworkPlan:  # fmt: skip
    from rootless.errors import ConfigError
    from rootless.network import etcfiles
    from rootless.network.hostfacts import read_host_facts
    from rootless.network.mode import parse_network
    from rootless.network.ports import publish

    mode = parse_network(request.mode)
    if mode.kind in ("container", "network"):
        raise ConfigError(
            f'network mode "{request.mode}" is not supported yet',
            hint="use slirp4netns (the default), pasta, none or host",
        )
    specs = list(request.publish)
    if (specs or request.publish_all) and not mode.user_mode:
        raise ConfigError(
            f"cannot publish ports with --network {mode.kind}",
            hint="use --network slirp4netns or pasta (the default is slirp4netns)",
        )
    ports = publish(specs, exposed if request.publish_all else ())
    options: dict[str, Any] = {
        "network": request.mode,
        "ports": [list(p) for p in ports],
    }
    if mode.kind == "host":
        return NetworkPlan(False, (), options)
    host = read_host_facts()
    addresses = etcfiles.plan_addresses(mode, host)
    add_hosts = [etcfiles.parse_add_host(h) for h in request.add_hosts]
    files = {
        "hosts": etcfiles.hosts(
            hostname=hostname, names=names, addresses=addresses, add_hosts=add_hosts
        ),
        "resolv.conf": etcfiles.resolv_conf(
            host.resolv,
            addresses.nameservers,
            dns=request.dns,
            dns_search=request.dns_search,
            dns_options=request.dns_options,
        ),
        "hostname": etcfiles.hostname_file(hostname),
    }
    mounts = []
    for name, text in files.items():
        (cdir / name).write_text(text)
        mounts.append(Mount(f"/etc/{name}", "bind", str(cdir / name), ("bind", "rw")))
    return NetworkPlan(True, tuple(mounts), options)


class NetworkAttachment:
    """The helper of one run of a container; ``attach`` is a ``LaunchOptions.before_exec``."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options
        self.helper: Any = None
        self.socket_dir: str | None = None

    @property
    def needed(self) -> bool:
        from rootless.network.mode import parse_network

        return parse_network(self.options.get("network") or "none").user_mode

    def attach(self, pid: int) -> None:
        from rootless.network.mode import parse_network
        from rootless.network.ports import PortMapping

        mode = parse_network(self.options.get("network") or "none")
        ports = [PortMapping(*p) for p in self.options.get("ports") or ()]
        if mode.kind == "slirp4netns":
            import tempfile

            from rootless.network.slirp import start_slirp4netns

            # The API socket's path must fit sockaddr_un (108 bytes): a short private dir.
            self.socket_dir = tempfile.mkdtemp(prefix="rootless-slirp-")
            assert mode.slirp is not None
            self.helper = start_slirp4netns(
                pid, options=mode.slirp, ports=ports, api_socket_dir=self.socket_dir
            )
        elif mode.kind == "pasta":
            from rootless.network.pasta import start_pasta

            self.helper = start_pasta(pid, options=mode.pasta_args, ports=ports)

    def stop(self) -> None:
        if self.helper is not None:
            self.helper.stop()
            self.helper = None
        if self.socket_dir is not None:
            import shutil

            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None


def format_ports(options: Mapping[str, Any]) -> list[str]:
    """``rootless port`` lines: ``80/tcp -> 0.0.0.0:8080``."""
    from rootless.network.ports import PortMapping

    return [str(PortMapping(*p)) for p in options.get("ports") or ()]
