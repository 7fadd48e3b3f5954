"""no_new_privs and loading a seccomp BPF filter into the calling process.

The program comes from ``rootless.runtime.seccomp`` (an array of 8-byte
``struct sock_filter``). Filters are inherited over fork and execve and cannot be
removed, so this is the last step before the container's execve.
"""

from __future__ import annotations

import ctypes
import errno
import os

from rootless.errors import SyscallError
from rootless.sys._libc import call, syscall

PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1

FILTER_FLAG_TSYNC = 1
FILTER_FLAG_LOG = 2
FILTER_FLAG_SPEC_ALLOW = 4

BPF_MAXINSNS = 4096

# seccomp(2) has no glibc wrapper in Debian 12's glibc.
_SECCOMP_NR = {"x86_64": 317, "aarch64": 277}


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _ulong(value: int) -> ctypes.c_ulong:
    # Variadic prctl/syscall read whole registers: pass longs, not C ints.
    return ctypes.c_ulong(value)


def set_no_new_privs() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS, 1): execve can no longer grant privileges."""
    call("prctl", ctypes.c_int(PR_SET_NO_NEW_PRIVS), *map(_ulong, (1, 0, 0, 0)))


def load_filter(program: bytes, *, flags: int = 0) -> None:
    """Install ``program`` as a seccomp filter on the calling thread (and its children).

    Uses seccomp(SECCOMP_SET_MODE_FILTER, flags, prog); on a kernel without that
    call (ENOSYS) and with no flags, prctl(PR_SET_SECCOMP) does the same.
    """
    count, rest = divmod(len(program), 8)
    if rest or not 0 < count <= BPF_MAXINSNS:
        raise SyscallError(
            "seccomp",
            errno.EINVAL,
            hint=f"the filter is {len(program)} bytes; it must be 1 to {BPF_MAXINSNS} "
            "8-byte instructions",
        )
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(count, ctypes.addressof(buf))
    nr = _SECCOMP_NR.get(os.uname().machine)
    try:
        if nr is None:
            raise SyscallError("seccomp", errno.ENOSYS)
        syscall(
            nr,
            _ulong(SECCOMP_SET_MODE_FILTER),
            _ulong(flags),
            ctypes.byref(prog),
            name="seccomp",
        )
    except SyscallError as e:
        if e.errno != errno.ENOSYS or flags:
            raise _explain(e) from None
        try:
            call(
                "prctl",
                ctypes.c_int(PR_SET_SECCOMP),
                _ulong(SECCOMP_MODE_FILTER),
                ctypes.byref(prog),
                _ulong(0),
                _ulong(0),
            )
        except SyscallError as e2:
            raise _explain(e2) from None


def _explain(e: SyscallError) -> SyscallError:
    hints = {
        errno.EACCES: "set no_new_privs first (set_no_new_privs) or hold CAP_SYS_ADMIN",
        errno.EINVAL: "the kernel rejected the BPF program or the flags; "
        "rebuild it with rootless.runtime.seccomp",
        errno.EFAULT: "the BPF program is not readable",
    }
    return SyscallError(e.call, e.errno, hint=hints.get(e.errno, e.hint))
