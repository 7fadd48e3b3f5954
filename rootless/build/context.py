"""COPY and ADD sources: found inside a root (the context or a stage), hashed, copied.

A source is resolved with :func:`resolve_in_root`, so ``..`` and symlinks, absolute
or relative, never leave the root: ``COPY link /`` where ``link`` points outside
the context reads ``<context>/<target>`` or fails, never the host's file.
Entries below a copied directory are copied as they are (a symlink stays a
symlink). Paths the ignore file excludes do not exist for COPY; ``--exclude``
patterns leave out what they match, the same way, without making a named source
an error. ``--parents`` keeps each source's path below the root (or below a
``/./`` pivot in the pattern) under the destination.

Everything here works on paths with ``lstat``/``O_NOFOLLOW``: the destination
rootfs is the build's own overlay mount, which no container uses meanwhile.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import attrs

from rootless.build.cache import FileSums
from rootless.build.ignore import IgnoreMatcher
from rootless.errors import BuildError
from rootless.runtime.securejoin import resolve_in_root

_CHUNK = 1 << 20
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_GLOB = set("*?[")
# Magic numbers of the compressions ADD unpacks (besides a plain tar).
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@attrs.frozen
class SourceRoot:
    """Where sources are looked up: a directory, with the context's ignore rules."""

    path: Path
    matcher: IgnoreMatcher | None = None  # None: nothing is excluded (a stage's rootfs)
    what: str = "the build context"
    # COPY --exclude: matched against the path below the root and below the copied item.
    excludes: IgnoreMatcher | None = None


@attrs.frozen
class Item:
    """One resolved source: its host path, the name it is copied under, its context path."""

    path: str
    name: str
    rel: str  # relative to the source root, for the ignore rules
    is_dir: bool
    lexical: str = ""  # the path as named, below the root (symlinks not followed)


def _is_glob(pattern: str) -> bool:
    return bool(_GLOB.intersection(pattern))


def _rel(root: Path, host: str) -> str:
    rel = os.path.relpath(host, root)
    return "" if rel == "." else rel


def _ignored(src: SourceRoot, rel: str) -> bool:
    return src.matcher is not None and rel != "" and src.matcher.is_ignored(rel)


def _excluded(src: SourceRoot, rel: str, below: str = "") -> bool:
    ex = src.excludes
    if ex is None or rel == "":
        return False
    return ex.is_ignored(rel, below) if below else ex.is_ignored(rel)


def split_pivot(pattern: str) -> tuple[str, str]:
    """``--parents``: (the part of ``pattern`` whose path is not kept, the pattern to look
    up). ``a/./b/*.txt`` keeps ``b/...``: a ``.`` component after the first marks the
    pivot. Without one, the whole path is kept. Pure."""
    parts = pattern.split("/")
    for i in range(1, len(parts)):
        if parts[i] == "." and any(p not in ("", ".") for p in parts[:i]):
            prefix = posixpath.normpath("/" + "/".join(parts[:i])).lstrip("/")
            return prefix, "/".join(parts[:i] + parts[i + 1 :])
    return "", pattern


def _kept(prefix: str, path: str, pattern: str) -> str:
    """``path`` (lexical, below the root) relative to the pivot ``prefix``."""
    kept = posixpath.relpath(path or ".", prefix or ".")
    if kept == ".." or kept.startswith("../"):
        raise BuildError(f"invalid --parents source {pattern}: '..' climbs above the '/./' pivot")
    return "" if kept == "." else kept


def resolve_sources(
    src: SourceRoot, patterns: Sequence[str], *, parents: bool = False
) -> list[Item]:
    """The items ``patterns`` name in ``src``; a pattern that matches nothing is an error
    (one whose matches ``src.excludes`` all leave out is not). With ``parents``, an
    item's name is its path below the root (or the pattern's pivot), not its base name."""
    items: list[Item] = []
    for pattern in patterns:
        prefix, lookup = split_pivot(pattern) if parents else ("", pattern)
        found = _glob(src, lookup) if _is_glob(lookup) else _one(src, lookup)
        if not found:
            raise BuildError(
                f"no source files were specified: {pattern} is not in {src.what}"
                + (" (or the ignore file excludes it)" if src.matcher is not None else ""),
                hint="check the path; sources are relative to the context directory",
            )
        if parents:
            found = [attrs.evolve(i, name=_kept(prefix, i.lexical, pattern)) for i in found]
        items += [i for i in found if not _excluded(src, i.rel)]
    return items


def _one(src: SourceRoot, pattern: str) -> list[Item]:
    host = resolve_in_root(str(src.path), pattern)
    rel = _rel(src.path, host)
    if _ignored(src, rel):
        return []
    try:
        st = os.lstat(host)
    except OSError:
        return []
    name = posixpath.basename(rel) or posixpath.basename(pattern.rstrip("/")) or "."
    lexical = posixpath.normpath("/" + pattern).lstrip("/")
    return [Item(host, name, rel, stat.S_ISDIR(st.st_mode), lexical)]


