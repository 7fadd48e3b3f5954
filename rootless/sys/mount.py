"""mount(2), umount2(2), pivot_root(2) and mount flag helpers."""

from __future__ import annotations

import os

from rootless.sys._libc import call, syscall

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# statvfs f_flag bits that the kernel locks on mounts inherited from a more
# privileged mount namespace; a remount must repeat them or it fails with EPERM.
_LOCKED_STATVFS_FLAGS = (
    (os.ST_RDONLY, MS_RDONLY),
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    call(
        "mount",
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
        path=target,
    )


def umount2(target: str, flags: int = 0) -> None:
    call("umount2", target.encode(), flags, path=target)


def pivot_root(new_root: str, put_old: str) -> None:
    syscall(
        _SYS_PIVOT_ROOT[os.uname().machine],
        new_root.encode(),
        put_old.encode(),
        name="pivot_root",
        path=new_root,
    )


def current_mount_flags(path: str) -> int:
    """The MS_* flags a bind remount of ``path`` must keep."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED_STATVFS_FLAGS if f_flag & st)


def bind_remount(path: str, extra: int) -> None:
    """Remount the bind mount at ``path`` adding ``extra`` flags, keeping locked ones."""
    flags = MS_BIND | MS_REMOUNT | current_mount_flags(path) | extra
    mount("", path, None, flags, None)
