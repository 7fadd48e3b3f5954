"""The supported subset of the OCI runtime-spec config (config.json) as attrs data.

Reading and writing keep OCI's JSON names, so a bundle written here can be read by
runc/crun and vice versa for the fields both understand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rootless._atomic import atomic_write
from rootless._empty import EMPTY_MAP
from rootless._record import Record
from rootless.errors import ConfigError

OCI_VERSION = "1.1.0"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

NAMESPACES = ("pid", "network", "ipc", "uts", "mount", "user", "cgroup")


class User(Record):
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None


class Rlimit(Record):
    type: str  # "RLIMIT_NOFILE"
    soft: int
    hard: int


class Capabilities(Record):
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


class Process(Record):
    args: tuple[str, ...]
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    cwd: str = "/"
    user: User = User()
    terminal: bool = False
    capabilities: Capabilities = Capabilities()
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = True


class Mount(Record):
    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()


class Root(Record):
    path: str
    readonly: bool = False
    # overlayfs mount options ("lowerdir=...,upperdir=...,workdir=...,userxattr") when the
    # root must be mounted inside the container's user namespace first (an extension:
    # written to config.json as the annotation OVERLAY_ANNOTATION).
    overlay: str | None = None


OVERLAY_ANNOTATION = "io.rootless.rootfs.overlay"
# "default": the shipped seccomp profile applies (written instead of the profile itself).
SECCOMP_ANNOTATION = "io.rootless.seccomp"
# "USER[:GROUP]" to resolve inside the container against its /etc/passwd and /etc/group.
USER_ANNOTATION = "io.rootless.user"


class IDMapping(Record):
    container_id: int
    host_id: int
    size: int


class Namespace(Record):
    type: str
    path: str | None = None


DEFAULT_NAMESPACES = tuple(Namespace(kind) for kind in NAMESPACES)


class Linux(Record):
    namespaces: tuple[Namespace, ...] = DEFAULT_NAMESPACES
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    masked_paths: tuple[str, ...] = MASKED_PATHS
    readonly_paths: tuple[str, ...] = READONLY_PATHS
    # None: unconfined; "default": the shipped profile; a mapping: an OCI seccomp object.
    seccomp: str | Mapping[str, Any] | None = "default"

    def has_namespace(self, kind: str) -> bool:
        return any(ns.type == kind and ns.path is None for ns in self.namespaces)


class Spec(Record):
    process: Process
    root: Root
    hostname: str | None = None
    mounts: tuple[Mount, ...] = ()
    linux: Linux = Linux()
    annotations: Mapping[str, str] = EMPTY_MAP


def join_namespaces(spec: Spec, paths: Mapping[str, str | None]) -> Spec:
    """``spec`` with the namespaces of ``paths`` joined (a path) or dropped (None)."""
    kept = [n for n in spec.linux.namespaces if n.type not in paths]
    kept += [Namespace(kind, path) for kind, path in paths.items() if path is not None]
    return spec._replace(linux=spec.linux._replace(namespaces=tuple(kept)))


# --- JSON -------------------------------------------------------------------------------


def _idmaps(items: tuple[IDMapping, ...]) -> list[dict[str, int]]:
    return [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size} for m in items]


def to_dict(spec: Spec, *, expand_default_seccomp: bool = True) -> dict[str, Any]:
    p = spec.process
    user: dict[str, Any] = {"uid": p.user.uid, "gid": p.user.gid}
    if p.user.additional_gids:
        user["additionalGids"] = list(p.user.additional_gids)
    if p.user.umask is not None:
        user["umask"] = p.user.umask
    process: dict[str, Any] = {
        "terminal": p.terminal,
        "user": user,
        "args": list(p.args),
        "env": list(p.env),
        "cwd": p.cwd,
        "capabilities": {k: list(v) for k, v in p.capabilities._asdict().items()},
        "rlimits": [{"type": r.type, "soft": r.soft, "hard": r.hard} for r in p.rlimits],
        "noNewPrivileges": p.no_new_privileges,
    }
    linux: dict[str, Any] = {
        "namespaces": [
            {"type": ns.type, **({"path": ns.path} if ns.path else {})}
            for ns in spec.linux.namespaces
        ],
        "uidMappings": _idmaps(spec.linux.uid_mappings),
        "gidMappings": _idmaps(spec.linux.gid_mappings),
        "maskedPaths": list(spec.linux.masked_paths),
        "readonlyPaths": list(spec.linux.readonly_paths),
    }
    seccomp = spec.linux.seccomp
    if seccomp == "default" and not expand_default_seccomp:
        # rootless's own containers: name the shipped profile instead of copying ~60 KB
        # of JSON into every container's config.json (it costs start time).
        annotations_extra = {SECCOMP_ANNOTATION: "default"}
        seccomp = None
    else:
        annotations_extra = {}
        if seccomp == "default":
            from rootless.runtime.seccomp import default_profile

            seccomp = default_profile()
    if seccomp is not None:
        linux["seccomp"] = dict(seccomp)  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": spec.root.path, "readonly": spec.root.readonly},
        "mounts": [
            {
                "destination": m.destination,
                "type": m.type,
                "source": m.source,
                "options": list(m.options),
            }
            for m in spec.mounts
        ],
        "linux": linux,
    }
    if spec.hostname is not None:
        out["hostname"] = spec.hostname
    annotations = {**spec.annotations, **annotations_extra}
    if spec.root.overlay:
        annotations[OVERLAY_ANNOTATION] = spec.root.overlay
    if annotations:
        out["annotations"] = annotations
    return out


def from_dict(data: Mapping[str, Any], *, source: str = "config.json") -> Spec:
    try:
        p = data["process"]
        u = p.get("user", {})
        caps = p.get("capabilities", {})
        linux = data.get("linux", {})
        process = Process(
            args=tuple(p["args"]),
            env=tuple(p.get("env", ())),
            cwd=p.get("cwd", "/"),
            user=User(
                uid=int(u.get("uid", 0)),
                gid=int(u.get("gid", 0)),
                additional_gids=tuple(int(g) for g in u.get("additionalGids", ())),
                umask=u.get("umask"),
            ),
            terminal=bool(p.get("terminal", False)),
            capabilities=Capabilities(**{k: tuple(caps.get(k, ())) for k in Capabilities._fields}),
            rlimits=tuple(
                Rlimit(r["type"], int(r["soft"]), int(r["hard"])) for r in p.get("rlimits", ())
            ),
            no_new_privileges=bool(p.get("noNewPrivileges", False)),
        )
        return Spec(
            process=process,
            root=Root(
                data["root"]["path"],
                bool(data["root"].get("readonly", False)),
                data.get("annotations", {}).get(OVERLAY_ANNOTATION),
            ),
            hostname=data.get("hostname"),
            mounts=tuple(
                Mount(
                    m["destination"],
                    m.get("type", "bind"),
                    m.get("source", ""),
                    tuple(m.get("options", ())),
                )
                for m in data.get("mounts", ())
            ),
            linux=Linux(
                namespaces=tuple(
                    Namespace(ns["type"], ns.get("path")) for ns in linux.get("namespaces", ())
                ),
                uid_mappings=tuple(
                    IDMapping(m["containerID"], m["hostID"], m["size"])
                    for m in linux.get("uidMappings", ())
                ),
                gid_mappings=tuple(
                    IDMapping(m["containerID"], m["hostID"], m["size"])
                    for m in linux.get("gidMappings", ())
                ),
                masked_paths=tuple(linux.get("maskedPaths", ())),
                readonly_paths=tuple(linux.get("readonlyPaths", ())),
                seccomp=(
                    "default"
                    if data.get("annotations", {}).get(SECCOMP_ANNOTATION) == "default"
                    else linux.get("seccomp")
                ),
            ),
            annotations={
                k: v
                for k, v in data.get("annotations", {}).items()
                if k not in (OVERLAY_ANNOTATION, SECCOMP_ANNOTATION)
            },
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(
            f"invalid OCI runtime config {source}: {type(e).__name__}: {e}",
            hint="see the OCI runtime-spec config.md for the expected shape",
        ) from None


def load(path: str | Path) -> Spec:
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    return from_dict(data, source=str(path))


def save(
    spec: Spec, path: str | Path, *, expand_default_seccomp: bool = True, durable: bool = True
) -> None:
    data = to_dict(spec, expand_default_seccomp=expand_default_seccomp)
    atomic_write(Path(path), json.dumps(data, indent=2).encode(), durable=durable)
