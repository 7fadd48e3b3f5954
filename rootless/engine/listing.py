"""What `ps` and `inspect` show of containers (pure: records in, dicts out)."""

from __future__ import annotations

import datetime
import time
from typing import Any

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


def inspect(r: ContainerRecord, config: dict[str, Any] | None) -> dict[str, Any]:
    """The container as ``inspect`` shows it: Podman's shape for the common fields."""
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
    }
