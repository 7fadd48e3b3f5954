"""A container's network: its mode, its /etc files, published ports, and the helper.

Planning (`plan_network`) happens when the container is created: ports are chosen and
checked free, and /etc/hosts, /etc/resolv.conf and /etc/hostname are written into the
container's directory and bound into it. Attaching (`NetworkAttachment`) happens each
time it starts: ``prepare`` turns the spec's namespaces into the ones to join (the
user network's, or another container's), then the supervisor (the foreground CLI or
the monitor) calls ``attach`` with PID 1 before the command runs (slirp4netns or pasta
start, or the user network's holder plugs in eth0), and ``stop`` afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.spec import Mount, Spec, join_namespaces


class NetworkRequest(Record):
    mode: str = "slirp4netns"  # --network
    publish: tuple[str, ...] = ()  # -p
    publish_all: bool = False  # -P
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    mac_address: str | None = None  # --mac-address


class NetworkPlan(Record):
    own_namespace: bool  # False for --network host
    mounts: tuple[Mount, ...]  # /etc/hosts, /etc/resolv.conf, /etc/hostname
    options: Mapping[str, Any]  # kept in the container record for each start and `port`


def plan_network(
    request: NetworkRequest, *, cdir: Path, hostname: str, names: Sequence[str],
    exposed: Sequence[str] = (),
) -> NetworkPlan:  # fmt: skip
    from rootless.network import etcfiles
    from rootless.network.hostfacts import read_host_facts
    from rootless.network.mode import parse_network
    from rootless.network.ports import publish

    mode = parse_network(request.mode)
    specs = list(request.publish)
    if (specs or request.publish_all) and not (mode.user_mode or mode.kind == "network"):
        raise ConfigError(
            f"cannot publish ports with --network {request.mode}",
            hint="use --network slirp4netns, pasta or a user network (NAME)",
        )
    mac = _plan_mac(request, mode)
    ports = publish(specs, exposed if request.publish_all else ())
    options: dict[str, Any] = {
        "network": request.mode,
        "ports": [list(p) for p in ports],
    }
    if mac is not None:
        options["mac_address"] = mac
    if mode.kind == "host":
        return NetworkPlan(False, _host_mode_files(request, cdir), options)
    if mode.kind == "container":
        given = [flag for flag, value in (
            ("--add-host", request.add_hosts), ("--dns", request.dns),
            ("--dns-search", request.dns_search), ("--dns-option", request.dns_options),
        ) if value]  # fmt: skip
        if given:
            # as Podman: the files are the other container's, shared
            raise ConfigError(
                f"cannot use {', '.join(given)} with --network {request.mode}: the container "
                "shares the other one's /etc/hosts and /etc/resolv.conf",
                hint="give them to the container whose network it joins",
            )
        return _plan_container_mode(mode, options, cdir=cdir, hostname=hostname)
    host = read_host_facts()
    if mode.kind == "network":
        addresses = _plan_user_network(mode, host, ports)
        options["user_network"] = {
            "cid": cdir.name,
            "etc_dir": str(cdir),
            "hostname": hostname,
            "names": list(names),
            "add_hosts": list(request.add_hosts),
        }
    else:
        addresses = etcfiles.plan_addresses(mode, host)
    add_hosts = [etcfiles.parse_add_host(h) for h in request.add_hosts]
    files = {
        "hosts": etcfiles.hosts(
            hostname=hostname, names=names, addresses=addresses, add_hosts=add_hosts
        ),
        "resolv.conf": etcfiles.resolv_conf(
            host.resolv._replace(search=()) if mode.kind == "network" else host.resolv,
            addresses.nameservers,
            dns=request.dns,
            dns_search=request.dns_search,
            dns_options=request.dns_options,
        ),
        "hostname": etcfiles.hostname_file(hostname),
    }
    return NetworkPlan(True, _bind_etc_files(cdir, files), options)


def _host_mode_files(request: NetworkRequest, cdir: Path) -> tuple[Mount, ...]:
    """With the host's network, as Podman: the host's /etc/hosts under the ``--add-host``
    entries, and the host's resolver under the ``--dns*`` values."""
    from rootless.network import etcfiles
    from rootless.network.hostfacts import read_host_facts

    try:
        base = Path("/etc/hosts").read_text(errors="replace")
    except OSError:
        base = f"127.0.0.1\t{etcfiles.LOCALHOST4}\n::1\t{etcfiles.LOCALHOST6}\n"
    host = read_host_facts()
    # no address line of its own: the container has the host's names and addresses
    addresses = etcfiles.Addresses(None, host.gateway, host.resolv.nameservers, "127.0.0.1")
    add_hosts = [etcfiles.parse_add_host(h) for h in request.add_hosts]
    files = {
        "hosts": etcfiles.hosts(hostname="", addresses=addresses, add_hosts=add_hosts, base=base),
        "resolv.conf": etcfiles.resolv_conf(
            host.resolv,
            host.resolv.nameservers,
            dns=request.dns,
            dns_search=request.dns_search,
            dns_options=request.dns_options,
        ),
    }
    return _bind_etc_files(cdir, files)


