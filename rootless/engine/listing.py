"""What `ps` and `inspect` show of containers (pure: records in, dicts out)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any

from rootless._empty import EMPTY_MAP
from rootless._units import format_ago, ps_status
from rootless.container.records import ContainerRecord


def iso_time(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def ps_row(
    r: ContainerRecord, *, no_trunc: bool = False, now: float | None = None
) -> dict[str, Any]:
    """One container as Podman's ps fields (for tables, --format and JSON)."""
    now = time.time() if now is None else now
    health = (r.health or {}).get("Status")
    command = " ".join(r.command)
    return {
        "ID": r.id if no_trunc else r.short_id,
        "Image": r.image or "(rootfs)",
        "ImageID": r.image_id,
        "Command": command if no_trunc or len(command) <= 20 else command[:17] + "...",
        "Created": r.created,
        "CreatedAt": iso_time(r.created),
        "CreatedHuman": format_ago(r.created, now),
        "Status": ps_status(
            r.status,
            now=now,
            started=r.started,
            finished=r.finished,
            exit_code=r.exit_code,
            health=health,
        ),
        "State": r.status,
        "ExitCode": r.exit_code if r.exit_code is not None else 0,
        "Names": r.name,
        "Pid": r.pid,
        "Restarts": r.restarts,
        "Labels": dict(r.options.get("labels") or {}),
        "Ports": "",
        "PodName": (r.options.get("pod") or {}).get("name", ""),
    }


def network_settings(
    options: Mapping[str, Any], attached: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``NetworkSettings`` as Podman shows it: published ports, and for each user network
    the container is on (``attached``: name -> its entry in the holder's state, with the
    network's ``gateway`` and ``prefixlen``) its address; the first is also the top-level
    ``IPAddress``. slirp4netns, pasta, host and none show no address, as in Podman."""
    ports: dict[str, list[dict[str, str]]] = {}
    for host_ip, host_port, container_port, protocol in options.get("ports") or ():
        ports.setdefault(f"{container_port}/{protocol}", []).append(
            {"HostIp": host_ip, "HostPort": str(host_port)}
        )
    networks = {
        name: {
            "NetworkID": name,
            "IPAddress": entry.get("ip", ""),
            "IPPrefixLen": entry.get("prefixlen", 0),
            "Gateway": entry.get("gateway", ""),
            "MacAddress": entry.get("mac", ""),
            "Aliases": list(entry.get("aliases") or ()),
        }
        for name, entry in attached.items()
    }
    first = next(iter(networks.values()), {})
    return {
        "Ports": ports,
        "IPAddress": first.get("IPAddress", ""),
        "IPPrefixLen": first.get("IPPrefixLen", 0),
        "Gateway": first.get("Gateway", ""),
        "MacAddress": first.get("MacAddress", ""),
        "Networks": networks,
    }


def inspect(
    r: ContainerRecord,
    config: dict[str, Any] | None,
    attached: Mapping[str, Mapping[str, Any]] = EMPTY_MAP,
) -> dict[str, Any]:
    """The container as ``inspect`` shows it: Podman's shape for the common fields
    (``attached``: see :func:`network_settings`)."""
    process = (config or {}).get("process", {})
    return {
        "Id": r.id,
        "Name": r.name,
        "Created": iso_time(r.created),
        "Path": r.command[0] if r.command else "",
        "Args": list(r.command[1:]),
        "Image": r.image_id,
        "ImageName": r.image,
        "RestartCount": r.restarts,
        "State": {
            "Status": r.status,
            "Running": r.status == "running",
            "Paused": r.status == "paused",
            "Pid": r.pid,
            "ExitCode": r.exit_code if r.exit_code is not None else 0,
            "StartedAt": iso_time(r.started),
            "FinishedAt": iso_time(r.finished),
            "Health": dict(r.health) if r.health else None,
        },
        "Config": {
            "Hostname": (config or {}).get("hostname", ""),
            "Env": process.get("env", []),
            "Cmd": list(r.command),
            "WorkingDir": process.get("cwd", "/"),
            "Tty": process.get("terminal", False),
            "StopSignal": r.options.get("stop_signal") or "SIGTERM",
            "StopTimeout": r.options.get("stop_timeout", 10),
        },
        "HostConfig": {
            "AutoRemove": bool(r.options.get("rm")),
            "RestartPolicy": r.options.get("restart") or "no",
        },
        "Mounts": [
            {
                "Destination": m["destination"],
                "Source": m.get("source", ""),
                "Type": m.get("type", "bind"),
                "Options": m.get("options", []),
            }
            for m in (config or {}).get("mounts", [])
            if m.get("type") == "bind" and m["destination"] != "/sys"
        ],
        "NetworkSettings": network_settings(r.options, attached),
    }
