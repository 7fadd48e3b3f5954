"""What the ``network`` verbs do: views for ls/inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from rootless._paths import StoragePaths
from rootless._procfs import process_start_time as process_start
from rootless.errors import ConfigError
from rootless.network.netstore import NetworkStore


def _users(paths: StoragePaths, name: str) -> list[Any]:
    """Container records whose --network is user network ``name``."""
    from rootless.engine.containers import containers_store
    from rootless.network.mode import parse_network

    out = []
    for record in containers_store(paths).list():
        try:
            mode = parse_network(record.options.get("network") or "none")
        except ConfigError:
            continue
        if mode.kind == "network" and mode.name == name:
            out.append(record)
    return out


def network_views(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The JSON of each network (all, or ``names`` in that order), with its containers."""
    store = NetworkStore(StoragePaths.from_env())
    nets = [store.get(n) for n in names] if names else store.networks()
    out = []
    for net in nets:
        view = net.to_json()
        state = store.state(net.name)
        view["network_interface"] = "rootless0"
        view["containers"] = state.get("containers", {})
        holder = state.get("holder")
        view["holder_pid"] = holder["pid"] if holder else None
        out.append(view)
    return out


def remove_network(name: str, *, force: bool = False, paths: StoragePaths | None = None) -> None:
    """Remove a network; with ``force`` its containers first (stopped and removed)."""
    paths = paths or StoragePaths.from_env()
    store = NetworkStore(paths)
    store.get(name)
    users = _users(paths, name)
    if users and not force:
        names = ", ".join(r.name for r in users)
        raise ConfigError(
            f"cannot remove network {name}: containers use it: {names}",
            hint=f"remove them first, or use: rootless network rm -f {name}",
        )
    if users:
        from rootless.engine.lifecycle import rm

        for record in users:
            rm(record.id, force=True, paths=paths)
    if store.state(name):
        # Its holder lingers a moment after the last container: not worth waiting for.
        from rootless.network.membership import release

        with contextlib.suppress(ConfigError):  # containers attached: said below
            release(paths, name)
    if store.state(name):
        raise ConfigError(
            f"cannot remove network {name}: containers are still attached",
            hint="stop them, or disconnect them with rootless network disconnect",
        )
    store.delete(name)


def prune_networks(paths: StoragePaths | None = None) -> list[str]:
    """Remove every network no container uses; their names."""
    paths = paths or StoragePaths.from_env()
    store = NetworkStore(paths)
    removed = []
    for net in store.networks():
        if not _users(paths, net.name) and not store.state(net.name):
            store.delete(net.name)
            removed.append(net.name)
    return removed


def connect_container(
    network: str,
    ref: str,
    *,
    aliases: Sequence[str] = (),
    ip: str | None = None,
    paths: StoragePaths | None = None,
) -> None:
    """Give running container ``ref`` an interface on ``network`` (it must share the
    networks' user namespace: it runs on a user network itself)."""
    import os

    from rootless.engine.containers import containers_store
    from rootless.network.membership import join

    paths = paths or StoragePaths.from_env()
    record = containers_store(paths).get(ref)
    if not record.pid or process_start(record.pid) != record.pid_start:
        raise ConfigError(
            f"cannot connect container {record.name}: it is not running",
            hint=f"start it first, or create it with --network {network}",
        )
    membership = join(paths, network)
    try:
        if os.stat(f"/proc/{record.pid}/ns/user").st_ino != os.stat(membership.userns).st_ino:
            raise ConfigError(
                f"cannot connect container {record.name} to network {network}: it has its own "
                "user namespace, in which the network's holder has no rights",
                hint=f"start it on a user network (--network NAME), or with --network {network}",
            )
        membership.attach(cid=record.id, pid=record.pid, name=record.name, aliases=aliases, ip=ip)
    finally:
        membership.close()


def disconnect_container(network: str, ref: str, paths: StoragePaths | None = None) -> None:
    from rootless.engine.containers import containers_store
    from rootless.network.membership import join

    paths = paths or StoragePaths.from_env()
    record = containers_store(paths).get(ref)
    store = NetworkStore(paths)
    store.get(network)
    if record.id not in store.state(network).get("containers", {}):
        raise ConfigError(f"container {record.name} is not connected to network {network}")
    membership = join(paths, network)
    try:
        membership.request({"op": "detach", "cid": record.id})
    finally:
        membership.close()