def _bind_etc_files(cdir: Path, files: Mapping[str, str]) -> tuple[Mount, ...]:
    """Write ``files`` in the container's directory; the mounts binding them on /etc."""
    mounts = []
    for name, text in files.items():
        (cdir / name).write_text(text)
        mounts.append(Mount(f"/etc/{name}", "bind", str(cdir / name), ("bind", "rw")))
    return tuple(mounts)


def _plan_mac(request: NetworkRequest, mode: Any) -> str | None:
    """The checked ``--mac-address``, refused where no interface of the container's own
    is made (and where it would contradict ``mac=`` or pasta's ``--ns-mac-addr``)."""
    from rootless.network.mode import MAC_MODES, parse_mac

    if request.mac_address is None:
        return None
    mac = parse_mac(request.mac_address)
    if mode.kind not in MAC_MODES:
        raise ConfigError(
            f"cannot set --mac-address with --network {request.mode}: the container has no "
            "interface of its own to set it on",
            hint="use it with --network slirp4netns, pasta or a user network, or drop it",
        )
    given = mode.network.mac if mode.kind == "network" else None
    if mode.kind == "pasta" and "--ns-mac-addr" in mode.pasta_args:
        given = "--ns-mac-addr"
    if given is not None and given != mac:
        raise ConfigError(
            f"cannot set --mac-address {mac}: --network {request.mode} already sets it",
            hint="give the MAC address once",
        )
    return mac


def _plan_user_network(mode: Any, host: Any, ports: Sequence[Any]) -> Any:
    """The /etc addresses of a container on a user network; its own address is only
    known once it is attached (``ip=`` and the ports its egress can publish are
    checked here)."""
    from rootless._paths import StoragePaths
    from rootless.network.addresses import check_requested
    from rootless.network.etcfiles import Addresses
    from rootless.network.netstore import NetworkStore
    from rootless.network.slirp import hostfwd_request
    from rootless.network.usernet import HOST_LOOPBACK

    net = NetworkStore(StoragePaths.from_env()).get(mode.name)
    if mode.network.ip is not None:
        check_requested(net.addresses, mode.network.ip)
    if mode.network.ip6 is not None:
        raise ConfigError(
            f"cannot use ip6={mode.network.ip6}: user networks are IPv4 only",
            hint="leave out ip6=",
        )
    if ports and net.internal:
        raise ConfigError(
            f"cannot publish ports on network {net.name}: it is --internal (it has no way "
            "out to the host)",
            hint="use a network made without --internal, or drop -p/-P",
        )
    for p in ports:
        hostfwd_request(p, "0.0.0.0")  # slirp4netns publishes IPv4 host addresses only
    host_gw = HOST_LOOPBACK if net.host_loopback else (None if net.internal else host.address)
    return Addresses(None, net.gateway, (net.gateway,), host_gw)


