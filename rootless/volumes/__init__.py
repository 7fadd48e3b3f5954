"""Volumes and mounts of containers: -v, --mount, --tmpfs, named and anonymous volumes.

``container_mounts`` turns a container's flags (and its image's VOLUMEs) into OCI
mounts, creating the volumes they name and filling new ones from the image.
``volume_users``, ``remove_volumes``, ``prune_volumes`` and
``remove_anonymous_volumes`` serve ``volume rm|prune`` and ``rm -v``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rootless._paths import StoragePaths
from rootless._record import Record
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.runtime.spec import Mount
    from rootless.volumes.copyup import CopyJob
    from rootless.volumes.parse import MountSpec
    from rootless.volumes.store import Volume, VolumeStore

# The run path imports this package: what it needs beyond parsing is imported late.


class MountRequest(Record):
    """The mount flags of ``run``/``create`` as given."""

    volumes: tuple[str, ...] = ()  # -v
    mounts: tuple[str, ...] = ()  # --mount
    tmpfs: tuple[str, ...] = ()  # --tmpfs


def volume_store(paths: StoragePaths) -> VolumeStore:
    from rootless.volumes.store import VolumeStore

    return VolumeStore(paths.data / "volumes")


def container_mounts(
    request: MountRequest,
    *,
    cid: str,
    paths: StoragePaths,
    image_volumes: Sequence[str] = (),
    image_layers: Sequence[Path] = (),
) -> tuple[Mount, ...]:
    """The spec mounts for a new container (creating volumes it needs).

    Named volumes are created on first use; anonymous ones (``-v /path`` and the
    image's VOLUMEs) are labelled with ``cid`` for ``rm -v``. A new volume gets the
    image's content at its path (from ``image_layers``, base first) unless the
    mount says ``nocopy``. Host paths of bind mounts must exist (as Podman).
    """
    from rootless.volumes.parse import plan_mounts, to_runtime_mount

    specs = plan_mounts(
        request.volumes,
        request.mounts,
        request.tmpfs,
        image_volumes=image_volumes,
        cwd=os.getcwd(),
    )
    for s in specs:
        if s.kind == "bind" and s.source is not None and not os.path.exists(s.source):
            raise ConfigError(
                f"cannot bind mount {s.source} on {s.target}: no such file or directory",
                hint="create the host path first, or use a named volume (-v NAME:PATH)",
            )
    if not any(s.kind == "volume" for s in specs):
        return tuple(to_runtime_mount(s) for s in specs)
    store = volume_store(paths)
    with store.locked():
        created: list[str] = []
        try:
            return _volume_mounts(store, specs, cid, image_layers, created)
        except BaseException:
            anonymous = [n for n in created if (v := store.find(n)) and v.anonymous]
            store.remove(anonymous)
            raise


def _volume_mounts(
    store: VolumeStore,
    specs: Sequence[MountSpec],
    cid: str,
    image_layers: Sequence[Path],
    created: list[str],
) -> tuple[Mount, ...]:
    from rootless.volumes.copyup import CopyJob
    from rootless.volumes.parse import to_runtime_mount
    from rootless.volumes.store import ANONYMOUS_LABEL, CONTAINER_LABEL

    mounts = []
    copies: list[tuple[Volume, CopyJob]] = []
    for s in specs:
        if s.kind != "volume":
            mounts.append(to_runtime_mount(s))
            continue
        if s.source is None:
            vol = store.create(labels={ANONYMOUS_LABEL: "true", CONTAINER_LABEL: cid})
            created.append(vol.name)
        else:
            vol = store.find(s.source) or store.create(s.source)
        if s.copy and vol.needs_copy and image_layers:
            copies.append((vol, CopyJob(s.target, vol.mountpoint)))
        mounts.append(to_runtime_mount(s, str(vol.mountpoint)))
    if copies:
        _copy_up_in_userns(store, image_layers, [job for _, job in copies])
        for vol, _ in copies:
            store.save(vol._replace(needs_copy=False))
    return tuple(mounts)


def _copy_up_in_userns(store: VolumeStore, layers: Sequence[Path], jobs: list[CopyJob]) -> None:
    import shutil
    import tempfile

    from rootless.runtime.userns import run_in_userns
    from rootless.volumes.copyup import copy_up

    scratch = Path(tempfile.mkdtemp(prefix=".copyup-", dir=store.root))
    try:

        def job() -> int:
            copy_up(layers, jobs, scratch)
            return 0

        code = run_in_userns(job)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if code != 0:
        raise ConfigError("cannot copy the image's content into a new volume (the error is above)")


def create_volume(
    paths: StoragePaths,
    name: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    ignore_existing: bool = False,
) -> Volume:
    """``volume create``: a new, empty volume; ``--opt o=uid=N,gid=N`` sets its owner."""
    from rootless.volumes.store import parse_options

    uid, gid = parse_options(options or {})
    store = volume_store(paths)
    with store.locked():
        vol = store.create(name, labels=labels, options=options, exist_ok=ignore_existing)
        if (uid is not None or gid is not None) and not ignore_existing:
            _chown_in_userns(store, vol, uid, gid)
    return vol


def _chown_in_userns(store: VolumeStore, vol: Volume, uid: int | None, gid: int | None) -> None:
    from rootless.runtime.userns import run_in_userns

    def job() -> int:
        os.chown(vol.mountpoint, -1 if uid is None else uid, -1 if gid is None else gid)
        return 0

    if run_in_userns(job) != 0:
        store.remove([vol.name])
        raise ConfigError(
            f"cannot give volume {vol.name} the owner {uid}:{gid}",
            hint="IDs above your subordinate range are not mapped",
        )


def volume_users(paths: StoragePaths) -> dict[str, list[str]]:
    """Volume name -> names of the containers whose config mounts it."""
    from rootless.engine.containers import containers_store
    from rootless.runtime import spec as specmod

    root = volume_store(paths).root
    users: dict[str, list[str]] = {}
    containers = containers_store(paths)
    try:
        records = containers.list()
        for record in records:
            try:
                spec = specmod.load(containers.container_dir(record.id) / "config.json")
            except ConfigError:
                continue  # being created or removed right now
            for m in spec.mounts:
                src = Path(m.source)
                if m.type == "bind" and src.name == "_data" and src.parent.parent == root:
                    users.setdefault(src.parent.name, []).append(record.name)
    finally:
        containers.close()  # no SQLite connection may cross the fork of a removal
    return users


def remove_volumes(
    paths: StoragePaths,
    names: Sequence[str],
    *,
    force: bool = False,
    remove_container: Callable[[str], object] | None = None,
) -> list[str]:
    """``volume rm``: remove volumes no container uses; with ``force``, first remove the
    containers that use them (through ``remove_container``, as Podman does)."""
    from rootless.volumes.store import VolumeInUse

    store = volume_store(paths)
    vols = [store.get(n) for n in names]
    if force and remove_container is not None:
        users = volume_users(paths)
        for ctr in dict.fromkeys(c for v in vols for c in users.get(v.name, ())):
            remove_container(ctr)
    with store.locked():
        users = volume_users(paths)
        for v in vols:
            if users.get(v.name):
                raise VolumeInUse(
                    f"volume {v.name} is being used by the following container(s): "
                    + ", ".join(users[v.name]),
                    hint="remove the container(s) first, or use volume rm -f to remove them too",
                )
        store.remove([v.name for v in vols if store.find(v.name) is not None])
    return [v.name for v in vols]


def prune_volumes(paths: StoragePaths) -> list[str]:
    """``volume prune``: remove every volume no container uses; their names."""
    store = volume_store(paths)
    with store.locked():
        users = volume_users(paths)
        doomed = [v.name for v in store.list() if v.name not in users]
        store.remove(doomed)
    return doomed


def remove_anonymous_volumes(cid: str, paths: StoragePaths) -> list[str]:
    """``rm -v``: remove the anonymous volumes made for container ``cid``; their names."""
    from rootless.volumes.store import CONTAINER_LABEL

    store = volume_store(paths)
    with store.locked():
        doomed = [
            v.name for v in store.list() if v.anonymous and v.labels.get(CONTAINER_LABEL) == cid
        ]
        store.remove(doomed)
    return doomed
