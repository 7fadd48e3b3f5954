"""Volumes and mounts of containers: -v, --mount, --tmpfs, named and anonymous volumes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from rootless._paths import StoragePaths
from rootless.runtime.mounts import parse_volume
from rootless.runtime.spec import Mount


class MountRequest(NamedTuple):
    """The mount flags of ``run``/``create`` as given."""

    volumes: tuple[str, ...] = ()  # -v
    mounts: tuple[str, ...] = ()  # --mount
    tmpfs: tuple[str, ...] = ()  # --tmpfs


def container_mounts(
    request: MountRequest,
    *,
    cid: str,
    paths: StoragePaths,
    image_volumes: Sequence[str] = (),
    image_layers: Sequence[Path] = (),
) -> tuple[Mount, ...]:
    """The spec mounts for a new container (creating volumes it needs)."""
    return tuple(parse_volume(v) for v in request.volumes)
