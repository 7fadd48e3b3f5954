"""openat2(2): open a path resolved as if a directory were the root.

``RESOLVE_IN_ROOT`` makes the kernel treat ``dirfd`` as ``/`` for the whole
lookup: absolute symlinks and ``..`` cannot leave it, which is what copying in
and out of a container that may plant hostile symlinks needs.
"""

from __future__ import annotations

import ctypes
import errno
import platform

from rootless.errors import SyscallError
from rootless.sys._libc import libc

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}
_RETRIES = 32  # the kernel answers EAGAIN when a rename races a ".." lookup


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """An fd for ``path`` looked up from ``dirfd`` under the ``RESOLVE_*`` rules."""
    how = _OpenHow(flags, mode, resolve)
    encoded = path.encode()
    for _ in range(_RETRIES):
        fd = int(
            libc().syscall(
                _SYS_OPENAT2[platform.machine()],
                dirfd,
                encoded,
                ctypes.byref(how),
                ctypes.c_size_t(ctypes.sizeof(how)),
            )
        )
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise SyscallError("openat2", err, path=path)
    raise SyscallError("openat2", errno.EAGAIN, path=path)


def open_in_root(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """``path`` inside the tree of ``rootfd``, never outside it, magic links refused."""
    return openat2(rootfd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
