"""Where rootless keeps its files: the XDG roots, each overridable.

Resolution order for every root: an explicit argument, then a ``ROOTLESS_*_DIR``
environment variable, then the XDG variable, then the XDG default under ``$HOME``.
Nothing here touches the disk, so tests build paths from a plain dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rootless._record import Record
from rootless.errors import ConfigError


class StoragePaths(Record):
    """The roots of one user's rootless state."""

    data: Path  # blobs, layers, the image database, volumes
    runtime: Path  # pids, sockets, per-boot state
    config: Path  # user configuration
    cache: Path  # re-creatable downloads (test images, build cache)

    @property
    def images(self) -> Path:
        """Root of the image store (see docs/storage.md)."""
        return self.data / "storage"

    def as_env(self) -> dict[str, str]:
        """The variables that give a child process these roots (see :meth:`from_env`)."""
        return {
            "ROOTLESS_DATA_DIR": str(self.data),
            "ROOTLESS_RUNTIME_DIR": str(self.runtime),
            "ROOTLESS_CONFIG_DIR": str(self.config),
            "ROOTLESS_CACHE_DIR": str(self.cache),
        }

    def child_env(self) -> dict[str, str]:
        """This process's environment with these roots: for a rootless child process."""
        return {**os.environ, **self.as_env()}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoragePaths:
        """Build the roots from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        return cls(
            data=_root(env, "ROOTLESS_DATA_DIR", "XDG_DATA_HOME", ".local/share"),
            runtime=_runtime_root(env),
            config=_root(env, "ROOTLESS_CONFIG_DIR", "XDG_CONFIG_HOME", ".config"),
            cache=_root(env, "ROOTLESS_CACHE_DIR", "XDG_CACHE_HOME", ".cache"),
        )


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    if not home:
        raise ConfigError(
            "cannot find the storage directories: HOME is not set",
            hint="set HOME or ROOTLESS_DATA_DIR, ROOTLESS_CONFIG_DIR and ROOTLESS_RUNTIME_DIR",
        )
    return Path(home)


def _absolute(value: str, var: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"cannot use {var}={value!r}: the path must be absolute")
    return path


def _root(env: Mapping[str, str], override: str, xdg: str, default: str) -> Path:
    if env.get(override):
        return _absolute(env[override], override)
    if env.get(xdg):
        return _absolute(env[xdg], xdg) / "rootless"
    return _home(env) / default / "rootless"


def _runtime_root(env: Mapping[str, str]) -> Path:
    if env.get("ROOTLESS_RUNTIME_DIR"):
        return _absolute(env["ROOTLESS_RUNTIME_DIR"], "ROOTLESS_RUNTIME_DIR")
    if env.get("XDG_RUNTIME_DIR"):
        return _absolute(env["XDG_RUNTIME_DIR"], "XDG_RUNTIME_DIR") / "rootless"
    # Without a login session (su, cron) there is no XDG_RUNTIME_DIR; Podman uses
    # /tmp/podman-run-UID in that case, and so do we with our own name.
    return Path(f"/tmp/rootless-run-{os.getuid()}")
