"""Directories into OCI layer tars: an overlay upper, a diff of two trees, a whole tree.

Three sources of a layer, one tar format:

- :class:`UpperDir`, a kernel overlayfs (or fuse-overlayfs) upper directory: 0/0
  character devices become ``.wh.NAME`` whiteouts and directories marked opaque
  (``user.overlay.opaque=y``) get a ``.wh..wh..opq`` entry;
- :class:`DirDiff`, what the copy driver has: the merged lower layers as one
  directory and the container's directory beside it; changed entries are written,
  missing ones become whiteouts;
- :class:`WholeTree`, every entry of a directory (``export``, and ``import`` of a
  directory).

Entries are written in sorted order with whole-second mtimes and no user or group
names, so the same tree always gives the same bytes; :class:`DiffOptions` can also
clamp mtimes and force owners for reproducible builds. Owners are written as
seen: walk inside the user namespace to record container IDs.

:class:`LayerSink` takes the tar stream, hashes it (the diff ID), compresses it
(gzip through zlib, or zstd) and hashes and writes the compressed blob to a temp
file, all in one pass; :func:`store_layer` then moves the blob into the store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import stat
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import attrs

from rootless._atomic import fsync_dir
from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.overlayfmt import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX

if TYPE_CHECKING:
    from rootless.image.store import Store

Compression = Literal["gzip", "zstd", ""]

BLOCK = 512
_CHUNK = 1 << 20
# Level 1 compresses a typical rootfs within ~10% of level 6's size at 2-3x the
# speed (see docs/archives.md); builds and commits are dominated by this step.
GZIP_LEVEL = 1
ZSTD_LEVEL = 3
_FUSE_OPAQUE_XATTR = "user.fuseoverlayfs.opaque"
# Kernel 6.7+ may mark whiteouts as empty regular files with this xattr.
_XATTR_WHITEOUT = "user.overlay.whiteout"
# A renamed directory recorded as a redirect keeps its contents in the lower layer;
# a tar of such an upper would be wrong, so it is refused rather than ignored.
# (With userxattr the kernel creates none: renames of lower dirs fail with EXDEV.)
_UNSUPPORTED_OVERLAY = ("user.overlay.redirect", "trusted.overlay.redirect")
_SKIPPED_XATTRS = ("trusted.", "user.overlay.", "user.fuseoverlayfs.")
_RD_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_REG, _LNK, _SYM, _CHR, _BLK, _DIR, _FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@attrs.frozen
class DiffOptions:
    """Metadata normalisation for reproducible layers.

    ``mtime_clamp``: no entry's mtime is later than this (seconds since the epoch,
    as ``SOURCE_DATE_EPOCH``). ``owner``: every entry gets this uid/gid.
    ``xattrs``: record extended attributes (overlay's own are never recorded).
    """

    mtime_clamp: int | None = None
    owner: tuple[int, int] | None = None
    xattrs: bool = True


# -- tar writing -----------------------------------------------------------


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    # The length prefix counts itself, so it may take one more digit than the body.
    n = len(body) + len(str(len(body)))
    n = len(body) + len(str(n))
    return str(n).encode() + body


@attrs.frozen
class TarEntry:
    """One member: ``name`` without a trailing slash, ``mode`` the permission bits."""

    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    size: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


def tar_header(e: TarEntry) -> bytes:
    """ustar header block(s) for ``e``, with a pax header first where ustar cannot hold it."""
    name = e.name.encode("utf-8", "surrogateescape") + (b"/" if e.type == _DIR else b"")
    link = e.linkname.encode("utf-8", "surrogateescape")
    pax: list[bytes] = []
    if len(name) > 100 or not name.isascii():
        pax.append(_pax_record("path", name))
    if len(link) > 100 or not link.isascii():
        pax.append(_pax_record("linkpath", link))
    for key, value in (("uid", e.uid), ("gid", e.gid)):
        if value > 0o7777777:
            pax.append(_pax_record(key, str(value).encode()))
    if e.size > 0o77777777777:
        pax.append(_pax_record("size", str(e.size).encode()))
    mtime = e.mtime
    if not 0 <= mtime <= 0o77777777777:
        pax.append(_pax_record("mtime", str(mtime).encode()))
        mtime = 0
    for key, raw in e.xattrs:
        pax.append(_pax_record("SCHILY.xattr." + key, raw))
    out = b""
    if pax:
        payload = b"".join(pax)
        pax_name = b"PaxHeaders/" + name.rstrip(b"/").rsplit(b"/", 1)[-1][:80]
        out = _block(pax_name, b"x", 0o644, 0, 0, len(payload), 0, b"", 0, 0)
        out += payload + bytes(-len(payload) % BLOCK)
    return out + _block(
        name[:100],
        e.type,
        e.mode,
        min(e.uid, 0o7777777),
        min(e.gid, 0o7777777),
        e.size if e.size <= 0o77777777777 else 0,
        mtime,
        link[:100],
        e.devmajor,
        e.devminor,
    )


def _block(
    name: bytes,
    kind: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    link: bytes,
    major: int,
    minor: int,
) -> bytes:
    head = (
        name.ljust(100, b"\0")
        + _octal(mode & 0o7777, 8)
        + _octal(uid, 8)
        + _octal(gid, 8)
        + _octal(size, 12)
        + _octal(mtime, 12)
    )
    tail = (
        kind
        + link.ljust(100, b"\0")
        + b"ustar\x0000"
        + bytes(64)  # uname, gname: left empty so the host's names do not leak in
        + _octal(major, 8)
        + _octal(minor, 8)
        + bytes(155 + 12)
    )
    checksum = sum(head) + sum(tail) + 8 * 32
    return head + b"%06o\0 " % checksum + tail


class TarWriter:
    """Writes tar members to ``out``; :meth:`close` writes the end-of-archive blocks."""

    def __init__(self, out: Writable) -> None:
        self.out = out
        self.entries = 0

    def add(self, entry: TarEntry, data_fd: int | None = None) -> None:
        self.out.write(tar_header(entry))
        self.entries += 1
        if entry.type == _REG and entry.size:
            if data_fd is None:
                raise ValueError("a regular file with data needs data_fd")
            self._copy(data_fd, entry)

    def add_bytes(self, entry: TarEntry, data: bytes) -> None:
        self.out.write(tar_header(attrs.evolve(entry, size=len(data))))
        self.entries += 1
        self.out.write(data + bytes(-len(data) % BLOCK))

    def _copy(self, fd: int, entry: TarEntry) -> None:
        left = entry.size
        while left:
            data = os.read(fd, min(left, _CHUNK))
            if not data:
                raise ImageError(
                    f"cannot write layer entry {entry.name!r}: the file shrank while being read",
                    hint="stop the container before committing it",
                )
            self.out.write(data)
            left -= len(data)
        self.out.write(bytes(-entry.size % BLOCK))

    def close(self) -> None:
        self.out.write(bytes(2 * BLOCK))


# -- walking ---------------------------------------------------------------


@attrs.frozen
class UpperDir:
    """An overlay upper directory (kernel overlayfs with ``userxattr``, or fuse-overlayfs)."""

    path: Path


@attrs.frozen
class DirDiff:
    """What changed from ``lower`` (the merged lower layers) to ``new``."""

    lower: Path
    new: Path


@attrs.frozen
class WholeTree:
    """Every entry below ``path``."""

    path: Path


TreeSource = UpperDir | DirDiff | WholeTree


def write_layer(source: TreeSource, out: Writable, options: DiffOptions = DiffOptions()) -> int:
    """Write ``source`` as a layer tar to ``out``; return the number of entries."""
    writer = TarWriter(out)
    walker = _Walker(writer, options)
    root = source.new if isinstance(source, DirDiff) else source.path
    with _open_dir(root) as fd:
        if isinstance(source, UpperDir):
            walker.upper(fd, ())
        elif isinstance(source, DirDiff):
            with _open_dir(source.lower) as lower:
                walker.diff(lower, fd, ())
        else:
            walker.tree(fd, ())
    writer.close()
    return writer.entries


@contextlib.contextmanager
def _open_dir(path: Path | str, dir_fd: int | None = None) -> Iterator[int]:
    try:
        fd = os.open(path, _RD_DIR, dir_fd=dir_fd)
    except OSError as exc:
        raise ImageError(f"cannot read directory {str(path)!r}: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _names(fd: int) -> list[str]:
    return sorted(os.listdir(fd))


def _xattr_names(dir_fd: int, name: str) -> list[str]:
    try:
        return os.listxattr(f"/proc/self/fd/{dir_fd}/{name}", follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return []
        raise


def _getxattr(dir_fd: int, name: str, key: str) -> bytes | None:
    try:
        return os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", key, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return None
        raise


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _Walker:
    def __init__(self, writer: TarWriter, options: DiffOptions) -> None:
        self.w = writer
        self.options = options
        self.links: dict[tuple[int, int], str] = {}  # first path written of each inode
        self.written_dirs: set[tuple[str, ...]] = set()
        # Directories on the current path of the diff walk not written yet.
        self.held: list[tuple[tuple[str, ...], int, os.stat_result]] = []

    # -- the three walks ----------------------------------------------------

    def upper(self, fd: int, parts: tuple[str, ...]) -> None:
        names = _names(fd)
        if self._is_opaque(fd, names, parts):
            self.marker(parts, OPAQUE_MARKER, os.fstat(fd))
        for name in names:
            if name == OPAQUE_MARKER:
                continue  # fuse-overlayfs's marker file, written above
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            path = (*parts, name)
            if name.startswith(WHITEOUT_PREFIX):
                # fuse-overlayfs writes whiteouts it cannot mknod as .wh. files.
                self.marker(parts, name, st)
            elif _is_whiteout(st) or (
                stat.S_ISREG(st.st_mode)
                and st.st_size == 0
                and _getxattr(fd, name, _XATTR_WHITEOUT) is not None
            ):
                self.marker(parts, WHITEOUT_PREFIX + name, st)
            elif stat.S_ISDIR(st.st_mode):
                self.entry(fd, path, st)
                with _open_dir(name, fd) as child:
                    self.upper(child, path)
            else:
                self.entry(fd, path, st)

    def _is_opaque(self, fd: int, names: list[str], parts: tuple[str, ...]) -> bool:
        for key in _xattr_names(fd, "."):
            if key in _UNSUPPORTED_OVERLAY:
                raise ImageError(
                    f"cannot write a layer from {'/'.join(parts) or '/'!r}: it carries "
                    f"the overlay xattr {key}, which this layer format cannot express",
                    hint="mount the overlay with userxattr (which turns redirect_dir off)",
                )
        return (
            _getxattr(fd, ".", OPAQUE_XATTR) == b"y"
            or _getxattr(fd, ".", _FUSE_OPAQUE_XATTR) == b"y"
            or OPAQUE_MARKER in names
        )

    def diff(self, lower: int, new: int, parts: tuple[str, ...]) -> None:
        new_names = _names(new)
        lower_names = set(os.listdir(lower))
        for name in sorted(lower_names.difference(new_names)):
            self.marker(parts, WHITEOUT_PREFIX + name, os.fstat(new))
        for name in new_names:
            st = os.stat(name, dir_fd=new, follow_symlinks=False)
            path = (*parts, name)
            old = None
            if name in lower_names:
                old = os.stat(name, dir_fd=lower, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if old is None or not stat.S_ISDIR(old.st_mode):
                    self.entry(new, path, st)
                    with _open_dir(name, new) as child:
                        self.tree(child, path)
                    continue
                self.held.append((path, new, st))
                if not self._same(lower, new, name, old, st):
                    self.parents()
                with _open_dir(name, new) as child, _open_dir(name, lower) as old_child:
                    self.diff(old_child, child, path)
                self.held.pop()
            elif old is None or not self._same(lower, new, name, old, st):
                self.entry(new, path, st)

    def _same(self, lower: int, new: int, name: str, a: os.stat_result, b: os.stat_result) -> bool:
        """Unchanged as the copy driver sees it: type, mode, owner, size, mtime, xattrs, target."""
        if (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) != (
            b.st_mode,
            b.st_uid,
            b.st_gid,
            b.st_mtime_ns,
        ):
            return False
        if stat.S_ISREG(a.st_mode) and a.st_size != b.st_size:
            return False
        if stat.S_ISLNK(a.st_mode) and os.readlink(name, dir_fd=lower) != os.readlink(
            name, dir_fd=new
        ):
            return False
        if (stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode)) and a.st_rdev != b.st_rdev:
            return False
        return not self.options.xattrs or self._xattrs(lower, name) == self._xattrs(new, name)

    def tree(self, fd: int, parts: tuple[str, ...]) -> None:
        for name in _names(fd):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            path = (*parts, name)
            self.entry(fd, path, st)
            if stat.S_ISDIR(st.st_mode):
                with _open_dir(name, fd) as child:
                    self.tree(child, path)

    # -- entries ------------------------------------------------------------

    def marker(self, parts: tuple[str, ...], name: str, st: os.stat_result) -> None:
        """A whiteout or opaque marker, an empty file named ``name`` in directory ``parts``."""
        self.parents()
        self.w.add(
            TarEntry(
                "/".join((*parts, name)),
                _REG,
                0o644,
                *self.owner(st),
                mtime=self.mtime(st),
            )
        )

    def parents(self) -> None:
        """Write the directories on the current path that the diff walk held back.

        The diff walk does not write an unchanged directory unless something below
        it changed; then it must, or unpack would give it default metadata that
        would shadow the lower layer's.
        """
        for parts, parent_fd, st in self.held:
            if parts not in self.written_dirs:
                self._write(parent_fd, parts, st)

    def entry(self, dir_fd: int, parts: tuple[str, ...], st: os.stat_result) -> None:
        self.parents()
        self._write(dir_fd, parts, st)

    def _write(self, dir_fd: int, parts: tuple[str, ...], st: os.stat_result) -> None:
        name = parts[-1]
        mode = st.st_mode
        path = "/".join(parts)
        if stat.S_ISSOCK(mode):
            return  # as Docker and Podman do: a socket means nothing in an image
        uid, gid = self.owner(st)
        xattrs = self._xattrs(dir_fd, name) if self.options.xattrs else ()
        perm, size, link, major, minor = stat.S_IMODE(mode), 0, "", 0, 0
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                self.w.add(TarEntry(path, _LNK, perm, uid, gid, self.mtime(st), linkname=first))
                return
            self.links[key] = path
        if stat.S_ISREG(mode):
            kind, size = _REG, st.st_size
        elif stat.S_ISDIR(mode):
            kind = _DIR
            self.written_dirs.add(parts)
        elif stat.S_ISLNK(mode):
            kind, perm, link = _SYM, 0o777, os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISFIFO(mode):
            kind = _FIFO
        else:
            kind = _CHR if stat.S_ISCHR(mode) else _BLK
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        entry = TarEntry(
            path, kind, perm, uid, gid, self.mtime(st), size, link, major, minor, xattrs
        )
        if kind != _REG or not size:
            self.w.add(entry)
            return
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            self.w.add(entry, fd)
        finally:
            os.close(fd)

    def owner(self, st: os.stat_result) -> tuple[int, int]:
        return self.options.owner or (st.st_uid, st.st_gid)

    def mtime(self, st: os.stat_result) -> int:
        clamp = self.options.mtime_clamp
        seconds = int(st.st_mtime)
        return seconds if clamp is None else min(seconds, clamp)

    def _xattrs(self, dir_fd: int, name: str) -> tuple[tuple[str, bytes], ...]:
        out = []
        for key in sorted(_xattr_names(dir_fd, name)):
            if key.startswith(_SKIPPED_XATTRS):
                continue
            value = _getxattr(dir_fd, name, key)
            if value is not None:
                out.append((key, value))
        return tuple(out)


# -- compressing and storing -----------------------------------------------


@attrs.frozen
class LayerBlob:
    """A layer written to a temp file: its blob digest, size, diff ID and media type."""

    path: Path
    digest: str
    size: int
    diff_id: str
    compression: Compression
    entries: int = 0

    def media_type(self, docker: bool = False) -> str:
        if docker:
            if self.compression != "gzip":
                raise ImageError(
                    "cannot write a Docker schema 2 image with "
                    f"{self.compression or 'uncompressed'} layers",
                    hint="use the OCI format or gzip compression",
                )
            return mt.DOCKER_LAYER_GZIP
        return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}[
            self.compression
        ]


class LayerSink:
    """Receives a tar stream; hashes it, compresses it, hashes and writes the result.

    Writes go to a new file in ``tmp_dir``; :meth:`finish` returns a :class:`LayerBlob`
    for it, :meth:`abort` removes it.
    """

    def __init__(self, tmp_dir: Path, compression: Compression = "gzip") -> None:
        self.compression = compression
        self._tar_hash = hashlib.sha256()
        self._blob_hash = hashlib.sha256()
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._compress: Callable[[bytes], bytes]
        self._flush: Callable[[], bytes]
        fd, name = tempfile.mkstemp(prefix="layer-", suffix=".blob", dir=tmp_dir)
        self._fd = fd
        self.path = Path(name)
        if compression == "gzip":
            self._z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            self._compress, self._flush = self._z.compress, self._z.flush
        elif compression == "zstd":
            import zstandard  # only zstd layers pay for the import

            self._zc = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
            self._compress, self._flush = self._zc.compress, self._zc.flush
        elif compression == "":
            self._compress, self._flush = bytes, lambda: b""
        else:
            raise ImageError(f"unknown layer compression {compression!r}: use gzip, zstd or none")

    def write(self, data: bytes, /) -> int:
        # Small writes (tar headers) are batched: hashlib and zlib release the GIL
        # and run fastest on large buffers, in the worker thread while the walk goes on.
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _CHUNK:
            self._push()
        return len(data)

    def _push(self) -> None:
        if self._error is not None:
            raise self._error
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="layer-compress", daemon=True)
            self._worker.start()
        self._queue.put(b"".join(self._pending))
        self._pending.clear()
        self._pending_size = 0

    def _work(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                if self._error is None:
                    self._tar_hash.update(data)
                    self._emit(self._compress(data))
            self._emit(self._flush())
        except BaseException as exc:  # handed to the writing thread
            self._error = exc
            while self._queue.get() is not None:  # keep the producer unblocked
                pass

    def _emit(self, out: bytes) -> None:
        if not out:
            return
        self._blob_hash.update(out)
        self._size += len(out)
        view = memoryview(out)
        while view:
            view = view[os.write(self._fd, view) :]

    def _stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def finish(self, entries: int = 0) -> LayerBlob:
        self._push()
        self._stop()
        if self._error is not None:
            raise self._error
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return LayerBlob(
            self.path,
            "sha256:" + self._blob_hash.hexdigest(),
            self._size,
            "sha256:" + self._tar_hash.hexdigest(),
            self.compression,
            entries,
        )

    def abort(self) -> None:
        self._stop()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


def publish_blob(store: Store, path: Path, digest: str) -> None:
    """Move the verified temp file ``path`` (in the store's tmp dir) to its blob path.

    The caller holds ``store.session()`` from before the temp file was made, so gc
    cannot remove it meanwhile.
    """
    final = store.blob_path(digest)
    os.chmod(path, 0o444)
    # Another process may have stored the same blob: the rename replaces identical
    # content, so one copy remains either way.
    os.rename(path, final)
    fsync_dir(final.parent)


def store_layer(
    store: Store,
    source: TreeSource,
    *,
    compression: Compression = "gzip",
    options: DiffOptions = DiffOptions(),
) -> LayerBlob:
    """Write ``source`` as a layer blob into ``store``; the returned path is the blob's.

    Call inside ``store.session()`` and record an image using the blob before the
    session ends, or the next gc removes it.
    """
    sink = LayerSink(store.root / "tmp", compression)
    try:
        entries = write_layer(source, sink, options)
        blob = sink.finish(entries)
        publish_blob(store, blob.path, blob.digest)
    except BaseException:
        sink.abort()
        raise
    return attrs.evolve(blob, path=store.blob_path(blob.digest))
