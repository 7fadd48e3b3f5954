"""User network definitions and their runtime state.

Definitions live in ``$XDG_DATA_HOME/rootless/networks/NAME.json`` (atomic writes,
under ``networks/.lock``). While a network is in use its holder (see
:mod:`rootless.network.usernet`) keeps its state in
``$XDG_RUNTIME_DIR/rootless/networks/NAME/``: ``state.json`` (the holder's PIDs and
the attached containers with their addresses), ``ctl.sock`` (the holder's control
socket) and ``holder.log`` (its output, kept when it fails to start).
``networks/.lock`` in the runtime directory serialises
starting and stopping holders, so two holders never serve one network and every
holder shares one user namespace (see docs/networking.md).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rootless._atomic import atomic_write, flock
from rootless._events import emit
from rootless._paths import StoragePaths
from rootless._procfs import process_start_time
from rootless._record import Record
from rootless.errors import ConfigError
from rootless.network.addresses import NetworkAddresses

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}\Z")
RESERVED = frozenset({"none", "host", "private", "slirp4netns", "pasta", "container", "bridge"})


class NetworkDef(Record):
    name: str
    id: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: Mapping[str, str] = {}
    options: Mapping[str, str] = {}
    created: str = ""

    @property
    def addresses(self) -> NetworkAddresses:
        return NetworkAddresses(self.subnet, self.gateway)

    @property
    def host_loopback(self) -> bool:
        """The host's 127.0.0.1 is reachable as 10.0.2.2 (``-o allow_host_loopback=true``)."""
        return self.options.get("allow_host_loopback", "false").lower() == "true"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "driver": "bridge",
            "subnets": [{"subnet": self.subnet, "gateway": self.gateway}],
            "internal": self.internal,
            "dns_enabled": True,
            "labels": dict(self.labels),
            "options": dict(self.options),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkDef:
        sub = data["subnets"][0]
        return cls(
            name=data["name"],
            id=data["id"],
            subnet=sub["subnet"],
            gateway=sub["gateway"],
            internal=bool(data.get("internal")),
            labels=dict(data.get("labels") or {}),
            options=dict(data.get("options") or {}),
            created=data.get("created", ""),
        )


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f'invalid network name "{name}"',
            hint="use up to 63 letters, digits, _ . - starting with a letter or digit",
        )
    if name in RESERVED:
        raise ConfigError(
            f'invalid network name "{name}": it names a network mode', hint="choose another name"
        )


class NetworkStore:
    """Definitions (data directory) and runtime files (runtime directory) of user networks."""

    def __init__(self, paths: StoragePaths) -> None:
        self.defs = paths.data / "networks"
        self.runtime = paths.runtime / "networks"

    # -- definitions ---------------------------------------------------------------

    def _def_path(self, name: str) -> Path:
        check_name(name)
        return self.defs / f"{name}.json"

    def definitions_lock(self) -> Any:
        self.defs.mkdir(parents=True, exist_ok=True)
        return flock(self.defs / ".lock")

    def exists(self, name: str) -> bool:
        return self._def_path(name).exists()

    def get(self, name: str) -> NetworkDef:
        try:
            data = json.loads(self._def_path(name).read_text())
        except FileNotFoundError:
            raise ConfigError(
                f'network "{name}" not found',
                hint=f"create it first: rootless network create {name}",
            ) from None
        return NetworkDef.from_json(data)

    def networks(self) -> list[NetworkDef]:
        if not self.defs.is_dir():
            return []
        out = []
        for path in sorted(self.defs.glob("*.json")):
            try:
                out.append(NetworkDef.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError):
                continue  # removed meanwhile, or not ours
        return out

    def create(
        self,
        name: str,
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        routes_file: str = "/proc/net/route",
    ) -> NetworkDef:
        from rootless.network.addresses import host_routes, plan_addresses

        check_name(name)
        for key in options or {}:
            if key != "allow_host_loopback":
                raise ConfigError(
                    f'unknown network option "{key}"', hint="known: allow_host_loopback"
                )
        try:
            routes = host_routes(Path(routes_file).read_text())
        except OSError:
            routes = []
        with self.definitions_lock():
            if self.exists(name):
                raise ConfigError(
                    f'network "{name}" already exists', hint="choose another name or remove it"
                )
            existing = [(n.name, n.subnet) for n in self.networks()]
            planned = plan_addresses(subnet, gateway, networks=existing, routes=routes)
            net = NetworkDef(
                name=name,
                id=os.urandom(32).hex(),
                subnet=planned.subnet,
                gateway=planned.gateway,
                internal=internal,
                labels=dict(labels or {}),
                options=dict(options or {}),
                created=datetime.datetime.now(datetime.UTC).isoformat(),
            )
            atomic_write(self._def_path(name), json.dumps(net.to_json(), indent=2).encode())
        emit(self.defs.parent, "network", "create", id=net.id, name=name)
        return net

    def delete(self, name: str) -> None:
        with self.definitions_lock():
            try:
                net_id = self.get(name).id
            except ConfigError:
                return
            self._def_path(name).unlink(missing_ok=True)
        emit(self.defs.parent, "network", "remove", id=net_id, name=name)

    # -- runtime files -------------------------------------------------------------

    def run_dir(self, name: str) -> Path:
        check_name(name)
        return self.runtime / name

    def holders_lock(self) -> Any:
        """Held while a holder is started, found, or decides to exit."""
        self.runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        return flock(self.runtime / ".lock")

    def state(self, name: str) -> dict[str, Any]:
        """The runtime state the holder wrote: ``{}`` when the network is not in use."""
        try:
            data: dict[str, Any] = json.loads((self.run_dir(name) / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if holder_alive(data) else {}

    def write_state(self, name: str, data: Mapping[str, Any]) -> None:
        """Only the holder writes (one writer, atomic renames); readers need no lock."""
        path = self.run_dir(name) / "state.json"
        atomic_write(path, json.dumps(data, indent=2).encode(), 0o600)

    def clear_runtime(self, name: str) -> None:
        """Remove the network's runtime files (the holder, on its way out)."""
        run = self.run_dir(name)
        for entry in ("state.json", "ctl.sock", "slirp4netns.sock", "holder.log"):
            (run / entry).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run.rmdir()

    def live_holders(self) -> list[dict[str, Any]]:
        """The holder records of every network in use."""
        if not self.runtime.is_dir():
            return []
        out = []
        for entry in sorted(self.runtime.iterdir()):
            if entry.is_dir():
                holder = self.state(entry.name).get("holder")
                if holder:
                    out.append(holder)
        return out


def holder_alive(state: Mapping[str, Any]) -> bool:
    holder = state.get("holder") or {}
    pid = holder.get("inner")
    return isinstance(pid, int) and process_start_time(pid) == holder.get("inner_start")
