"""Plan a container's OCI spec from what the user asked for (pure)."""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.capabilities import plan_capabilities
from rootless.runtime.idmap import IDMapPlan
from rootless.runtime.mounts import default_mounts
from rootless.runtime.spec import (
    DEFAULT_PATH,
    MASKED_PATHS,
    READONLY_PATHS,
    USER_ANNOTATION,
    Capabilities,
    IDMapping,
    Linux,
    Mount,
    Namespace,
    Process,
    Rlimit,
    Root,
    Spec,
    User,
)

SUPPORTED_NETWORKS = ("none", "host", "private")


class RunRequest(Record):
    rootfs: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    # "USER[:GROUP]" by name or number, resolved by the container's init against the
    # rootfs's /etc/passwd and /etc/group (None: root).
    user: str | None = None
    hostname: str | None = None
    terminal: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str | Mapping[str, object] | None = "default"
    no_new_privileges: bool = True
    read_only: bool = False
    volumes: tuple[Mount, ...] = ()
    network: str = "private"
    ulimits: tuple[Rlimit, ...] = ()
    shm_size: int | None = None  # bytes of /dev/shm (None: 64 MiB)
    overlay: str | None = None  # overlayfs options when the rootfs is an image's layers
    # --security-opt unmask=: masked or read-only paths to leave as they are
    unmask: tuple[str, ...] = ()


def plan_env(req: RunRequest, hostname: str) -> tuple[str, ...]:
    """Environment with Podman's defaults; user values win."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "container": "rootless"}
    if req.terminal:
        env["TERM"] = "xterm"
    env["HOSTNAME"] = hostname
    env.update(dict(req.env))
    return tuple(f"{k}={v}" for k, v in env.items())


def default_rlimits() -> tuple[Rlimit, ...]:
    # Like Podman: raise the open-files soft limit to the hard limit we have.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (Rlimit("RLIMIT_NOFILE", hard, hard),)


def unmasked(paths: Sequence[str], unmask: Sequence[str]) -> tuple[str, ...]:
    """``paths`` less those ``--security-opt unmask=`` names: ``ALL``, a path, or a glob
    (``/proc/*``), as Podman."""
    from fnmatch import fnmatchcase

    if "ALL" in unmask:
        return ()
    return tuple(p for p in paths if not any(fnmatchcase(p, u) for u in unmask))


def plan_spec(req: RunRequest, idmap: IDMapPlan, *, container_id: str) -> Spec:
    if req.network not in SUPPORTED_NETWORKS:
        raise ConfigError(
            f'network mode "{req.network}" is not supported yet',
            hint="use --network slirp4netns, pasta, none or host",
        )
    if not req.args:
        raise ConfigError("no command given", hint="put the command after the rootfs or image")
    own_network = req.network != "host"
    hostname = req.hostname or (container_id[:12] if own_network else _host_name())
    bounding = plan_capabilities(req.cap_add, req.cap_drop)
    # For a non-root user the exec itself clears these (no ambient capabilities).
    caps = Capabilities(bounding=bounding, effective=bounding, permitted=bounding)
    namespaces = tuple(Namespace(t) for t in ("pid", "ipc", "uts", "mount", "user", "cgroup")) + (
        (Namespace("network"),) if own_network else ()
    )
    limits = {r.type: r for r in default_rlimits()}
    limits.update({r.type: r for r in req.ulimits})
    return Spec(
        process=Process(
            args=req.args,
            env=plan_env(req, hostname),
            cwd=req.workdir,
            user=User(),
            terminal=req.terminal,
            capabilities=caps,
            rlimits=tuple(limits.values()),
            no_new_privileges=req.no_new_privileges,
        ),
        root=Root(req.rootfs, req.read_only, req.overlay),
        hostname=hostname if own_network or req.hostname else None,
        mounts=default_mounts(own_network=own_network, shm_size=req.shm_size) + req.volumes,
        annotations={USER_ANNOTATION: req.user} if req.user else {},
        linux=Linux(
            namespaces=namespaces,
            uid_mappings=tuple(IDMapping(r.container_id, r.host_id, r.size) for r in idmap.uid_map),
            gid_mappings=tuple(IDMapping(r.container_id, r.host_id, r.size) for r in idmap.gid_map),
            masked_paths=unmasked(MASKED_PATHS, req.unmask),
            readonly_paths=unmasked(READONLY_PATHS, req.unmask),
            seccomp=req.seccomp,
        ),
    )


def _host_name() -> str:
    import socket

    return socket.gethostname()


def parse_env_lines(lines: Sequence[str], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``K=V`` as given; a bare ``K`` takes the host's value (skipped when unset), like Docker."""
    out = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key or " " in key:
            raise ConfigError(f'invalid environment variable "{line}"', hint="use KEY=VALUE")
        if sep:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return out


_ULIMIT_NAMES = {
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
    "as": "RLIMIT_AS",
}


def parse_ulimit(text: str) -> Rlimit:
    """``--ulimit nofile=1024[:2048]`` (-1 means unlimited)."""
    name, _, values = text.partition("=")
    if name not in _ULIMIT_NAMES or not values:
        raise ConfigError(
            f'invalid ulimit "{text}"',
            hint=f"use NAME=SOFT[:HARD] with NAME one of {', '.join(sorted(_ULIMIT_NAMES))}",
        )
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise ConfigError(f'invalid ulimit "{text}": limits must be numbers') from None
    inf = resource.RLIM_INFINITY
    soft, hard = (inf if soft < 0 else soft), (inf if hard < 0 else hard)
    if soft > hard:
        raise ConfigError(f'invalid ulimit "{text}": soft limit above hard limit')
    return Rlimit(_ULIMIT_NAMES[name], soft, hard)


def parse_security_opts(opts: Sequence[str]) -> tuple[str | None, bool, tuple[str, ...]]:
    """(seccomp: "default", None for unconfined, or a profile path; no_new_privileges;
    the paths to unmask)."""
    seccomp: str | None = "default"
    nnp = True
    unmask: list[str] = []
    for opt in opts:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp" and sep:
            seccomp = None if value == "unconfined" else value
        elif key == "no-new-privileges":
            nnp = value.lower() not in ("false", "0") if sep else True
        elif key == "unmask" and sep:
            paths = value.split(":")
            if not all(p == "ALL" or p.startswith("/") for p in paths):
                raise ConfigError(
                    f'invalid --security-opt "{opt}"',
                    hint="use unmask=ALL, or absolute paths separated by colons "
                    "(/proc/kcore:/sys/*)",
                )
            unmask += paths
        elif key == "label":
            continue  # SELinux labels do not apply to rootless here
        else:
            raise ConfigError(
                f'unsupported --security-opt "{opt}"',
                hint="use seccomp=unconfined, seccomp=FILE, no-new-privileges[=false], "
                "unmask=ALL|PATHS or label=...",
            )
    return seccomp, nnp, tuple(unmask)
