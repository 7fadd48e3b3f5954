"""The image store: content-addressed blobs, unpacked layers, image metadata.

Layout under the store root (see docs/storage.md)::

    blobs/sha256/<hex>        verified blobs: manifests, indexes, configs, compressed layers
    layers/<hex>/diff         a layer unpacked, keyed by its diff ID (sha256 of the tar)
    layers/<hex>/layer.json   what the unpack found (LayerInfo)
    images.db                 SQLite (WAL): images and their names
    tmp/                      work in progress; anything here is garbage once no writer runs
    locks/                    per-layer unpack locks
    store.lock, gc.lock       metadata writes; writers (shared) against gc (exclusive)

Nothing becomes visible before it is complete: blobs are hashed while written to
``tmp/`` and renamed into ``blobs/`` only after the digest and size match; layers
are unpacked into ``tmp/`` and renamed into ``layers/`` as a whole. Renames are
atomic, so ten processes storing the same blob or layer end with one copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rootless._atomic import atomic_write, flock, fsync_dir
from rootless._record import Record
from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image._fsops import remove_tree
from rootless.image.reference import DOCKER_HUB, Reference, candidates, validate_digest

if TYPE_CHECKING:
    from rootless.image.manifest import ImageConfig, Manifest
    from rootless.image.unpack import LayerInfo, UnpackOptions

T = TypeVar("T")
# Runs a callable where layer files may be created and removed: in-process by
# default, or in a child inside the user namespace so owners land in the
# subordinate range. It must return the callable's result and re-raise its errors.
Runner = Callable[[Callable[[], T]], T]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- the config digest
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    index_digest TEXT,                -- the manifest list it was chosen from, if any
    layers TEXT NOT NULL,             -- JSON: [{digest, media_type, size, diff_id}]
    size INTEGER NOT NULL,            -- compressed bytes of config and layers
    created TEXT,                     -- the config's "created"
    recorded REAL NOT NULL            -- when this store learnt about it
);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,            -- registry/repository:tag
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS names_by_image ON names(image_id);
"""


def _in_process(fn: Callable[[], T]) -> T:
    return fn()


class LayerRef(Record):
    digest: str  # the compressed blob
    media_type: str
    size: int
    diff_id: str


class ImageRecord(Record):
    id: str  # config digest; the short id is id[7:19]
    manifest_digest: str
    manifest_media_type: str
    index_digest: str | None
    layers: tuple[LayerRef, ...]
    size: int
    created: str | None
    recorded: float
    names: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id.partition(":")[2][:12]

    @property
    def digests(self) -> tuple[str, ...]:
        """The digests a ``name@digest`` reference may use for this image."""
        return (self.manifest_digest,) + ((self.index_digest,) if self.index_digest else ())


class GcReport(Record):
    blobs: int = 0
    layers: int = 0
    temp: int = 0
    skipped: bool = False  # another process was writing; nothing was removed


class BlobWriter:
    """Receives a blob's bytes; see :meth:`Store.blob_writer`."""

    def __init__(self, fd: int, digest: str, expected_size: int | None) -> None:
        self._fd = fd
        self._digest = digest
        self._expected = expected_size
        import hashlib  # OpenSSL's start-up is not paid by `run`, which writes no blob

        self._hash = hashlib.new(digest.partition(":")[0])
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.size += len(data)
        if self._expected is not None and self.size > self._expected:
            raise ImageError(
                f"cannot store blob {self._digest}: size mismatch: "
                f"more than the {self._expected} bytes expected"
            )
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def verify(self) -> None:
        if self._expected is not None and self.size != self._expected:
            raise ImageError(
                f"cannot store blob {self._digest}: size mismatch: "
                f"expected {self._expected} bytes, received {self.size}"
            )
        algorithm = self._digest.partition(":")[0]
        actual = f"{algorithm}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise ImageError(
                f"cannot store blob {self._digest}: digest mismatch: the data hashes to {actual}"
            )


