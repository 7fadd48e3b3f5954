"""Mount planning (pure): default container mounts and OCI mount options -> mount(2) args."""

from __future__ import annotations

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.spec import Mount
from rootless.sys import mount as m

_FLAG_OPTIONS = {
    "ro": (m.MS_RDONLY, True),
    "rw": (m.MS_RDONLY, False),
    "nosuid": (m.MS_NOSUID, True),
    "suid": (m.MS_NOSUID, False),
    "nodev": (m.MS_NODEV, True),
    "dev": (m.MS_NODEV, False),
    "noexec": (m.MS_NOEXEC, True),
    "exec": (m.MS_NOEXEC, False),
    "noatime": (m.MS_NOATIME, True),
    "nodiratime": (m.MS_NODIRATIME, True),
    "relatime": (m.MS_RELATIME, True),
    "strictatime": (m.MS_STRICTATIME, True),
}
_PROPAGATION = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
}
# Accepted for compatibility; SELinux relabeling and idmapped binds do not apply here.
_IGNORED = {"z", "Z", "shared", "rshared", "U", "copy", "nocopy", "defaults"}

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
    ("/proc/kcore", "/dev/core"),
)


class MountCall(Record):
    """One mount(2) (and, for read-only binds, the remount that must follow it)."""

    source: str
    fstype: str | None
    flags: int
    data: str | None
    bind: bool
    # Bind mounts ignore most flags on the first call: they need a second, remount call.
    remount_flags: int
    propagation: int


def plan_mount(mnt: Mount) -> MountCall:
    flags = 0
    propagation = 0
    data: list[str] = []
    bind = mnt.type == "bind"
    recursive = False
    for opt in mnt.options:
        if opt in _FLAG_OPTIONS:
            bit, on = _FLAG_OPTIONS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in ("bind", "rbind"):
            bind = True
            recursive = recursive or opt == "rbind"
        elif opt in _PROPAGATION:
            propagation = _PROPAGATION[opt]
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    if bind:
        if data:
            raise ConfigError(
                f"unsupported option {','.join(data)!r} for bind mount on {mnt.destination}",
                hint="bind mounts take ro, rw, nosuid, nodev, noexec, z, Z, rbind",
            )
        first = m.MS_BIND | (m.MS_REC if recursive else 0)
        return MountCall(mnt.source, None, first, None, True, flags, propagation)
    return MountCall(
        mnt.source or mnt.type, mnt.type, flags, ",".join(data) or None, False, 0, propagation
    )


def default_mounts(*, own_network: bool, shm_size: int | None = None) -> tuple[Mount, ...]:
    """The mounts every container gets (as in the OCI default config); ``shm_size``:
    the bytes of /dev/shm (default 64 MiB).

    sysfs can only be mounted by the owner of the network namespace; with the host's
    network the host's /sys is bound read-only instead.
    """
    shm = f"size={shm_size}" if shm_size else "size=65536k"
    sys_mount = (
        Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro"))
        if own_network
        else Mount("/sys", "bind", "/sys", ("rbind", "nosuid", "noexec", "nodev", "ro"))
    )
    return (
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
        ),
        Mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            ("nosuid", "noexec", "nodev", "mode=1777", shm),
        ),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        sys_mount,
    )


def parse_volume(text: str) -> Mount:
    """``-v HOSTDIR:CTRDIR[:OPTIONS]`` for host paths (named volumes come with the store)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f'invalid volume "{text}"', hint="use -v HOSTDIR:CTRDIR[:ro|rw|z|Z]")
    host, ctr = parts[0], parts[1]
    if not host.startswith("/"):
        raise ConfigError(
            f'invalid volume "{text}": host path "{host}" is not absolute',
            hint="named volumes are not supported yet; give an absolute host directory",
        )
    if not ctr.startswith("/"):
        raise ConfigError(f'invalid volume "{text}": container path "{ctr}" is not absolute')
    opts = [o for o in parts[2].split(",") if o] if len(parts) == 3 else []
    for o in opts:
        if o not in ("ro", "rw", "z", "Z", "nosuid", "nodev", "noexec", "rbind", "bind"):
            raise ConfigError(
                f'invalid volume "{text}": unknown option "{o}"',
                hint="options are ro, rw, z, Z, nosuid, nodev, noexec",
            )
    return Mount(ctr, "bind", host, ("rbind", *opts))