def _glob(src: SourceRoot, pattern: str) -> list[Item]:
    wanted = [p for p in posixpath.normpath("/" + pattern).split("/") if p]
    found: list[Item] = []

    def walk(directory: str, parts: list[str], depth: int) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            if not fnmatch.fnmatchcase(name, wanted[depth]):
                continue
            rel = "/".join([*parts, name])
            if _ignored(src, rel):
                continue
            path = os.path.join(directory, name)
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
            if depth + 1 == len(wanted):
                found.append(Item(path, name, rel, is_dir, rel))
            elif is_dir:
                walk(path, [*parts, name], depth + 1)

    if wanted:
        walk(str(src.path), [], 0)
    return found


# -- walking and hashing ---------------------------------------------------------


def walk_item(src: SourceRoot, item: Item) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path below the item, host path, lstat) of the item and everything below it.

    The item itself comes first with the relative path ``""``; a top-level symlink
    was already resolved, so its target's contents are what is walked.
    """
    st = os.stat(item.path) if item.rel else os.lstat(item.path)
    yield "", item.path, st
    if stat.S_ISDIR(st.st_mode):
        yield from _walk_dir(src, item.path, item.rel, "")


def _walk_dir(
    src: SourceRoot, directory: str, rel_dir: str, below: str
) -> Iterator[tuple[str, str, os.stat_result]]:
    for name in sorted(os.listdir(directory)):
        rel = f"{rel_dir}/{name}" if rel_dir else name
        sub = f"{below}/{name}" if below else name
        if _ignored(src, rel) or _excluded(src, rel, sub):
            continue
        path = os.path.join(directory, name)
        st = os.lstat(path)
        yield sub, path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(src, path, rel, sub)


def digest_items(src: SourceRoot, items: Sequence[Item], sums: FileSums | None = None) -> str:
    """A hash of what COPY would write: names, types, modes, sizes, contents, link targets.

    Modification times are left out, as Docker does: touching a file without
    changing it keeps the cache. ``sums`` gives (and keeps) the content hash of
    files seen before, unchanged.
    """
    h = hashlib.sha256()
    for item in items:
        h.update(f"item {item.name} {item.is_dir}\n".encode())
        for sub, path, st in walk_item(src, item):
            kind = stat.S_IFMT(st.st_mode)
            h.update(f"{sub}\0{kind:o}\0{st.st_mode & 0o7777:o}\0{st.st_size}\0".encode())
            if stat.S_ISREG(st.st_mode):
                h.update(_file_digest(path, st, sums).encode())
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _file_digest(path: str, st: os.stat_result, sums: FileSums | None) -> str:
    known = None if sums is None else sums.get(st)
    if known is not None:
        return known
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
    finally:
        os.close(fd)
    digest = h.hexdigest()
    if sums is not None:
        sums.put(st, digest)
    return digest


# -- writing into the rootfs -------------------------------------------------------


@attrs.frozen
class Placement:
    """How COPY writes: owner of every entry, an optional mode for every entry."""

    owner: tuple[int, int] = (0, 0)
    mode: int | None = None


def make_dirs(root: str, path: str, placement: Placement) -> str:
    """``mkdir -p`` of container path ``path`` inside ``root``; the host path."""
    current = "/"
    for part in [p for p in path.split("/") if p and p != "."]:
        current = posixpath.join(current, part)
        host = resolve_in_root(root, current)
        try:
            st = os.stat(host)
        except FileNotFoundError:
            os.mkdir(host, 0o755)
            os.chown(host, *placement.owner, follow_symlinks=False)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise BuildError(f"cannot copy to {path}: {current} is not a directory")
    return resolve_in_root(root, path)


def is_dir_in_root(root: str, path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(resolve_in_root(root, path)).st_mode)
    except OSError:
        return False


def copy_items(
    src: SourceRoot,
    items: Sequence[Item],
    root: str,
    dest: str,
    placement: Placement,
    *,
    parents: bool = False,
) -> None:
    """Docker's COPY: a directory's contents go into ``dest``; files into ``dest/`` when it
    is a directory (it ends with ``/``, exists as one, or several sources are given),
    else to ``dest`` itself. ``dest`` is an absolute container path. With ``parents``,
    ``dest`` is a directory and each item goes to ``dest/<item.name>`` (its kept path);
    the directories on the way are made 0755 if missing."""
    to_dir = dest.endswith("/") or len(items) > 1 or is_dir_in_root(root, dest)
    for item in items:
        if parents:
            kept_dir, leaf = posixpath.split(item.name)
            if item.is_dir:
                target_dir, name = posixpath.join(dest, item.name), None
            else:
                target_dir, name = posixpath.join(dest, kept_dir), leaf
        elif item.is_dir:
            target_dir, name = dest, None
        elif to_dir:
            target_dir, name = dest, item.name
        else:
            target_dir, name = posixpath.dirname(dest.rstrip("/")) or "/", posixpath.basename(dest)
        parent = make_dirs(root, target_dir, placement)
        for sub, path, st in walk_item(src, item):
            if name is None and sub == "":
                _meta(parent, st, placement, dir_only=True)
                continue
            rel = "/".join(p for p in (name, sub) if p)
            host_parent, leaf = os.path.split(os.path.join(parent, rel))
            _write(host_parent, leaf, path, st, placement)


def _write(parent: str, name: str, source: str, st: os.stat_result, placement: Placement) -> None:
    target = os.path.join(parent, name)
    try:
        old = os.lstat(target)
    except FileNotFoundError:
        old = None
    if old is not None and not (stat.S_ISDIR(old.st_mode) and stat.S_ISDIR(st.st_mode)):
        if stat.S_ISDIR(old.st_mode):
            import shutil

            shutil.rmtree(target)
        else:
            os.unlink(target)
    if stat.S_ISDIR(st.st_mode):
        if old is None or not stat.S_ISDIR(old.st_mode):
            os.mkdir(target, 0o700)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        fd_in = os.open(source, _READ)
        try:
            _copy_fd(fd_in, target)
        finally:
            os.close(fd_in)
    else:
        return  # sockets, fifos and devices in a context are left out
    _meta(target, st, placement)


def _copy_fd(fd_in: int, target: str) -> None:
    fd_out = os.open(target, _NEW, 0o600)
    try:
        while True:
            try:
                n = os.copy_file_range(fd_in, fd_out, _CHUNK)
            except OSError:  # not supported between these file systems
                n = -1
            if n == 0:
                break
            if n < 0:
                while chunk := os.read(fd_in, _CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd_out, view) :]
                break
    finally:
        os.close(fd_out)


def _meta(path: str, st: os.stat_result, placement: Placement, *, dir_only: bool = False) -> None:
    if dir_only:
        return  # the destination directory itself keeps what it had
    os.chown(path, *placement.owner, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        mode = placement.mode if placement.mode is not None else st.st_mode & 0o7777
        os.chmod(path, mode)
    os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)


# -- ADD: archives -----------------------------------------------------------------


def is_archive(path: str) -> bool:
    """A tar, plain or compressed with gzip, bzip2 or xz (what ADD unpacks)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head.startswith(_ARCHIVE_MAGIC):
        try:
            with tarfile.open(path, "r:*") as tar:
                return tar.next() is not None
        except (tarfile.TarError, OSError, EOFError):
            return False
    return len(head) == 512 and head[257:262] == b"ustar"


