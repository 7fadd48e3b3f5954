"""Loading libc once and checking return values."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from rootless.errors import SyscallError


@functools.cache
def libc() -> ctypes.CDLL:
    # glibc's soname; ctypes.util.find_library would spawn ldconfig on every start.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # another libc (musl): ask the loader's cache
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


def check(result: int, call: str, path: str | None = None, hint: str | None = None) -> int:
    """Raise SyscallError when a libc call returned -1."""
    if result == -1:
        raise SyscallError(call, ctypes.get_errno(), path=path, hint=hint)
    return result


def call(name: str, *args: Any, path: str | None = None, hint: str | None = None) -> int:
    """Call libc function ``name`` and raise SyscallError on -1."""
    fn = getattr(libc(), name)
    return check(int(fn(*args)), name, path=path, hint=hint)


def syscall(nr: int, *args: Any, name: str, path: str | None = None) -> int:
    """Raw syscall(2) for calls glibc does not wrap (pivot_root, seccomp, ...)."""
    return check(int(libc().syscall(nr, *args)), name, path=path)
