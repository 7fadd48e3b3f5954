"""The syscall seam: the only package that calls libc through ctypes.

Everything here is a thin, typed wrapper that raises :class:`SyscallError` naming
the call, the path and the errno. Policy lives in ``rootless.runtime``.
"""