def _plan_container_mode(
    mode: Any, options: dict[str, Any], *, cdir: Path, hostname: str
) -> NetworkPlan:
    """``container:NAME``: the other container's /etc/hosts and /etc/resolv.conf (copied
    now) and its network namespace (joined at each start)."""
    from rootless.engine.containers import containers_store

    target = containers_store().get(mode.name)
    options["network"] = f"container:{target.id}"
    tdir = containers_store().container_dir(target.id)
    mounts = []
    for name in ("hosts", "resolv.conf"):
        source = tdir / name
        if source.exists():
            (cdir / name).write_bytes(source.read_bytes())
            mounts.append(Mount(f"/etc/{name}", "bind", str(cdir / name), ("bind", "rw")))
    (cdir / "hostname").write_text(hostname + "\n")
    mounts.append(Mount("/etc/hostname", "bind", str(cdir / "hostname"), ("bind", "rw")))
    return NetworkPlan(True, tuple(mounts), options)


def connected(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The networks a container was connected to besides its ``--network`` (``network
    connect``, a compose service's other networks), by name: ``{"aliases": [...], "ip":
    IP or None}``. Each start connects it to them again."""
    return dict(options.get("connected_networks") or {})


def user_networks(options: Mapping[str, Any]) -> list[str]:
    """The user networks a container is on at each start: its ``--network`` (when that
    is one) first, then those it was connected to."""
    from rootless.network.mode import parse_network

    try:
        mode = parse_network(options.get("network") or "none")
    except ConfigError:
        return []
    first = [mode.name] if mode.kind == "network" and mode.name else []
    return [*first, *connected(options)]


class NetworkAttachment:
    """The network of one run of a container: ``prepare`` the spec before it starts,
    ``attach`` (a ``LaunchOptions.before_exec``) with PID 1, ``stop`` after it exits."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        from rootless.network.mode import parse_network

        self.options = options
        self.mode = parse_network(options.get("network") or "none")
        self.helper: Any = None
        self.socket_dir: str | None = None
        self.membership: Any = None

    @property
    def needed(self) -> bool:
        return self.mode.user_mode or self.mode.kind == "network"

    def prepare(self, spec: Spec) -> Spec:
        """The spec to start: on a user network, in its holder's user namespace (the
        holder is started if needed); with ``container:ID``, in that container's user
        and network namespaces. Call right before the start; ``stop`` afterwards."""
        if self.mode.kind == "network":
            from rootless._paths import StoragePaths
            from rootless.network.membership import join

            assert self.mode.name is not None
            self.membership = join(StoragePaths.from_env(), self.mode.name)
            return join_namespaces(spec, {"user": self.membership.userns})
        if self.mode.kind == "container":
            pod = self.options.get("pod")
            # a pod's container also shares its infra container's hostname and IPC
            shared = ("uts", "ipc") if isinstance(pod, dict) and not pod.get("infra") else ()
            return join_namespaces(spec, _container_namespaces(str(self.mode.name), shared))
        return spec

    def attach(self, pid: int) -> None:
        from rootless.network.ports import PortMapping

        mode = self.mode
        ports = [PortMapping(*p) for p in self.options.get("ports") or ()]
        if mode.kind == "slirp4netns":
            import tempfile

            from rootless.network.slirp import start_slirp4netns

            # The API socket's path must fit sockaddr_un (108 bytes): a short private dir.
            self.socket_dir = tempfile.mkdtemp(prefix="rootless-slirp-")
            assert mode.slirp is not None
            slirp = mode.slirp._replace(mac=self.options.get("mac_address"))
            self.helper = start_slirp4netns(
                pid, options=slirp, ports=ports, api_socket_dir=self.socket_dir
            )
        elif mode.kind == "pasta":
            from rootless.network.pasta import start_pasta

            args = mode.pasta_args
            if mac := self.options.get("mac_address"):
                args = (*args, "--ns-mac-addr", mac)
            self.helper = start_pasta(pid, options=args, ports=ports)
        elif mode.kind == "network":
            self._attach_user_network(pid)

    def _attach_user_network(self, pid: int) -> None:
        assert self.membership is not None and self.mode.network is not None
        from rootless.network.ports import PortMapping, check_free

        info = self.options["user_network"]
        ports = [PortMapping(*p) for p in self.options.get("ports") or ()]
        try:
            reply = self.membership.attach(
                cid=info["cid"],
                pid=pid,
                name=info["names"][0] if info["names"] else "",
                aliases=self.mode.network.aliases,
                ip=self.mode.network.ip,
                mac=self.mode.network.mac or self.options.get("mac_address"),
                ports=ports,
            )
        except ConfigError:
            # The holder cannot tell why a host port failed (it is in another network
            # namespace); the host's side can: a port taken since the create.
            check_free(ports)
            raise
        write_hosts(self.options, self.membership.net, reply["ip"])
        for network, extra in connected(self.options).items():
            self._attach_more(network, pid, info, extra)

    def _attach_more(
        self, network: str, pid: int, info: Mapping[str, Any], extra: Mapping[str, Any]
    ) -> None:
        """An interface on one of the container's other networks (``eth1``, ...)."""
        from rootless._paths import StoragePaths
        from rootless.network.membership import join

        name = info["names"][0] if info["names"] else ""
        try:
            membership = join(StoragePaths.from_env(), network)
        except ConfigError as e:
            raise ConfigError(
                f"cannot connect the container to network {network}: {e.message}",
                hint=f"disconnect it: rootless network disconnect {network} {name or info['cid']}",
            ) from None
        try:
            membership.attach(
                cid=info["cid"], pid=pid, name=name, aliases=extra["aliases"], ip=extra["ip"]
            )
        finally:
            membership.close()

    def stop(self) -> None:
        if self.helper is not None:
            self.helper.stop()
            self.helper = None
        if self.socket_dir is not None:
            import shutil

            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None
        if self.membership is not None:
            self.membership.close()
            self.membership = None


def write_hosts(options: Mapping[str, Any], net: Any, ip: str) -> None:
    """Rewrite the container's /etc/hosts with its address on the network, in place (the
    file is bind-mounted: a new inode would not be seen)."""
    from rootless.network import etcfiles
    from rootless.network.hostfacts import read_host_facts
    from rootless.network.usernet import HOST_LOOPBACK

    info = options["user_network"]
    host_gw: str | None = HOST_LOOPBACK
    if not net.host_loopback:
        host_gw = None if net.internal else read_host_facts().address
    text = etcfiles.hosts(
        hostname=info["hostname"],
        names=info["names"],
        addresses=etcfiles.Addresses(ip, net.gateway, (net.gateway,), host_gw),
        add_hosts=[etcfiles.parse_add_host(h) for h in info["add_hosts"]],
    )
    with open(Path(info["etc_dir"]) / "hosts", "r+") as f:
        f.write(text)
        f.truncate()


def _container_namespaces(ref: str, shared: Sequence[str] = ()) -> dict[str, str | None]:
    """The namespaces of running container ``ref`` to join: its user namespace, its
    network namespace (none to make when it uses the host's) and those ``shared``."""
    from rootless._procfs import process_start_time as process_start
    from rootless.engine.containers import containers_store
    from rootless.errors import ContainerStartError
    from rootless.network.mode import parse_network

    target = containers_store().get(ref)
    if not target.pid or process_start(target.pid) != target.pid_start:
        raise ContainerStartError(
            f"cannot join the network of container {target.name}: it is not running",
            hint=f"start it first: rootless start {target.name}",
        )
    ns = f"/proc/{target.pid}/ns"
    # the shared namespaces belong to the target's user namespace: joined with it
    joined: dict[str, str | None] = {k: f"{ns}/{k}" for k in ("user", *shared)} if shared else {}
    if parse_network(target.options.get("network") or "none").kind == "host":
        return {**joined, "network": None}  # the host's namespace, as the target
    return {**joined, "user": f"{ns}/user", "network": f"{ns}/net"}


def format_ports(options: Mapping[str, Any]) -> list[str]:
    """``rootless port`` lines: ``80/tcp -> 0.0.0.0:8080``."""
    from rootless.network.ports import PortMapping

    return [str(PortMapping(*p)) for p in options.get("ports") or ()]
