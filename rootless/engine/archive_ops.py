"""What ``save``, ``load``, ``import``, ``export`` and ``commit`` do, and gc roots.

The archive and commit work itself is in :mod:`rootless.image.archive` and
:mod:`rootless.image.commit`; this module finds the images and containers the
verbs name and hands the library the right directories. ``load``, ``import``,
``export`` and ``commit`` read or write files owned by subordinate IDs: callers
run them inside the user namespace (``run_in_userns``), which also gives the
private mount namespace ``export`` mounts its view in.

Containers are the store's other users: :func:`container_layer_roots` names the
layers they mount, so garbage collection leaves them alone.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from rootless.errors import ConfigError, ImageError
from rootless.image.overlayfmt import option_fields, overlay_lowerdirs, overlay_upperdir

if TYPE_CHECKING:
    from rootless._paths import StoragePaths
    from rootless.container.records import ContainerRecord, ContainerStore
    from rootless.image.archive import ArchiveFormat
    from rootless.image.commit import ImageFormat
    from rootless.image.store import ImageRecord, Store
    from rootless.runtime.spec import Spec

_PAGE = 4096  # mount(2) copies at most one page of options


# -- overlay options (pure) ------------------------------------------------------------


def plan_export_overlay(options: str) -> str:
    """Options of a read-only overlay showing what a container sees: its upper on top
    of its layers, all as lower directories.

    With no upper and work directory the mount never writes, and it does not
    compete with a running container's own mount of the same upper.
    """
    fields = option_fields(options)
    if "lowerdir" not in fields or "upperdir" not in fields:
        raise ImageError(
            "cannot show the container's files: its overlay options name no lowerdir or upperdir"
        )
    lowers = f"lowerdir={fields['upperdir']}:{fields['lowerdir']}"
    flags = [k if not v else f"{k}={v}" for k, v in fields.items() if k == "userxattr"]
    planned = ",".join([lowers, *flags])
    if len(planned) >= _PAGE:
        raise ImageError(
            f"cannot mount the container's files: the overlay options are {len(planned)} "
            f"bytes, over the kernel's {_PAGE - 1}",
            hint="use a shorter storage path (ROOTLESS_DATA_DIR)",
        )
    return planned


def layer_of(path: str, store_root: Path) -> str | None:
    """The diff ID of the store layer ``path`` is (``<root>/layers/<hex>/diff``), if any."""
    p = Path(path)
    if p.name != "diff" or p.parent.parent != store_root / "layers":
        return None
    hexpart = p.parent.name
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        return None
    return f"sha256:{hexpart}"


@contextlib.contextmanager
def _writing(out: Path | BinaryIO) -> Iterator[None]:
    """OS errors while writing ``out`` as ImageErrors; a closed pipe stays a BrokenPipeError
    (the CLI silences stdout before it reports it)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        what = out if isinstance(out, Path) else "the output"
        raise ImageError(f"cannot write {what}: {exc.strerror}") from None


# -- containers ----------------------------------------------------------------------------


def _container(paths: StoragePaths, ref: str) -> tuple[ContainerRecord, ContainerStore, Spec]:
    from rootless.engine.containers import containers_store
    from rootless.runtime.spec import load as load_spec

    containers = containers_store(paths)
    record = containers.get(ref)
    spec = load_spec(containers.container_dir(record.id) / "config.json")
    return record, containers, spec


def container_layer_roots(paths: StoragePaths) -> set[str]:
    """Diff IDs of the layers existing containers mount: garbage collection must keep them.

    Taken from each container's image record and, should that image be gone, from
    the layer directories its saved overlay options name.
    """
    from rootless.engine.containers import containers_store
    from rootless.engine.images import open_store
    from rootless.runtime.spec import load as load_spec

    store = open_store(paths)
    containers = containers_store(paths)
    roots: set[str] = set()
    for record in containers.list():
        if not record.image_id:
            continue
        image = store.find_image(record.image_id)
        if image is not None:
            roots.update(layer.diff_id for layer in image.layers)
        config = containers.container_dir(record.id) / "config.json"
        with contextlib.suppress(ConfigError):  # being created or removed right now
            overlay = load_spec(config).root.overlay
            for lower in overlay_lowerdirs(overlay or ""):
                diff_id = layer_of(lower, store.root)
                if diff_id is not None:
                    roots.add(diff_id)
    return roots


@contextlib.contextmanager
def _merged_view(cdir: Path, overlay: str) -> Iterator[Path]:
    """The container's merged files, read-only, at a temporary mount point.

    Needs a mount namespace of the user namespace (``run_in_userns`` makes one).
    """
    from rootless.sys import mount as sysmount

    view = Path(tempfile.mkdtemp(prefix="export-", dir=cdir))
    try:
        sysmount.mount("overlay", str(view), "overlay", sysmount.MS_RDONLY, overlay)
        try:
            yield view
        finally:
            sysmount.umount2(str(view), sysmount.MNT_DETACH)
    finally:
        view.rmdir()