def extract_archive(path: str, root: str, dest: str, placement: Placement) -> None:
    """Unpack the tar at ``path`` into directory ``dest`` of ``root``, never outside it.

    Members keep their owners and modes, as Docker's ADD does; ``..`` is refused
    and links are made as they are (a symlink is not followed while unpacking).
    """
    make_dirs(root, dest, placement)
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            _extract_one(tar, member, root, dest, path)


def _extract_one(
    tar: tarfile.TarFile, m: tarfile.TarInfo, root: str, dest: str, archive: str
) -> None:
    parts = [p for p in m.name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BuildError(f"cannot ADD {archive}: the entry {m.name!r} climbs out with '..'")
    if not parts:
        return
    owner = Placement((m.uid, m.gid))
    parent = make_dirs(root, posixpath.join(dest, *parts[:-1]), owner)
    target = os.path.join(parent, parts[-1])
    if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)):
        if os.path.isdir(target) and not os.path.islink(target):
            import shutil

            shutil.rmtree(target)
        else:
            os.unlink(target)
    if m.isdir():
        if not os.path.isdir(target):
            os.mkdir(target, 0o755)
    elif m.isreg():
        data = tar.extractfile(m)
        assert data is not None
        _write_stream(data, target)
    elif m.issym():
        os.symlink(m.linkname, target)
    elif m.islnk():
        link_parts = [p for p in m.linkname.split("/") if p not in ("", ".")]
        if ".." in link_parts:
            raise BuildError(f"cannot ADD {archive}: the link {m.name!r} climbs out with '..'")
        source = resolve_in_root(root, posixpath.join(dest, *link_parts))
        os.link(source, target, follow_symlinks=False)
        return
    else:
        return  # devices and fifos are not unpacked by a rootless build
    os.chown(target, m.uid, m.gid, follow_symlinks=False)
    if not m.issym():
        os.chmod(target, m.mode & 0o7777)
    os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def _write_stream(data: IO[bytes], target: str) -> None:
    fd = os.open(target, _NEW, 0o600)
    try:
        while chunk := data.read(_CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@contextlib.contextmanager
def context_from_tar(stream: IO[bytes], tmp_dir: Path) -> Iterator[Path]:
    """A context given as a tar on ``stream`` (``build -``), unpacked into ``tmp_dir``."""
    from rootless.image._fsops import remove_tree

    work = Path(tempfile.mkdtemp(prefix="context-", dir=tmp_dir))
    try:
        archive = work / "context.tar"
        with open(archive, "wb") as f:
            while chunk := stream.read(_CHUNK):
                f.write(chunk)
        (work / "dir").mkdir()
        try:
            extract_archive(str(archive), str(work / "dir"), "/", Placement())
        except (tarfile.TarError, EOFError) as e:
            raise BuildError(f"cannot read the context from stdin: not a tar ({e})") from None
        archive.unlink()
        yield work / "dir"
    finally:
        remove_tree(work)
