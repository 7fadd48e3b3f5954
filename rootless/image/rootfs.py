"""A container's root filesystem from an image's layers: overlay, fuse-overlayfs or copy.

``plan_overlay`` and ``plan_fuse_overlayfs`` are pure: they return what to mount
(or run) and leave doing it to the runtime, inside the user namespace.
``materialise`` is the copy driver: it applies layers, whiteouts and opaque
directories onto a plain directory, for systems where neither overlay works.
``detect_driver`` picks the first driver whose probe succeeds; probes are passed
in because mounting needs the user namespace the runtime provides.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from rootless._record import Record
from rootless.errors import ImageError
from rootless.image._fsops import DirTree, NotADir, Parts
from rootless.image.overlayfmt import FORBIDDEN_XATTRS, OPAQUE_XATTR, escape_path

Driver = Literal["overlay", "fuse-overlayfs", "copy"]
_PAGE = 4096  # mount(2) copies at most one page of options


class OverlayPlan(Record):
    """``mount -t overlay overlay -o OPTIONS TARGET``."""

    source: str
    fstype: str
    options: str
    target: Path


def _overlay_options(
    lower_layer_dirs: Sequence[Path], upper: Path, work: Path, extra: Sequence[str]
) -> str:
    if not lower_layer_dirs:
        raise ImageError("cannot plan an overlay mount: the image has no layers")
    # Images list layers base first; overlayfs wants the topmost lower first.
    lowers = ":".join(escape_path(p) for p in reversed(lower_layer_dirs))
    parts = [f"lowerdir={lowers}", f"upperdir={escape_path(upper)}", f"workdir={escape_path(work)}"]
    options = ",".join([*parts, *extra])
    if len(options) >= _PAGE:
        raise ImageError(
            f"cannot mount an overlay of {len(lower_layer_dirs)} layers: the options are "
            f"{len(options)} bytes, over the kernel's {_PAGE - 1}",
            hint="use a shorter storage path (ROOTLESS_DATA_DIR) or squash the image",
        )
    return options


def plan_overlay(
    lower_layer_dirs: Sequence[Path],
    upper: Path,
    work: Path,
    target: Path,
    *,
    userxattr: bool = True,
) -> OverlayPlan:
    """Kernel overlayfs: layers in image order (base first), the container's upper and work.

    ``userxattr`` makes overlayfs read ``user.overlay.*`` xattrs (needed, and only
    allowed, inside a user namespace); whiteouts are 0/0 character devices either way.
    """
    extra = ["userxattr"] if userxattr else []
    return OverlayPlan(
        "overlay", "overlay", _overlay_options(lower_layer_dirs, upper, work, extra), target
    )


def plan_fuse_overlayfs(
    lower_layer_dirs: Sequence[Path],
    upper: Path,
    work: Path,
    target: Path,
    *,
    binary: str = "fuse-overlayfs",
) -> list[str]:
    """The fuse-overlayfs command line (run inside the user and mount namespaces)."""
    return [binary, "-o", _overlay_options(lower_layer_dirs, upper, work, []), str(target)]


# -- the copy driver -------------------------------------------------------


class CopyLayer(Record):
    diff: Path  # the layer's diff directory
    opaque_dirs: tuple[str, ...] = ()  # from LayerInfo; "" is the layer root


def materialise(layers: Sequence[CopyLayer], target: Path) -> None:
    """Apply ``layers`` (base first) onto the empty directory ``target``.

    Whiteouts remove what lower layers put there; an opaque directory drops the
    lower layers' contents of that directory. Entries of a later layer replace
    earlier ones, and a directory replaces a symlink rather than writing through
    it. Owners are copied as seen: run inside the user namespace to keep them.
    """
    with DirTree(target) as tree:
        for layer in layers:
            _Copier(tree, set(layer.opaque_dirs)).layer(layer.diff)


_RD_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Copier:
    def __init__(self, tree: DirTree, opaque: set[str]) -> None:
        self.tree = tree
        self.opaque = opaque
        self.links: dict[tuple[int, int], Parts] = {}  # first copy of each hardlinked inode
        self.dirs: list[tuple[Parts, os.stat_result]] = []

    def layer(self, diff: Path) -> None:
        if "" in self.opaque:
            for name in _listdir(self.tree.fd(())):
                self.tree.remove((name,))
        src = os.open(diff, _RD_DIR)
        try:
            self.walk(src, ())
            self.dirs.append(((), os.fstat(src)))
        finally:
            os.close(src)
        # Deepest first so a read-only parent does not stop its children.
        for parts, st in sorted(self.dirs, key=lambda d: len(d[0]), reverse=True):
            fd = os.open(".", _RD_DIR, dir_fd=self.tree.fd(parts))
            try:
                _copy_meta(str(diff.joinpath(*parts)), fd, st)
            finally:
                os.close(fd)

    def walk(self, src_dir: int, parts: Parts) -> None:
        with os.scandir(src_dir) as entries:
            for entry in entries:
                self.entry(src_dir, (*parts, entry.name), entry.stat(follow_symlinks=False))

    def entry(self, src_dir: int, parts: Parts, st: os.stat_result) -> None:
        name = parts[-1]
        try:
            dst_dir = self.tree.fd(parts[:-1])
        except NotADir as exc:  # parents are made real directories first; refuse anyway
            raise ImageError(
                f"cannot copy layer entry {'/'.join(parts)!r}: {exc.path} is {exc.kind}"
            ) from None
        mode = st.st_mode
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            self.tree.remove(parts)  # a whiteout
            return
        if stat.S_ISDIR(mode):
            self.directory(src_dir, dst_dir, parts, st)
            return
        self.tree.remove(parts)
        key = (st.st_dev, st.st_ino)
        first = self.links.get(key) if st.st_nlink > 1 else None
        if first is not None:
            src_fd = self.tree.fd(first[:-1])
            os.link(first[-1], name, src_dir_fd=src_fd, dst_dir_fd=dst_dir, follow_symlinks=False)
            return
        if stat.S_ISREG(mode):
            self.regular(src_dir, dst_dir, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
            _owner_and_time(dst_dir, name, st)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=dst_dir)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dir)  # just made by us: no symlink
            _owner_and_time(dst_dir, name, st)
        else:
            raise ImageError(f"cannot copy layer entry {'/'.join(parts)!r}: unsupported file type")
        if st.st_nlink > 1:
            self.links[key] = parts

    def directory(self, src_dir: int, dst_dir: int, parts: Parts, st: os.stat_result) -> None:
        name = parts[-1]
        if "/".join(parts) in self.opaque:
            self.tree.remove(parts)
        try:
            existing = os.stat(name, dir_fd=dst_dir, follow_symlinks=False)
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=dst_dir)
        else:
            if stat.S_ISDIR(existing.st_mode):
                os.chmod(name, 0o700, dir_fd=dst_dir)  # writable until its metadata is copied
            else:
                self.tree.remove(parts)  # a directory replaces a symlink, never follows it
                os.mkdir(name, 0o700, dir_fd=dst_dir)
        self.dirs.append((parts, st))
        child = os.open(name, _RD_DIR, dir_fd=src_dir)
        try:
            self.walk(child, parts)
        finally:
            os.close(child)

    def regular(self, src_dir: int, dst_dir: int, name: str, st: os.stat_result) -> None:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            dst = os.open(name, flags, 0o600, dir_fd=dst_dir)
            try:
                _copy_data(src, dst, st.st_size)
                _copy_meta(src, dst, st)
            finally:
                os.close(dst)
        finally:
            os.close(src)


def _listdir(path_fd: int) -> list[str]:
    fd = os.open(".", _RD_DIR, dir_fd=path_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _owner_and_time(dst_dir: int, name: str, st: os.stat_result) -> None:
    with contextlib.suppress(PermissionError):  # outside the user namespace: the user owns it
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
    os.utime(name, ns=(st.st_mtime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)


def _copy_data(src: int, dst: int, size: int) -> None:
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src, dst, size - done)
            if n == 0:
                break
            done += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        with os.fdopen(os.dup(src), "rb") as r, os.fdopen(os.dup(dst), "wb") as w:
            r.seek(done)
            w.seek(done)
            shutil.copyfileobj(r, w, 1 << 20)


def _copy_meta(src: int | str, dst: int, st: os.stat_result) -> None:
    """Owner, mode, xattrs and mtime of ``src`` (an fd, or a path in a layer) onto ``dst``."""
    with contextlib.suppress(PermissionError):  # outside the user namespace: the user owns it
        os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    nofollow = isinstance(src, str)  # an fd cannot be combined with follow_symlinks
    for key in os.listxattr(src, follow_symlinks=not nofollow):
        # Overlay metadata (the opaque marker included) means nothing in a flat copy.
        if key.startswith(FORBIDDEN_XATTRS):
            continue
        try:
            os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=not nofollow))
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES, errno.EINVAL):
                raise
    os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns))


# -- choosing a driver -----------------------------------------------------


class DriverChoice(Record):
    driver: Driver
    reasons: tuple[str, ...]  # why each better driver was not chosen


Probe = Callable[[], None]  # returns if the driver works, raises RootlessError/OSError if not


def detect_driver(
    probes: Sequence[tuple[Driver, Probe]], *, which: Callable[[str], str | None] = shutil.which
) -> DriverChoice:
    """The first driver in ``probes`` whose probe succeeds, else ``copy``.

    The runtime passes probes that mount in a throw-away user namespace, e.g. an
    overlay of :func:`probe_layers` checked with :func:`check_probe_view`.
    """
    reasons = []
    for driver, probe in probes:
        if driver == "fuse-overlayfs" and which("fuse-overlayfs") is None:
            reasons.append("fuse-overlayfs: not installed")
            continue
        try:
            probe()
        except Exception as exc:  # any failure of a probe means: fall back
            reasons.append(f"{driver}: {exc}")
            continue
        return DriverChoice(driver, tuple(reasons))
    return DriverChoice("copy", tuple(reasons))


def probe_layers(root: Path) -> tuple[list[Path], Path, Path, Path]:
    """Two small layers with a whiteout and an opaque directory, as unpack makes them.

    Returns (layers base first, upper, work, target) under ``root``.
    """
    lower, top = root / "l0", root / "l1"
    for d in (lower / "opq", top / "opq", root / "upper", root / "work", root / "merged"):
        d.mkdir(parents=True)
    for f in (lower / "opq" / "hidden", lower / "kept", lower / "gone", top / "opq" / "new"):
        f.write_bytes(b"")
    os.mknod(top / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    os.setxattr(top / "opq", OPAQUE_XATTR, b"y")
    return [lower, top], root / "upper", root / "work", root / "merged"


def check_probe_view(merged: Path) -> None:
    """Raise unless ``merged`` shows the :func:`probe_layers` tree with whiteouts applied."""
    seen = {p.relative_to(merged).as_posix() for p in merged.rglob("*")}
    want = {"opq", "opq/new", "kept"}
    if seen != want:
        raise ImageError(
            f"overlay probe: merged view shows {sorted(seen)}, expected {sorted(want)}"
        )