def export_container(paths: StoragePaths, ref: str, out: Path | BinaryIO) -> int:
    """Write container ``ref``'s files (image layers + its changes) as a tar; entry count.

    Run inside the user namespace: owners come out as the container sees them.
    """
    from rootless.image.archive import export_rootfs

    record, containers, spec = _container(paths, ref)
    with _writing(out):
        if spec.root.overlay is None:  # a --rootfs container: its directory is all there is
            return export_rootfs(Path(spec.root.path), out)
        with _merged_view(
            containers.container_dir(record.id), plan_export_overlay(spec.root.overlay)
        ) as view:
            return export_rootfs(view, out)


def commit_container(
    paths: StoragePaths,
    ref: str,
    name: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
    author: str | None = None,
    fmt: ImageFormat = "oci",
) -> ImageRecord:
    """A new image from container ``ref``: its image plus its writable layer.

    A ``--rootfs`` container has no image: its whole directory becomes the one
    layer. The container is not paused; commit one that is not writing. Run
    inside the user namespace, so owners are kept.
    """
    from rootless.engine.image_ops import new_name
    from rootless.engine.images import open_store
    from rootless.image.commit import History, commit_image
    from rootless.image.layerdiff import UpperDir, WholeTree

    if fmt not in ("oci", "docker"):
        raise ConfigError(f'unsupported image format "{fmt}"', hint="use oci or docker")
    names = [new_name(name)] if name else []
    record, containers, spec = _container(paths, ref)
    store = open_store(paths)
    history = History(created_by=" ".join(record.command), comment=message, author=author)
    if not record.image_id:
        return commit_image(
            store,
            parent=None,
            layer=WholeTree(Path(spec.root.path)),
            changes=changes,
            history=history,
            fmt=fmt,
            names=[str(n) for n in names],
        )
    parent = store.find_image(record.image_id)
    if parent is None:
        raise ImageError(
            f"cannot commit container {record.name}: its image {record.image_id} is no "
            "longer in the store"
        )
    upper = overlay_upperdir(spec.root.overlay or "")
    if upper is None:
        upper = str(containers.container_dir(record.id) / "upper")
    return commit_image(
        store,
        parent=parent,
        layer=UpperDir(Path(upper)),
        changes=changes,
        history=history,
        fmt=fmt,
        names=[str(n) for n in names],
    )


# -- images ----------------------------------------------------------------------------------


def _asked_name(record: ImageRecord, text: str) -> str | None:
    """The image's full name ``text`` spells, if it spells one (not an ID)."""
    from rootless.engine.images import search_registries
    from rootless.image.reference import candidates

    try:
        refs = candidates(text, search_registries=search_registries())
    except ImageError:
        return None
    return next((str(r) for r in refs if r.digest is None and str(r) in record.names), None)


def _save_targets(store: Store, images: Sequence[str]) -> list[str | ImageRecord]:
    """Each image as ``save`` takes it: the full name it was asked by, else its record
    (saved under all its names)."""
    from rootless.engine.image_ops import lookup

    targets: list[str | ImageRecord] = []
    for text in images:
        record = lookup(store, text)
        targets.append(_asked_name(record, text) or record)
    return targets


def save_images(
    paths: StoragePaths,
    images: Sequence[str],
    out: Path | BinaryIO,
    *,
    fmt: ArchiveFormat = "docker-archive",
) -> None:
    """Write ``images`` (names or IDs, looked up as ``images`` does) to an archive."""
    from rootless.engine.images import open_store
    from rootless.image.archive import save

    store = open_store(paths)
    targets = _save_targets(store, images)
    with _writing(out):
        save(store, targets, out, fmt=fmt)


def load_images(paths: StoragePaths, source: Path | BinaryIO) -> list[ImageRecord]:
    """Load a docker-archive or oci-archive. Run inside the user namespace."""
    from rootless.engine.images import open_store
    from rootless.image.archive import load

    return load(open_store(paths), source)


def loaded_lines(records: Sequence[ImageRecord]) -> list[str]:
    """What ``load`` prints, as Podman does: each name, or the ID of an unnamed image."""
    return [f"Loaded image: {name}" for r in records for name in (r.names or (r.id,))]


def import_image(
    paths: StoragePaths,
    source: Path | BinaryIO,
    name: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
) -> ImageRecord:
    """A one-layer image from a rootfs tarball. Run inside the user namespace."""
    from rootless.engine.image_ops import new_name
    from rootless.engine.images import open_store
    from rootless.image.archive import import_rootfs

    names = [str(new_name(name))] if name else []
    return import_rootfs(open_store(paths), source, names=names, changes=changes, message=message)
