"""``system df``, ``system prune`` and ``system reset``: the user's whole storage."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from rootless._paths import StoragePaths
from rootless._units import format_size


@attrs.frozen
class DfRow:
    type: str
    total: int
    active: int
    size: int
    reclaimable: int

    def to_json(self) -> dict[str, Any]:
        share = round(100 * self.reclaimable / self.size) if self.size else 0
        return {
            "Type": self.type,
            "Total": self.total,
            "Active": self.active,
            "Size": format_size(self.size),
            "Reclaimable": f"{format_size(self.reclaimable)} ({share}%)",
            "RawSize": self.size,
            "RawReclaimable": self.reclaimable,
        }


def plan_image_usage(
    images: Sequence[tuple[str, Sequence[str]]],
    layer_sizes: dict[str, int],
    used: Iterable[str],
) -> DfRow:
    """Images as (id, layer diff IDs); a shared layer counts once; reclaimable: the
    layers only unused images hold."""
    used_ids = set(used)
    all_layers = {layer for _, layers in images for layer in layers}
    kept = {layer for image_id, layers in images if image_id in used_ids for layer in layers}
    return DfRow(
        "Images",
        len(images),
        sum(1 for image_id, _ in images if image_id in used_ids),
        sum(layer_sizes.get(layer, 0) for layer in all_layers),
        sum(layer_sizes.get(layer, 0) for layer in all_layers - kept),
    )


def du(path: Path) -> int:
    """Bytes of file contents under ``path`` (hard links once), not following links."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if name in dirs else st.st_size
    return total


def df(paths: StoragePaths | None = None) -> list[DfRow]:
    """Podman's ``system df`` rows: images, containers, local volumes."""
    from rootless.engine import image_ops
    from rootless.engine.container_ops import collect_in_userns
    from rootless.engine.containers import containers_store
    from rootless.engine.images import open_store
    from rootless.runtime.idmap import current_user_plan
    from rootless.volumes import volume_store, volume_users

    paths = paths or StoragePaths.from_env()
    store = open_store(paths)
    try:
        records = store.list_images()
        sizes = {
            layer.diff_id: image_ops.layer_size(store, layer) for r in records for layer in r.layers
        }
    finally:
        store.close()
    images = [(r.id, [layer.diff_id for layer in r.layers]) for r in records]
    image_row = plan_image_usage(images, sizes, image_ops.image_users(paths))
    containers = containers_store(paths)
    try:
        ctrs = [containers.refresh(r) for r in containers.list()]
    finally:
        containers.close()
    vstore = volume_store(paths)
    vols = [v.name for v in vstore.list()] if vstore.root.exists() else []
    used_vols = volume_users(paths)
    # Writable layers and volumes hold subordinate-ID files: measure from inside.
    upper = {r.id: str(containers.container_dir(r.id) / "upper") for r in ctrs}
    vol_dirs = {name: str(vstore.root / name) for name in vols}
    measured = collect_in_userns(
        lambda: {
            "containers": {k: du(Path(v)) for k, v in upper.items()},
            "volumes": {k: du(Path(v)) for k, v in vol_dirs.items()},
        },
        current_user_plan(),
    )
    csize, vsize = measured["containers"], measured["volumes"]
    running = {r.id for r in ctrs if r.status == "running"}
    return [
        image_row,
        DfRow(
            "Containers",
            len(ctrs),
            len(running),
            sum(csize.values()),
            sum(s for cid, s in csize.items() if cid not in running),
        ),
        DfRow(
            "Local Volumes",
            len(vols),
            sum(1 for v in vols if v in used_vols),
            sum(vsize.values()),
            sum(s for v, s in vsize.items() if v not in used_vols),
        ),
    ]


@attrs.frozen
class PruneReport:
    containers: list[str]
    images: list[str]
    volumes: list[str]
    reclaimed: int


def prune(
    *, all_images: bool = False, volumes: bool = False, paths: StoragePaths | None = None
) -> PruneReport:
    """Exited containers, then dangling (``all_images``: unused) images, then with
    ``volumes`` the volumes no container uses."""
    from rootless.engine import container_ops, image_ops
    from rootless.engine.ctrfs import ChildFailed
    from rootless.engine.images import open_store
    from rootless.runtime.userns import run_in_userns
    from rootless.volumes import prune_volumes

    paths = paths or StoragePaths.from_env()
    before = sum(r.size for r in df(paths))
    removed_containers = container_ops.prune(paths)
    store = open_store(paths)
    try:
        doomed = image_ops.plan_prune(
            store.list_images(), image_ops.image_users(paths), all_images=all_images
        )
    finally:
        store.close()
    removed_images = [r.id.partition(":")[2] for r in doomed]
    if doomed:
        code = run_in_userns(lambda: _apply_image_prune(paths, doomed))
        if code != 0:
            raise ChildFailed(code)
    removed_volumes = prune_volumes(paths) if volumes else []
    after = sum(r.size for r in df(paths))
    return PruneReport(removed_containers, removed_images, removed_volumes, max(before - after, 0))


def _apply_image_prune(paths: StoragePaths, doomed: Sequence[Any]) -> int:
    from rootless.engine import image_ops
    from rootless.engine.images import open_store

    image_ops.apply_prune(open_store(paths), doomed)
    return 0


def reset(paths: StoragePaths | None = None) -> None:
    """Remove every container (stopping running ones), image and volume: the data,
    runtime and cache roots go entirely. Configuration stays."""
    from rootless.container.records import NoSuchContainer
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.engine.ctrfs import ChildFailed
    from rootless.runtime.userns import run_in_userns

    paths = paths or StoragePaths.from_env()
    if (paths.data / "containers").exists():
        containers = containers_store(paths)
        try:
            ids = [r.id for r in containers.list()]
        finally:
            containers.close()
        for cid in ids:
            try:
                lifecycle.rm(cid, force=True, paths=paths)
            except NoSuchContainer:
                continue
    roots = [paths.data, paths.runtime, paths.cache]

    def job() -> int:
        for root in roots:
            if root.exists():
                shutil.rmtree(root)
        return 0

    code = run_in_userns(job)
    if code != 0:
        raise ChildFailed(code)