class Store:
    """One user's image store at ``root`` (normally ``StoragePaths.images``)."""

    def __init__(
        self,
        root: Path,
        *,
        preserve_owner: bool = False,
        runner: Runner[object] | None = None,
    ) -> None:
        """``preserve_owner``: unpack layers with their owners (inside the user namespace)."""
        self.root = root
        self._preserve_owner = preserve_owner
        self._unpack_options: UnpackOptions | None = None
        self._runner: Runner[object] = runner or _in_process
        self._db: sqlite3.Connection | None = None
        self._db_pid = 0
        for sub in ("blobs/sha256", "blobs/sha512", "layers", "tmp", "locks"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def unpack_options(self) -> UnpackOptions:
        # Imported on first use: listing images should not pay for the unpacker.
        from rootless.image.unpack import UnpackOptions

        if self._unpack_options is None:
            self._unpack_options = UnpackOptions(preserve_owner=self._preserve_owner)
        return self._unpack_options

    def _run(self, fn: Callable[[], T]) -> T:
        return self._runner(fn)  # type: ignore[return-value]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- locks -------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold off garbage collection while blobs are stored but not yet recorded.

        A pull or load runs inside one session: gc never removes a blob another
        process has just written for an image it is about to record.
        """
        with flock(self.root / "gc.lock", shared=True):
            yield

    # -- blobs -------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexpart = validate_digest(digest).partition(":")
        return self.root / "blobs" / algorithm / hexpart

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    @contextlib.contextmanager
    def blob_writer(self, digest: str, expected_size: int | None = None) -> Iterator[BlobWriter]:
        """Write a blob; it appears under its digest only if digest and size match.

        On any error (a mismatch, or an exception in the ``with`` block) the
        partial file is removed and nothing becomes visible.
        """
        final = self.blob_path(digest)
        with self.session():
            fd, tmp = tempfile.mkstemp(prefix="blob-", dir=self.root / "tmp")
            try:
                writer = BlobWriter(fd, digest, expected_size)
                yield writer
                writer.verify()
                os.fchmod(fd, 0o444)
                os.fsync(fd)
                os.close(fd)
                fd = -1
                # Another process may have stored the same blob meanwhile: the rename
                # replaces identical content, so one copy remains either way.
                os.rename(tmp, final)
                fsync_dir(final.parent)
            finally:
                if fd >= 0:
                    os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def add_blob_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (verified against ``digest`` if given) and return its digest."""
        import hashlib

        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            with self.blob_writer(digest, len(data)) as writer:
                writer.write(data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the store") from None

    # -- layers ------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        """The ``diff`` directory of an unpacked layer (it may not exist yet)."""
        return self.root / "layers" / validate_digest(diff_id).partition(":")[2] / "diff"

    def layer_info(self, diff_id: str) -> LayerInfo:
        from rootless.image.unpack import LayerInfo

        return LayerInfo.from_json((self.layer_dir(diff_id).parent / "layer.json").read_bytes())

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_dir(diff_id).parent.exists()

    def ensure_layer(self, digest: str, media_type: str, diff_id: str) -> Path:
        """Unpack blob ``digest`` as the layer ``diff_id`` unless it is there; return its dir.

        Layers are keyed by diff ID, not by chain: an unpack depends only on the
        layer's own tar (whiteouts are kept as whiteouts), so one directory serves
        every image that has the layer, whatever lies below it. The unpack checks
        the tar stream against ``diff_id`` before the layer becomes visible.
        """
        if media_type not in mt.LAYERS:
            raise ImageError(f"cannot unpack layer {digest}: unknown media type {media_type!r}")
        target = self.layer_dir(diff_id)
        if target.parent.exists():
            return target
        blob = self.blob_path(digest)
        if not blob.exists():
            raise ImageError(f"cannot unpack layer {digest}: the blob is not in the store")
        lock = self.root / "locks" / f"layer-{target.parent.name}.lock"
        with self.session(), flock(lock):
            if target.parent.exists():  # another process finished it while we waited
                return target
            work = Path(tempfile.mkdtemp(prefix="layer-", dir=self.root / "tmp"))
            try:
                info = self._run(lambda: _unpack_into(blob, work, self.unpack_options, digest))
                if info.diff_id != diff_id:
                    raise ImageError(
                        f"cannot unpack layer {digest}: its tar stream hashes to "
                        f"{info.diff_id} but the image config says {diff_id}"
                    )
                atomic_write(work / "layer.json", info.to_json())
                os.rename(work, target.parent)
                fsync_dir(target.parent.parent)
            except BaseException:
                self._run(lambda: remove_tree(work))
                raise
        return target

    # -- metadata ----------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child (the user-namespace runner) opens its own.
        if self._db is not None and self._db_pid != os.getpid():
            self._db = None
        if self._db is None:
            path = self.root / "images.db"
            with flock(self.root / "store.lock"):
                db = sqlite3.connect(path, timeout=60, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
                db.executescript(_SCHEMA)
            self._db = db
            self._db_pid = os.getpid()
        return self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A read-modify-write transaction, serialised across processes."""
        db = self._conn()
        with flock(self.root / "store.lock"):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def record_image(
        self,
        manifest_digest: str,
        *,
        names: Sequence[Reference | str] = (),
        index_digest: str | None = None,
    ) -> ImageRecord:
        """Record the image whose manifest and config blobs are stored; unpack its layers.

        Each of ``names`` moves to this image (an image that loses its last name
        stays, untagged, until removed).
        """
        manifest = self.manifest(manifest_digest)
        config = self._config_of(manifest)
        if len(config.diff_ids) != len(manifest.layers):
            raise ImageError(
                f"invalid image {manifest_digest}: the manifest has {len(manifest.layers)} "
                f"layers but the config lists {len(config.diff_ids)} diff IDs"
            )
        layers = tuple(
            LayerRef(d.digest, d.media_type, d.size, diff_id)
            for d, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
        )
        with self.session():
            for layer in layers:
                self.ensure_layer(layer.digest, layer.media_type, layer.diff_id)
            size = manifest.config.size + sum(layer.size for layer in layers)
            layers_json = json.dumps([layer._asdict() for layer in layers])
            with self._write() as db:
                db.execute(
                    "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE"
                    " SET manifest_digest=excluded.manifest_digest,"
                    " manifest_media_type=excluded.manifest_media_type,"
                    " index_digest=coalesce(excluded.index_digest, index_digest),"
                    " layers=excluded.layers, size=excluded.size",
                    (
                        manifest.config.digest,
                        manifest_digest,
                        manifest.media_type,
                        index_digest,
                        layers_json,
                        size,
                        config.created,
                        time.time(),
                    ),
                )
                for name in names:
                    db.execute(
                        "INSERT OR REPLACE INTO names VALUES (?, ?)",
                        (_tagged(name), manifest.config.digest),
                    )
        return self.lookup_image(manifest.config.digest)

    def manifest(self, digest: str) -> Manifest:
        # The manifest model is imported on use: listing images does not need it.
        from rootless.image.manifest import Manifest, parse_manifest

        parsed = parse_manifest(self.read_blob(digest))
        if not isinstance(parsed, Manifest):
            raise ImageError(f"blob {digest} is an image index, not an image manifest")
        return parsed

    def _config_of(self, manifest: Manifest) -> ImageConfig:
        from rootless.image.manifest import parse_config

        return parse_config(self.read_blob(manifest.config.digest))

    def image_config(self, image: ImageRecord) -> ImageConfig:
        from rootless.image.manifest import parse_config

        return parse_config(self.read_blob(image.id))

    def _records(self, where: str = "", args: Sequence[object] = ()) -> list[ImageRecord]:
        db = self._conn()
        rows = db.execute(
            "SELECT id, manifest_digest, manifest_media_type, index_digest, layers, size,"
            f" created, recorded FROM images {where} ORDER BY recorded DESC",
            tuple(args),
        ).fetchall()
        names: dict[str, list[str]] = {}
        for name, image_id in db.execute("SELECT name, image_id FROM names ORDER BY name"):
            names.setdefault(image_id, []).append(name)
        return [
            ImageRecord(
                row[0],
                row[1],
                row[2],
                row[3],
                tuple(LayerRef(**layer) for layer in json.loads(row[4])),
                row[5],
                row[6],
                row[7],
                tuple(names.get(row[0], ())),
            )
            for row in rows
        ]

    def list_images(self) -> list[ImageRecord]:
        """All images, newest first."""
        return self._records()

    def find_image(
        self, ref_or_id: Reference | str, *, search_registries: Sequence[str] = (DOCKER_HUB,)
    ) -> ImageRecord | None:
        """The image named by a reference, a name, ``name@digest``, or a (short) id."""
        db = self._conn()
        if isinstance(ref_or_id, Reference):
            refs = [ref_or_id]
        else:
            if _is_hex(ref_or_id):
                text = ref_or_id.removeprefix("sha256:")
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM images WHERE id LIKE ?", (f"sha256:{text}%",)
                    )
                ]
                if len(ids) > 1:
                    raise ImageError(f"short id {text!r} is ambiguous: use more digits")
                if ids:
                    return self._records("WHERE id = ?", ids)[0]
            try:
                refs = candidates(ref_or_id, search_registries=search_registries)
            except ImageError:
                return None
        for ref in refs:
            if ref.digest is not None:
                found = self._records(
                    "WHERE manifest_digest = ? OR index_digest = ? OR id = ?", [ref.digest] * 3
                )
            else:
                found = self._records(
                    "WHERE id = (SELECT image_id FROM names WHERE name = ?)", [str(ref)]
                )
            if found:
                return found[0]
        return None

    def lookup_image(
        self, ref_or_id: Reference | str, *, search_registries: Sequence[str] = (DOCKER_HUB,)
    ) -> ImageRecord:
        """Like :meth:`find_image` but raises when the image is not in the store."""
        found = self.find_image(ref_or_id, search_registries=search_registries)
        if found is None:
            raise ImageError(f"{ref_or_id}: image not known")
        return found

    def tag(self, image: Reference | str, name: Reference | str) -> None:
        """Give ``image`` the name ``name``, taking it from any image that had it."""
        record = self.lookup_image(image)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO names VALUES (?, ?)", (_tagged(name), record.id))

    def untag(self, name: Reference | str) -> None:
        """Remove the name ``name``; the image stays."""
        full = _tagged(name)
        with self._write() as db:
            if db.execute("DELETE FROM names WHERE name = ?", (full,)).rowcount == 0:
                raise ImageError(f"{full}: no image has this name")

    def remove_image(
        self, image: Reference | str, *, keep_layers: Iterable[str] = ()
    ) -> ImageRecord:
        """Forget an image and all its names; its blobs and layers go at the next gc.

        ``keep_layers`` (diff IDs) are layers something else still uses, such as
        containers made from the image; the gc run here leaves them.
        """
        record = self.lookup_image(image)
        with self._write() as db:
            db.execute("DELETE FROM images WHERE id = ?", (record.id,))
        self.gc(wait=False, keep_layers=keep_layers)
        return record

    # -- garbage collection ------------------------------------------------

    def gc(self, *, wait: bool = True, keep_layers: Iterable[str] = ()) -> GcReport:
        """Remove unreferenced blobs and layers, and everything in ``tmp/``.

        Layers of recorded images stay, and so do ``keep_layers`` (diff IDs): the
        store knows nothing of containers, so their users name the layers they
        mount (``rootless.engine.archive_ops.container_layer_roots``).
        Runs only while no writer holds a session (they all hold gc.lock shared);
        with ``wait=False`` it returns at once, ``skipped``, if one does.
        """
        keep = frozenset(keep_layers)
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return GcReport(skipped=True)
            return self._gc_locked(keep)
        finally:
            os.close(fd)

    def _gc_locked(self, keep_layers: frozenset[str]) -> GcReport:
        blobs: set[str] = set()
        diff_ids: set[str] = set(keep_layers)
        for image in self.list_images():
            blobs.update((image.id, *image.digests))
            for layer in image.layers:
                blobs.add(layer.digest)
                diff_ids.add(layer.diff_id)
        temp = 0
        for entry in (self.root / "tmp").iterdir():
            self._remove(entry)
            temp += 1
        removed_blobs = 0
        for algorithm in ("sha256", "sha512"):
            for entry in (self.root / "blobs" / algorithm).iterdir():
                if f"{algorithm}:{entry.name}" not in blobs:
                    entry.unlink()
                    removed_blobs += 1
        removed_layers = 0
        for entry in (self.root / "layers").iterdir():
            if f"sha256:{entry.name}" not in diff_ids:
                # Move aside first so no reader ever sees a half-removed layer.
                doomed = Path(tempfile.mkdtemp(prefix="gc-", dir=self.root / "tmp"))
                os.rename(entry, doomed / "layer")
                self._remove(doomed)
                removed_layers += 1
        for entry in (self.root / "locks").iterdir():
            entry.unlink()
        return GcReport(removed_blobs, removed_layers, temp)

    def _remove(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            self._run(lambda: remove_tree(path))
        else:
            path.unlink(missing_ok=True)


def _unpack_into(blob: Path, work: Path, options: UnpackOptions, digest: str) -> LayerInfo:
    from rootless.image.unpack import unpack_layer

    diff = work / "diff"
    diff.mkdir()
    with open(blob, "rb") as source:
        return unpack_layer(source, diff, options, what=digest)


def _tagged(name: Reference | str) -> str:
    ref = name if isinstance(name, Reference) else candidates(name)[0]
    if ref.tag is None:
        raise ImageError(f"cannot use {ref} as a name: a name needs a tag, not only a digest")
    return str(ref._replace(digest=None))


def _is_hex(text: str) -> bool:
    text = text.removeprefix("sha256:")
    return 3 <= len(text) <= 64 and all(c in "0123456789abcdef" for c in text)
