"""Unpack one layer tar stream into an empty directory, safely.

The layer directory ends up in the form kernel overlayfs expects from a lower
layer mounted with ``userxattr`` inside a user namespace:

- a whiteout ``dir/.wh.NAME`` becomes a character device 0/0 at ``dir/NAME``
  (any user may create that device since Linux 5.8);
- an opaque marker ``dir/.wh..wh..opq`` becomes the xattr ``user.overlay.opaque=y``
  on ``dir`` and is also listed in :class:`LayerInfo`, so the copy driver can
  apply it without reading xattrs.

Safety: every entry is created relative to an fd of its parent directory, opened
one component at a time with ``O_NOFOLLOW`` (see ``_fsops``), so no entry can be
written through a symlink; names that are absolute or contain ``..`` are refused,
as are hardlinks to anything outside the layer, device nodes, and streams larger
than the configured caps. Overlay metadata xattrs in the archive are dropped so a
layer cannot forge whiteouts, redirects or opaque markers through them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from rootless._record import Record
from rootless.errors import ImageError
from rootless.image import _tar
from rootless.image._decompress import TarStream
from rootless.image._fsops import DirTree, NotADir, Parts, kind_of
from rootless.image._tar import Header, TarFormatError, TarReader
from rootless.image.overlayfmt import (
    FORBIDDEN_XATTRS,
    OPAQUE_MARKER,
    OPAQUE_XATTR,
    WHITEOUT_PREFIX,
)

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnpackOptions(Record):
    """Policy for one unpack.

    ``preserve_owner``: lchown every entry to the uid/gid in the archive. Only
    possible inside the user namespace, where those ids map to the user's
    subordinate range. Without it everything belongs to the user running the unpack.
    """

    preserve_owner: bool = False
    max_bytes: int = 32 << 30  # decompressed tar stream and file contents, each
    max_entries: int = 1_000_000


class LayerInfo(Record):
    """What an unpack produced; stored as ``layer.json`` beside the layer's ``diff``."""

    diff_id: str  # sha256 of the uncompressed tar stream
    compression: str  # "gzip", "zstd" or "" (detected, not declared)
    size: int  # bytes of regular file contents
    entries: int
    opaque_dirs: tuple[str, ...] = ()  # "" is the layer root

    def to_json(self) -> bytes:
        return json.dumps(self._asdict(), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LayerInfo:
        raw = json.loads(data)
        return cls(
            raw["diff_id"],
            raw["compression"],
            raw["size"],
            raw["entries"],
            tuple(raw["opaque_dirs"]),
        )


class _DirMeta:
    """Directory metadata applied after the directory's children are written."""

    __slots__ = ("gid", "mode", "mtime_ns", "uid", "xattrs")

    def __init__(
        self,
        mode: int = 0o755,
        mtime_ns: int = 0,
        uid: int = 0,
        gid: int = 0,
        xattrs: dict[str, bytes] | None = None,
    ) -> None:
        self.mode = mode
        self.mtime_ns = mtime_ns
        self.uid = uid
        self.gid = gid
        self.xattrs = xattrs or {}


DEFAULT_OPTIONS = UnpackOptions()


def unpack_layer(
    source: BinaryIO,
    dest: Path,
    options: UnpackOptions = DEFAULT_OPTIONS,
    *,
    what: str = "",
) -> LayerInfo:
    """Unpack the layer read from ``source`` (gzip, zstd or plain tar) into empty ``dest``.

    ``what`` names the layer in error messages (its blob digest). On error the
    caller removes ``dest``: an unpack is never resumed.
    """
    return _Unpacker(source, dest, options, what or "stream").run()


class _Unpacker:
    def __init__(self, source: BinaryIO, dest: Path, options: UnpackOptions, what: str) -> None:
        self.stream = TarStream(source, limit=options.max_bytes, what=what)
        self.options = options
        self.what = what
        self.dirs: dict[Parts, _DirMeta] = {}
        self.opaque: list[str] = []
        self.size = 0
        self.entries = 0
        self.tree = DirTree(dest, on_mkdir=self._implicit_dir)

    def refuse(self, name: str, why: str) -> ImageError:
        return ImageError(f"refusing layer {self.what}: entry {name!r} {why}")

    def _implicit_dir(self, parts: Parts) -> None:
        self.dirs.setdefault(parts, _DirMeta())

    def run(self) -> LayerInfo:
        with self.tree, contextlib.closing(self.stream):
            self.reader = TarReader(self.stream)
            try:
                for header in self.reader:
                    self.count()
                    self.entry(header)
            except TarFormatError as exc:
                raise ImageError(
                    f"cannot read layer {self.what}: bad tar archive ({exc.message})"
                ) from None
            diff_id = self.stream.drain()
            self.finish_dirs()
        return LayerInfo(
            diff_id, self.stream.compression, self.size, self.entries, tuple(sorted(self.opaque))
        )

    def count(self) -> None:
        self.entries += 1
        if self.entries > self.options.max_entries:
            raise ImageError(
                f"refusing layer {self.what}: more than {self.options.max_entries} entries",
                hint="raise the unpack entry limit if the image is trusted",
            )

    def split(self, name: str) -> Parts:
        if name.startswith("/"):
            raise self.refuse(name, "is an absolute path")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(name, "leaves the layer directory ('..')")
        if any("\0" in p for p in parts):
            raise self.refuse(name, "has a NUL byte in its name")
        return parts

    def parent_fd(self, name: str, parts: Parts) -> int:
        try:
            return self.tree.fd(parts[:-1])
        except NotADir as exc:
            raise self.refuse(
                name, f"would be written through {exc.path!r}, which is {exc.kind}"
            ) from None

    def entry(self, m: Header) -> None:
        name = m.name
        parts = self.split(name)
        if not parts:
            if m.type != _tar.DIRECTORY:
                raise self.refuse(name, "is the layer root but not a directory")
            self.dirs[()] = self.dir_meta(m)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(name, parts)
            return
        parent = self.parent_fd(name, parts)
        try:
            kind = m.type
            if kind == _tar.REGULAR:
                self.regular(m, parent, parts)
            elif kind == _tar.DIRECTORY:
                self.directory(m, parent, parts)
            elif kind == _tar.SYMLINK:
                self.symlink(m, parent, parts)
            elif kind == _tar.HARDLINK:
                self.hardlink(m, parent, parts)
            elif kind == _tar.FIFO:
                self.fifo(m, parent, parts)
            elif kind in (_tar.CHAR, _tar.BLOCKDEV):
                raise self.refuse(
                    name,
                    "is a device node; layers unpacked without privilege cannot hold devices",
                )
            else:
                raise self.refuse(name, f"has an unsupported tar type {m.type!r}")
        except ImageError:
            raise
        except OSError as exc:
            raise ImageError(
                f"cannot unpack layer {self.what}: entry {name!r}: {exc.strerror}"
            ) from None

    def replace(self, parts: Parts) -> None:
        """Make room for a new entry at ``parts``: a later tar entry replaces an earlier one."""
        self.tree.remove(parts)
        self.dirs.pop(parts, None)

    # -- entry types -------------------------------------------------------

    def regular(self, m: Header, parent: int, parts: Parts) -> None:
        self.size += m.size
        if self.size > self.options.max_bytes:
            raise ImageError(
                f"refusing layer {self.what}: it unpacks to more than "
                f"{self.options.max_bytes} bytes",
                hint="raise the unpack size limit if the image is trusted",
            )
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
        except FileExistsError:
            self.replace(parts)
            fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            if m.size:
                self.reader.copy_to(fd, m.size)
            if self.options.preserve_owner:
                self.chown(m.name, m.uid, m.gid, lambda: os.fchown(fd, m.uid, m.gid))
            os.fchmod(fd, m.mode)
            if m.xattrs:
                self.set_xattrs(fd, m.name, self.xattrs(m))
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
        finally:
            os.close(fd)

    def directory(self, m: Header, parent: int, parts: Parts) -> None:
        try:
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self.replace(parts)
                os.mkdir(parts[-1], 0o700, dir_fd=parent)
        self.dirs[parts] = self.dir_meta(m)

    def symlink(self, m: Header, parent: int, parts: Parts) -> None:
        # The target is stored as given and never followed here.
        try:
            os.symlink(m.linkname, parts[-1], dir_fd=parent)
        except FileExistsError:
            self.replace(parts)
            os.symlink(m.linkname, parts[-1], dir_fd=parent)
        self.link_meta(m, parent, parts)

    def hardlink(self, m: Header, parent: int, parts: Parts) -> None:
        try:
            target = self.split(m.linkname)
        except ImageError:
            raise self.refuse(
                m.name, f"is a hardlink to {m.linkname!r}, outside the layer directory"
            ) from None
        if not target:
            raise self.refuse(m.name, "is a hardlink to the layer root")
        try:
            tparent = self.tree.fd(target[:-1], create=False)
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except (FileNotFoundError, NotADir):
            raise self.refuse(
                m.name, f"is a hardlink to {m.linkname!r}, which is not an earlier entry"
            ) from None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            raise self.refuse(m.name, f"is a hardlink to {m.linkname!r}, {kind_of(st.st_mode)}")
        try:
            os.link(
                target[-1], parts[-1], src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False
            )
        except FileExistsError:
            if target == parts:
                return
            self.replace(parts)
            os.link(
                target[-1], parts[-1], src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False
            )

    def fifo(self, m: Header, parent: int, parts: Parts) -> None:
        try:
            os.mkfifo(parts[-1], 0o600, dir_fd=parent)
        except FileExistsError:
            self.replace(parts)
            os.mkfifo(parts[-1], 0o600, dir_fd=parent)
        # fchmodat cannot refuse symlinks; the name was created just above by us.
        os.chmod(parts[-1], m.mode, dir_fd=parent)
        self.link_meta(m, parent, parts)

    def whiteout(self, name: str, parts: Parts) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            fd = self.open_dir(name, parts[:-1])
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            except OSError as exc:
                raise ImageError(
                    f"cannot unpack layer {self.what}: cannot mark {'/'.join(parts[:-1])!r} "
                    f"opaque: {exc.strerror}",
                    hint="the storage directory must be on a file system with user xattrs",
                ) from None
            finally:
                os.close(fd)
            self.opaque.append("/".join(parts[:-1]))
            return
        if base.startswith(WHITEOUT_PREFIX * 2):
            return  # aufs bookkeeping (.wh..wh.plnk, ...), meaningless here
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise self.refuse(name, "is a whiteout of nothing")
        parent = self.parent_fd(name, parts)
        target = (*parts[:-1], hidden)
        self.replace(target)
        try:
            os.mknod(hidden, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
        except OSError as exc:
            raise ImageError(
                f"cannot unpack layer {self.what}: cannot create whiteout for "
                f"{'/'.join(target)!r}: {exc.strerror}",
                hint="whiteouts need Linux 5.8 or later",
            ) from None

    # -- metadata ----------------------------------------------------------

    def open_dir(self, name: str, parts: Parts) -> int:
        """A readable fd of directory ``parts`` (created if missing)."""
        try:
            path_fd = self.tree.fd(parts)
        except NotADir as exc:
            raise self.refuse(
                name, f"would be written through {exc.path!r}, which is {exc.kind}"
            ) from None
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)

    def dir_meta(self, m: Header) -> _DirMeta:
        return _DirMeta(m.mode, m.mtime_ns, m.uid, m.gid, self.xattrs(m))

    def link_meta(self, m: Header, parent: int, parts: Parts) -> None:
        if self.options.preserve_owner:
            self.chown(
                m.name,
                m.uid,
                m.gid,
                lambda: os.chown(parts[-1], m.uid, m.gid, dir_fd=parent, follow_symlinks=False),
            )
        os.utime(parts[-1], ns=(m.mtime_ns, m.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def chown(self, name: str, uid: int, gid: int, do: Callable[[], None]) -> None:
        try:
            do()
        except OSError as exc:
            raise ImageError(
                f"cannot unpack layer {self.what}: cannot give entry {name!r} "
                f"owner {uid}:{gid}: {exc.strerror}",
                hint="owners are kept only inside the user namespace, for ids its map covers",
            ) from None

    def xattrs(self, m: Header) -> dict[str, bytes]:
        return {k: v for k, v in m.xattrs.items() if not k.startswith(FORBIDDEN_XATTRS)}

    def set_xattrs(self, fd: int, name: str, xattrs: dict[str, bytes]) -> None:
        for key, value in xattrs.items():
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                # Where the kernel does not permit it (security.* outside the user
                # namespace, a file system without xattrs) the attribute is dropped.
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES, errno.EINVAL):
                    raise

    def finish_dirs(self) -> None:
        """Apply directory modes, owners and times last, deepest first.

        Directories stay 0700 while entries are written into them (a 0555 directory
        would refuse its own children) and their times would move with each child.
        """
        for parts in sorted(self.dirs, key=len, reverse=True):
            meta = self.dirs[parts]
            try:
                path_fd = self.tree.fd(parts, create=False)
            except (FileNotFoundError, NotADir):
                continue  # replaced by a later entry
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)
            try:
                name = "/".join(parts) or "."
                if self.options.preserve_owner:
                    uid, gid = meta.uid, meta.gid
                    self.chown(name, uid, gid, lambda: os.fchown(fd, uid, gid))  # noqa: B023
                os.fchmod(fd, meta.mode)
                self.set_xattrs(fd, name, meta.xattrs)
                os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
            finally:
                os.close(fd)
