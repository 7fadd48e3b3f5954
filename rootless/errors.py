"""The one error tree of rootless.

Every failure the engine reports is a :class:`RootlessError`; the CLI turns it into
exit code 125 (or the ``exit_code`` the error carries) and prints its message.
Messages are lower-case, say what failed, on what, why, and how to fix it::

    RootlessError
    ├── ConfigError          bad user input or configuration (flags, config.json, files)
    ├── IDMapError           subordinate ID ranges, newuidmap/newgidmap
    ├── SyscallError         a libc call failed (names the call, the path and errno)
    ├── ContainerStartError  the container process could not be set up
    │   ├── CommandNotFound      exit code 127
    │   └── CommandNotExecutable exit code 126
    └── ImageError           image references, store, layers, registries
"""

from __future__ import annotations

import errno as _errno
import os


class RootlessError(Exception):
    """Root of every error rootless reports."""

    exit_code = 125

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}; {hint}")


class ConfigError(RootlessError):
    """Bad user input: a flag, a config file, a path."""


class IDMapError(RootlessError):
    """Subordinate ID ranges or the newuidmap/newgidmap helpers."""


class SyscallError(RootlessError):
    """A call into the kernel failed."""

    def __init__(self, call: str, err: int, *, path: str | None = None, hint: str | None = None):
        self.call = call
        self.errno = err
        self.path = path
        where = f" on {path}" if path else ""
        name = _errno.errorcode.get(err, str(err))
        super().__init__(f"{call}{where} failed: {os.strerror(err)} ({name})", hint=hint)


class ContainerStartError(RootlessError):
    """The container's process could not be set up or started."""


class CommandNotFound(ContainerStartError):
    exit_code = 127


class CommandNotExecutable(ContainerStartError):
    exit_code = 126


class ImageError(RootlessError):
    """Image references, the image store, layers and registries."""


class BuildError(RootlessError):
    """A Containerfile could not be parsed or built; parse errors start with ``file:line:``."""
