"""Images to and from tar archives: ``save``/``load``, ``import``/``export``.

Two archive formats, as Docker, Podman and skopeo write them:

- ``docker-archive``: ``manifest.json`` (a list of ``{Config, RepoTags, Layers}``),
  each config as ``<hex>.json`` and each layer as an uncompressed ``<diff-id hex>.tar``;
- ``oci-archive``: an OCI image layout in a tar (``oci-layout``, ``index.json``
  naming each image with the ``org.opencontainers.image.ref.name`` annotation,
  ``blobs/sha256/<hex>``).

``load`` detects which one it reads (an archive with both, as Docker 25 writes,
is read as OCI), checks every blob against its digest and size before it enters
the store, and refuses entries that are absolute, contain ``..``, or are links
leading out of the archive. The archive itself may be gzip- or zstd-compressed.

Run ``load`` and ``import_rootfs`` inside the user namespace: they record images,
and recording unpacks layers, which keeps owners only there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal

import attrs

from rootless._atomic import fsync_dir
from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image._decompress import TarStream
from rootless.image.commit import (
    History,
    ImageFormat,
    commit_image,
    layer_media_type,
    plan_manifest,
)
from rootless.image.layerdiff import (
    Compression,
    DiffOptions,
    LayerBlob,
    LayerSink,
    TarEntry,
    TarWriter,
    WholeTree,
    Writable,
    publish_blob,
    write_layer,
)
from rootless.image.manifest import Index, Manifest, choose_platform, host_platform, parse_manifest
from rootless.image.reference import candidates

if TYPE_CHECKING:
    from rootless.build.dockerfile import Instruction
    from rootless.image.store import ImageRecord, Store

ArchiveFormat = Literal["docker-archive", "oci-archive"]
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_MAX_JSON = 8 << 20  # manifest.json, index.json, manifests and configs
_MAX_LINKS = 16


# -- save ------------------------------------------------------------------------


@attrs.frozen
class _Saved:
    record: ImageRecord
    names: tuple[str, ...]


def _resolve(store: Store, images: Sequence[str | ImageRecord]) -> list[_Saved]:
    """Each image with the names to save it under: the name it was asked by, else all."""
    out: list[_Saved] = []
    for image in images:
        if not isinstance(image, str):
            out.append(_Saved(image, image.names))
            continue
        record = store.lookup_image(image)
        asked: tuple[str, ...] = ()
        with contextlib.suppress(ImageError):
            full = str(candidates(image)[0])
            asked = tuple(n for n in record.names if n == full)
        out.append(_Saved(record, asked or record.names))
    return out


def save(
    store: Store,
    images: Sequence[str | ImageRecord],
    out: Path | BinaryIO,
    *,
    fmt: ArchiveFormat = "docker-archive",
) -> None:
    """Write ``images`` (names, ids or records) to ``out`` as a ``fmt`` archive.

    A path is written to a temp file beside it and renamed when complete.
    """
    if fmt not in ("docker-archive", "oci-archive"):
        raise ImageError(f"unknown archive format {fmt!r}: use docker-archive or oci-archive")
    if not images:
        raise ImageError("cannot save: no image given")
    saved = _resolve(store, images)
    with store.session(), _output(out) as stream:
        writer = TarWriter(stream)
        if fmt == "docker-archive":
            _save_docker(store, saved, writer)
        else:
            _save_oci(store, saved, writer)
        writer.close()


@contextlib.contextmanager
def _output(out: Path | BinaryIO) -> Iterator[Writable]:
    if not isinstance(out, Path):
        yield out
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, out)
        fsync_dir(out.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _add_file(writer: TarWriter, name: str, path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        writer.add(TarEntry(name, b"0", 0o644, size=size), fd)
    finally:
        os.close(fd)


def _add_dir(writer: TarWriter, name: str) -> None:
    writer.add(TarEntry(name, b"5", 0o755))


def _save_docker(store: Store, images: list[_Saved], writer: TarWriter) -> None:
    written: set[str] = set()
    manifest = []
    for image in images:
        layers = []
        for layer in image.record.layers:
            name = layer.diff_id.partition(":")[2] + ".tar"
            layers.append(name)
            if name not in written:
                _add_uncompressed(store, writer, name, layer.digest, layer.diff_id)
                written.add(name)
        config = image.record.id.partition(":")[2] + ".json"
        if config not in written:
            _add_file(writer, config, store.blob_path(image.record.id))
            written.add(config)
        manifest.append({"Config": config, "RepoTags": list(image.names), "Layers": layers})
    writer.add_bytes(TarEntry("manifest.json", b"0"), json.dumps(manifest).encode())


def _add_uncompressed(
    store: Store, writer: TarWriter, name: str, digest: str, diff_id: str
) -> None:
    """Add blob ``digest`` decompressed (a docker-archive holds plain tars), checked."""
    with tempfile.TemporaryFile(dir=store.root / "tmp") as tmp:
        with open(store.blob_path(digest), "rb") as blob:
            stream = TarStream(blob, limit=store.unpack_options.max_bytes, what=digest)
            try:
                while chunk := stream.read():
                    tmp.write(chunk)
                actual = stream.drain()
            finally:
                stream.close()
        if actual != diff_id:
            raise ImageError(
                f"cannot save layer {digest}: it decompresses to {actual}, not {diff_id}",
                hint="the store is damaged; remove the image and pull it again",
            )
        tmp.flush()
        size = tmp.tell()
        tmp.seek(0)
        writer.add(TarEntry(name, b"0", 0o644, size=size), tmp.fileno())


def _save_oci(store: Store, images: list[_Saved], writer: TarWriter) -> None:
    writer.add_bytes(TarEntry("oci-layout", b"0"), b'{"imageLayoutVersion":"1.0.0"}')
    _add_dir(writer, "blobs")
    _add_dir(writer, "blobs/sha256")
    written: set[str] = set()

    def blob(digest: str, data: bytes | None = None) -> None:
        if digest in written:
            return
        written.add(digest)
        name = "blobs/" + digest.replace(":", "/")
        if data is None:
            _add_file(writer, name, store.blob_path(digest))
        else:
            writer.add_bytes(TarEntry(name, b"0"), data)

    entries = []
    for image in images:
        record = image.record
        for layer in record.layers:
            blob(layer.digest)
        blob(record.id)
        manifest = store.read_blob(record.manifest_digest)
        if record.manifest_media_type != mt.OCI_MANIFEST:
            # An OCI layout names OCI manifests; the blobs stay, only their types change.
            layers = [(x.media_type, x.digest, x.size) for x in record.layers]
            config = store.read_blob(record.id)
            manifest = plan_manifest(config, record.id, layers, "oci")
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        blob(digest, manifest)
        base = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(manifest)}
        for name in image.names or (None,):
            annotations = {} if name is None else {REF_NAME: name, CONTAINERD_NAME: name}
            entries.append({**base, **({"annotations": annotations} if annotations else {})})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    writer.add_bytes(TarEntry("index.json", b"0"), json.dumps(index).encode())


# -- reading archives -------------------------------------------------------------


class _Archive:
    """Random access to the members of an outer archive, with hostile names refused."""

    def __init__(self, tar: tarfile.TarFile, what: str) -> None:
        self.tar = tar
        self.what = what
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            name = self._clean(member.name)
            if member.islnk() or member.issym():
                self._check_target(name, member)
            if name:
                self.members[name] = member

    def refuse(self, name: str, why: str) -> ImageError:
        return ImageError(f"refusing archive {self.what}: entry {name!r} {why}")

    def _clean(self, name: str) -> str:
        if name.startswith("/"):
            raise self.refuse(name, "is an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(name, "leaves the archive ('..')")
        return "/".join(parts)

    def _check_target(self, name: str, member: tarfile.TarInfo) -> None:
        base = "" if member.islnk() else posixpath.dirname(name)
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise self.refuse(name, f"links to {member.linkname!r}, outside the archive")

    def has(self, name: str) -> bool:
        return name in self.members

    def member(self, name: str) -> tarfile.TarInfo:
        """The regular file ``name`` (links inside the archive are followed)."""
        name = self._clean(name)
        for _ in range(_MAX_LINKS):
            member = self.members.get(name)
            if member is None:
                raise ImageError(f"cannot load {self.what}: {name!r} is missing from the archive")
            if member.isfile():
                return member
            if not (member.issym() or member.islnk()):
                raise ImageError(f"cannot load {self.what}: {name!r} is not a regular file")
            base = "" if member.islnk() else posixpath.dirname(name)
            name = posixpath.normpath(posixpath.join(base, member.linkname))
        raise self.refuse(name, "is a chain of too many links")

    def open(self, name: str) -> IO[bytes]:
        reader = self.tar.extractfile(self.member(name))
        assert reader is not None  # a regular file always has a reader
        return reader

    def read_json(self, name: str) -> bytes:
        member = self.member(name)
        if member.size > _MAX_JSON:
            raise ImageError(
                f"refusing archive {self.what}: {name!r} is {member.size} bytes, "
                f"more than the {_MAX_JSON} a manifest or config may have"
            )
        return self.open(name).read()

    def blob_name(self, digest: str) -> str:
        algorithm, _, hexpart = digest.partition(":")
        return f"blobs/{algorithm}/{hexpart}"


@contextlib.contextmanager
def _open_archive(store: Store, source: Path | BinaryIO) -> Iterator[_Archive]:
    what = str(source) if isinstance(source, Path) else "stream"
    with contextlib.ExitStack() as stack:
        if isinstance(source, Path):
            try:
                fileobj: BinaryIO = stack.enter_context(open(source, "rb"))
            except OSError as exc:
                raise ImageError(f"cannot load {what}: {exc.strerror}") from None
        elif source.seekable():
            fileobj = source
        else:  # a pipe: tar members are read in any order, so keep a seekable copy
            fileobj = stack.enter_context(tempfile.TemporaryFile(dir=store.root / "tmp"))
            shutil.copyfileobj(source, fileobj, 1 << 20)
            fileobj.seek(0)
        fileobj = _decompressed(stack, store, fileobj)
        try:
            tar = stack.enter_context(tarfile.open(fileobj=fileobj, mode="r:"))
            archive = _Archive(tar, what)
        except tarfile.TarError as exc:
            raise ImageError(f"cannot load {what}: not a tar archive ({exc})") from None
        yield archive


def _decompressed(stack: contextlib.ExitStack, store: Store, fileobj: BinaryIO) -> BinaryIO:
    """A seekable plain-tar view of ``fileobj``, which may be gzip or zstd compressed."""
    head = fileobj.read(6)
    fileobj.seek(-len(head), os.SEEK_CUR)
    if not (head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd")):
        return fileobj
    plain = stack.enter_context(tempfile.TemporaryFile(dir=store.root / "tmp"))  # noqa: SIM115
    stream = TarStream(fileobj, limit=store.unpack_options.max_bytes, what="archive")
    try:
        while chunk := stream.read():
            plain.write(chunk)
    finally:
        stream.close()
    plain.seek(0)
    return plain


def _copy_blob(store: Store, archive: _Archive, digest: str, size: int) -> None:
    if store.has_blob(digest):
        return
    source = archive.open(archive.blob_name(digest))
    try:
        with store.blob_writer(digest, size) as writer:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
    except ImageError as exc:
        raise ImageError(f"cannot load {archive.what}: {exc.message}", hint=exc.hint) from None


# -- load --------------------------------------------------------------------------


def load(
    store: Store, source: Path | BinaryIO, *, compression: Compression = "gzip"
) -> list[ImageRecord]:
    """Load every image of a docker-archive or oci-archive; return them as recorded.

    ``compression`` applies to docker-archive layers, which are stored plain in the
    archive and compressed on the way into the store.
    """
    with _cleanup_on_error(store), store.session(), _open_archive(store, source) as archive:
        if archive.has("index.json") and archive.has("oci-layout"):
            return _load_oci(store, archive)
        if archive.has("manifest.json"):
            return _load_docker(store, archive, compression)
        raise ImageError(
            f"cannot load {archive.what}: it is neither a docker-archive (manifest.json) "
            "nor an oci-archive (oci-layout and index.json)"
        )


@contextlib.contextmanager
def _cleanup_on_error(store: Store) -> Iterator[None]:
    """After a failed load or import, drop the blobs it stored but no image uses.

    Runs once the session is over; if another process is writing meanwhile, gc is
    skipped and the next one removes them.
    """
    try:
        yield
    except ImageError:
        store.gc(wait=False)
        raise


def _image_name(annotations: Any) -> str | None:
    """The image name an index entry carries; a bare tag like ``latest`` names nothing."""
    for key in (CONTAINERD_NAME, REF_NAME):
        name = annotations.get(key)
        if name and ("/" in name or ":" in name):
            return str(name)
    return None


def _load_oci(store: Store, archive: _Archive) -> list[ImageRecord]:
    index = parse_manifest(archive.read_json("index.json"))
    if not isinstance(index, Index):
        raise ImageError(f"cannot load {archive.what}: index.json is not an image index")
    images: dict[tuple[str, str | None], list[str]] = {}
    for desc in index.manifests:
        manifest_digest, parent_index = desc.digest, None
        if desc.media_type in mt.INDEXES:
            _copy_blob(store, archive, desc.digest, desc.size)
            nested = parse_manifest(store.read_blob(desc.digest), desc.media_type)
            if not isinstance(nested, Index):
                raise ImageError(f"cannot load {archive.what}: {desc.digest} is not an index")
            manifest_digest, parent_index = (
                choose_platform(nested, host_platform()).digest,
                desc.digest,
            )
            size = next(m.size for m in nested.manifests if m.digest == manifest_digest)
        elif desc.media_type in mt.MANIFESTS:
            size = desc.size
        else:
            raise ImageError(
                f"cannot load {archive.what}: unsupported media type {desc.media_type!r} "
                "in index.json"
            )
        _copy_blob(store, archive, manifest_digest, size)
        manifest = parse_manifest(store.read_blob(manifest_digest))
        if not isinstance(manifest, Manifest):
            raise ImageError(f"cannot load {archive.what}: {manifest_digest} is not a manifest")
        for blob in (manifest.config, *manifest.layers):
            _copy_blob(store, archive, blob.digest, blob.size)
        names = images.setdefault((manifest_digest, parent_index), [])
        name = _image_name(desc.annotations)
        if name is not None:
            names.append(name)
    return [
        store.record_image(digest, names=names, index_digest=parent)
        for (digest, parent), names in images.items()
    ]


def _load_docker(store: Store, archive: _Archive, compression: Compression) -> list[ImageRecord]:
    try:
        entries = json.loads(archive.read_json("manifest.json"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"cannot load {archive.what}: manifest.json is not JSON ({exc})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ImageError(f"cannot load {archive.what}: manifest.json must be a list of objects")
    known = {layer.diff_id: layer for image in store.list_images() for layer in image.layers}
    fmt: ImageFormat = "docker" if compression == "gzip" else "oci"
    records = []
    for entry in entries:
        config_name = entry.get("Config")
        layer_names = entry.get("Layers") or []
        if not isinstance(config_name, str) or not all(isinstance(n, str) for n in layer_names):
            raise ImageError(
                f"cannot load {archive.what}: manifest.json entries need Config and Layers"
            )
        config = archive.read_json(config_name)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        stem = posixpath.basename(config_name).removesuffix(".json")
        if len(stem) == 64 and stem != config_digest.partition(":")[2]:
            raise ImageError(
                f"cannot load {archive.what}: config {config_name!r} hashes to {config_digest}"
                " (digest mismatch)"
            )
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ImageError(
                f"cannot load {archive.what}: config {config_name!r} has no rootfs.diff_ids"
            ) from None
        if len(diff_ids) != len(layer_names):
            raise ImageError(
                f"cannot load {archive.what}: {config_name!r} lists {len(diff_ids)} layers "
                f"but manifest.json gives {len(layer_names)}"
            )
        layers = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            have = known.get(diff_id)
            if have is not None and have.media_type in mt.LAYERS and store.has_blob(have.digest):
                try:
                    layers.append((layer_media_type(have.media_type, fmt), have.digest, have.size))
                    continue
                except ImageError:
                    pass  # stored in a compression this format cannot name; store anew
            blob = _store_tar(store, archive.open(name), compression, f"{archive.what}:{name}")
            if blob.diff_id != diff_id:
                raise ImageError(
                    f"cannot load {archive.what}: layer {name!r} hashes to {blob.diff_id} "
                    f"but the config says {diff_id} (digest mismatch)"
                )
            layers.append((blob.media_type(fmt == "docker"), blob.digest, blob.size))
        config_digest = store.add_blob_bytes(config)
        manifest = plan_manifest(config, config_digest, layers, fmt)
        names = [t for t in entry.get("RepoTags") or () if isinstance(t, str)]
        records.append(store.record_image(store.add_blob_bytes(manifest), names=names))
    return records


def _store_tar(store: Store, source: IO[bytes], compression: Compression, what: str) -> LayerBlob:
    """Store the tar read from ``source`` (plain, gzip or zstd) as a ``compression`` blob."""
    sink = LayerSink(store.root / "tmp", compression)
    stream = TarStream(source, limit=store.unpack_options.max_bytes, what=what)  # type: ignore[arg-type]
    try:
        while chunk := stream.read():
            sink.write(chunk)
        stream.drain()
        blob = sink.finish()
        publish_blob(store, blob.path, blob.digest)
    except BaseException:
        sink.abort()
        raise
    finally:
        stream.close()
    return attrs.evolve(blob, path=store.blob_path(blob.digest))


# -- import and export --------------------------------------------------------------


def import_rootfs(
    store: Store,
    tarball: Path | BinaryIO,
    *,
    names: Sequence[str] = (),
    changes: Sequence[str | Instruction] = (),
    message: str | None = None,
    fmt: ImageFormat = "oci",
    compression: Compression = "gzip",
) -> ImageRecord:
    """A one-layer image from a rootfs tarball (plain, gzip or zstd), like ``podman import``."""
    what = str(tarball) if isinstance(tarball, Path) else "stream"
    with _cleanup_on_error(store), store.session(), contextlib.ExitStack() as stack:
        if isinstance(tarball, Path):
            try:
                source: IO[bytes] = stack.enter_context(open(tarball, "rb"))
            except OSError as exc:
                raise ImageError(f"cannot import {what}: {exc.strerror}") from None
        else:
            source = tarball
        blob = _store_tar(store, source, compression, what)
        return commit_image(
            store,
            parent=None,
            layer=blob,
            changes=changes,
            history=History(created_by=f"rootless import {what}", comment=message),
            fmt=fmt,
            names=names,
        )


def export_rootfs(root: Path, out: Path | BinaryIO, options: DiffOptions | None = None) -> int:
    """Write the directory ``root`` as a plain tar to ``out``; return the entry count.

    Run inside the user namespace (with the container's rootfs mounted there) so
    owners come out as the container sees them.
    """
    with _output(out) as stream:
        return write_layer(WholeTree(root), stream, options or DiffOptions())
