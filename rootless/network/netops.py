"""What the ``network`` verbs do: views for ls/inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from rootless._paths import StoragePaths
from rootless._procfs import process_start_time as process_start
from rootless.engine.network import connected, user_networks
from rootless.errors import ConfigError
from rootless.network.netstore import NetworkStore


def _users(paths: StoragePaths, name: str) -> list[Any]:
    """Container records on user network ``name`` (their --network, or connected)."""
    from rootless.engine.containers import containers_store

    return [r for r in containers_store(paths).list() if name in user_networks(r.options)]


def _remember(paths: StoragePaths, cid: str, network: str, attachment: Any) -> None:
    """Record (or with ``attachment`` None, forget) a connection in the container's options."""
    from rootless.engine.containers import containers_store

    store = containers_store(paths)
    options = dict(store.get(cid).options)
    networks = connected(options)
    if attachment is None:
        networks.pop(network, None)
    else:
        networks[network] = attachment
    options["connected_networks"] = networks
    store.update(cid, options=options)


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
    """Connect container ``ref`` to ``network``: now if it runs, and at each start
    (it must be on a user network itself: it then shares the networks' user namespace)."""
    import os

    from rootless.engine.containers import containers_store
    from rootless.network.membership import join
    from rootless.network.mode import parse_network

    paths = paths or StoragePaths.from_env()
    record = containers_store(paths).get(ref)
    NetworkStore(paths).get(network)
    mode = parse_network(record.options.get("network") or "none")
    if mode.kind != "network":
        raise ConfigError(
            f"cannot connect container {record.name} to network {network}: it has its own "
            "user namespace, in which the network's holder has no rights",
            hint=f"start it on a user network (--network NAME), or with --network {network}",
        )
    if mode.name == network or network in connected(record.options):
        raise ConfigError(f"container {record.name} is connected to network {network} already")
    if record.pid and process_start(record.pid) == record.pid_start:
        membership = join(paths, network)
        try:
            if os.stat(f"/proc/{record.pid}/ns/user").st_ino != os.stat(membership.userns).st_ino:
                raise ConfigError(
                    f"cannot connect container {record.name} to network {network}: its user "
                    "namespace is not the network's",
                    hint="stop it, connect it, and start it again",
                )
            membership.attach(
                cid=record.id, pid=record.pid, name=record.name, aliases=aliases, ip=ip
            )
        finally:
            membership.close()
    _remember(paths, record.id, network, {"aliases": list(aliases), "ip": ip})


def disconnect_container(network: str, ref: str, paths: StoragePaths | None = None) -> None:
    """Take container ``ref`` off ``network``: now, and for its later starts."""
    from rootless.engine.containers import containers_store
    from rootless.network.membership import join

    paths = paths or StoragePaths.from_env()
    record = containers_store(paths).get(ref)
    store = NetworkStore(paths)
    store.get(network)
    attached = record.id in store.state(network).get("containers", {})
    if not attached and network not in connected(record.options):
        raise ConfigError(f"container {record.name} is not connected to network {network}")
    if attached:
        membership = join(paths, network)
        try:
            membership.request({"op": "detach", "cid": record.id})
        finally:
            membership.close()
    _remember(paths, record.id, network, None)
