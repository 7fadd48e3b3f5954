"""Resolve a container path inside a rootfs on the host, never escaping the rootfs.

Symlinks are followed as the container would see them: absolute targets and ``..``
are clamped at the rootfs, so a hostile image cannot point a mount target outside.
"""

from __future__ import annotations

import os
import posixpath

from rootless.errors import ConfigError

_MAX_LINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """The host path for container path ``path``; missing tail components are kept as is."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            # Not a symlink, or does not exist yet: keep the name.
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise ConfigError(f"too many levels of symbolic links resolving {path} in the rootfs")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return os.path.join(root, *resolved)


def container_path(root: str, host_path: str) -> str:
    """The inverse of resolve_in_root for display: ``/`` + the part below ``root``."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else posixpath.join("/", rel)
