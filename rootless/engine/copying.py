"""``cp``: copy files between a container and the host, both ways, as a tar stream.

The container's side runs in a child chrooted into the container (``ctrfs``): it
writes a tar of the source or extracts one into the destination. The host's side
runs in this process, as the user. Neither side follows a symlink it did not mean
to: the container path is opened with ``openat2(RESOLVE_IN_ROOT)`` inside the
chroot, and every entry below it is created or read one component at a time with
``O_NOFOLLOW`` relative to its parent's fd.

Destinations follow Docker's and Podman's rules (:func:`plan_placement`).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import sys
import tarfile
from collections.abc import Callable, Iterator
from typing import IO, Literal

import attrs

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, SyscallError
from rootless.runtime.securejoin import resolve_in_root
from rootless.runtime.spec import USER_ANNOTATION, Spec
from rootless.runtime.users import resolve_user
from rootless.sys.openat2 import open_in_root

DestKind = Literal["dir", "file", "missing"]
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class CopyError(ConfigError):
    """A copy could not be done: a missing path, a type clash, a bad argument."""


# -- planning (pure) -------------------------------------------------------------


@attrs.frozen
class CopyPlan:
    container: str
    direction: Literal["in", "out"]  # "in": host -> container
    container_path: str
    host_path: str  # "-": a tar stream on stdin (in) or stdout (out)


def _split(arg: str) -> tuple[str | None, str]:
    """``CTR:PATH`` -> (CTR, PATH); host paths (``-``, ``/...``, ``./...``) -> (None, arg)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None, arg
    ref, sep, path = arg.partition(":")
    if not sep or not ref:
        return None, arg
    return ref, path if path.startswith("/") else "/" + path


def parse_cp_args(src: str, dest: str) -> CopyPlan:
    """Which side is the container; container paths are taken from its root."""
    src_ctr, src_path = _split(src)
    dest_ctr, dest_path = _split(dest)
    if src_ctr and dest_ctr:
        raise CopyError(
            "copying between containers is not supported",
            hint="copy to the host first, then into the other container",
        )
    if src_ctr:
        return CopyPlan(src_ctr, "out", src_path, dest_path)
    if dest_ctr:
        if src_path != "-" and not src_path:
            raise CopyError("no source path given")
        return CopyPlan(dest_ctr, "in", dest_path, src_path)
    raise CopyError(
        "one of the paths must be in a container: CONTAINER:PATH",
        hint="usage: rootless cp [CONTAINER:]SRC [CONTAINER:]DEST",
    )


@attrs.frozen
class SourceRef:
    """A source path split for copying: open ``parent``, then take ``name`` in it
    (``""``: ``parent`` itself); the tar names the top entry ``arcname``."""

    parent: str
    name: str
    arcname: str
    contents: bool  # "DIR/.": copy what is in the directory, not the directory


def plan_source(path: str) -> SourceRef:
    if path == "/" or path.endswith("/."):
        parent = path[:-2] if path.endswith("/.") else path
        parent = parent or "/"
        return SourceRef(parent, "", posixpath.basename(parent.rstrip("/")) or ".", True)
    if path.endswith("/"):  # a trailing slash: the directory itself, a symlink followed
        parent = path.rstrip("/")
        return SourceRef(parent, "", posixpath.basename(parent), False)
    parent, name = posixpath.split(path)
    if name in ("", ".", ".."):
        return SourceRef(path, "", posixpath.basename(posixpath.normpath(path)) or ".", False)
    return SourceRef(parent or ".", name, name, False)


@attrs.frozen
class Placement:
    """Extract into the existing ``directory``; the top entry is renamed ``name``
    (``None``: the top directory's contents go straight into ``directory``)."""

    directory: str
    name: str | None


def plan_placement(
    dest: str, dest_kind: DestKind, *, src_is_dir: bool, contents: bool, src_name: str
) -> Placement:
    """Docker's rules for where a copy lands."""
    if dest_kind == "dir":
        if src_is_dir and contents:
            return Placement(dest, None)
        return Placement(dest, src_name)
    if dest_kind == "file":
        if src_is_dir:
            raise CopyError(f"cannot copy a directory onto the file {dest}")
        if dest.endswith("/"):
            raise CopyError(f"{dest} is not a directory")
        parent, name = posixpath.split(dest)
        return Placement(parent or ".", name)
    if dest.endswith("/") and not src_is_dir:
        raise CopyError(
            f"the destination directory {dest} does not exist",
            hint="create it first, or leave out the trailing slash to copy to a new file",
        )
    parent, name = posixpath.split(dest.rstrip("/"))
    if name in ("", ".", ".."):
        raise CopyError(f"cannot copy to {dest}")
    return Placement(parent or ("/" if dest.startswith("/") else "."), name)


def member_parts(name: str) -> list[str]:
    """A tar member's name as safe relative components; ``..`` is refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CopyError(f"refusing the archive entry {name!r}: it climbs out with '..'")
    return parts


def relocate(parts: list[str], top: list[str], placement: Placement | None) -> list[str] | None:
    """Where a member goes below the placement directory (None: skip it)."""
    if placement is None:  # a tar from stdin: every entry where it says
        return parts or None
    if parts[: len(top)] != top:
        raise CopyError(f"unexpected archive entry {'/'.join(parts)!r} outside {'/'.join(top)!r}")
    rest = parts[len(top) :]
    if placement.name is None:
        return rest or None
    return [placement.name, *rest]


# -- the two sides ---------------------------------------------------------------


@attrs.frozen
class Side:
    """How one side opens paths: the host's as the user, the container's within its root."""

    open_path: Callable[[str, int], int]
    # the path with its symlinks resolved (a file destination is written where it leads)
    resolve: Callable[[str], str]

    def kind(self, path: str) -> DestKind:
        try:
            fd = self.open_path(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return "missing"
        try:
            return "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        finally:
            os.close(fd)


def host_side() -> Side:
    return Side(lambda path, flags: os.open(path, flags), os.path.realpath)


def container_side() -> Side:
    """Inside the chroot: ``/`` is the container's root; paths stay within it."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open_path(path: str, flags: int) -> int:
        try:
            return open_in_root(root, path, flags)
        except SyscallError as e:
            raise OSError(e.errno, os.strerror(e.errno), path) from None

    return Side(open_path, lambda path: resolve_in_root("/", path))


# -- writing a tar ---------------------------------------------------------------


def write_tar(out: IO[bytes], side: Side, source: SourceRef, what: str) -> None:
    """Write ``source`` (and all below it) to ``out`` as a tar stream."""
    try:
        parent = side.open_path(source.parent, _DIR & ~os.O_NOFOLLOW)
    except OSError as e:
        raise _not_found(source, what, e) from None
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            writer = _TarWriter(tar)
            if source.name:
                try:
                    st = os.stat(source.name, dir_fd=parent, follow_symlinks=False)
                except OSError as e:
                    raise _not_found(source, what, e) from None
                writer.entry(parent, source.name, source.arcname, st)
            else:
                writer.directory(parent, source.arcname, os.fstat(parent))
    finally:
        os.close(parent)


def _not_found(source: SourceRef, what: str, e: OSError) -> CopyError:
    path = posixpath.join(source.parent, source.name) if source.name else source.parent
    reason = os.strerror(e.errno) if e.errno else str(e)
    return CopyError(f'"{path}" could not be found on {what}: {reason.lower()}')


class _TarWriter:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.links: dict[tuple[int, int], str] = {}

    def _info(self, arcname: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(arcname)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = int(st.st_mtime)
        return info

    def entry(self, dirfd: int, name: str, arcname: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            fd = os.open(name, _DIR, dir_fd=dirfd)
            try:
                self.directory(fd, arcname, os.fstat(fd))
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            self.regular(dirfd, name, arcname, st)
        elif stat.S_ISLNK(mode):
            info = self._info(arcname, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dirfd)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            self.tar.addfile(self._info(arcname, st, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info = self._info(
                arcname, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            )
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        # sockets cannot be archived: left out, as tar does

    def directory(self, fd: int, arcname: str, st: os.stat_result) -> None:
        self.tar.addfile(self._info(arcname, st, tarfile.DIRTYPE))
        for child in sorted(os.listdir(fd)):
            try:
                child_st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:  # removed while we copy
                continue
            self.entry(fd, child, f"{arcname}/{child}", child_st)

    def regular(self, dirfd: int, name: str, arcname: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = self._info(arcname, st, tarfile.LNKTYPE)
            info.linkname = self.links[key]
            self.tar.addfile(info)
            return
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            info = self._info(arcname, st, tarfile.REGTYPE)
            info.size = st.st_size
            self.tar.addfile(info, f)
        if st.st_nlink > 1:
            self.links[key] = arcname


# -- extracting a tar ------------------------------------------------------------


@attrs.frozen
class ExtractOptions:
    owner: tuple[int, int] | None = None  # chown every entry to (uid, gid)
    overwrite: bool = False  # replace a directory by a non-directory and vice versa
    from_stream: bool = False  # a tar from stdin: entries go where they say


def extract_tar(src: IO[bytes], side: Side, dest: str, opts: ExtractOptions) -> None:
    """Extract the tar on ``src`` at ``dest`` of ``side`` (Docker's placement rules)."""
    with tarfile.open(fileobj=src, mode="r|") as tar:
        members = iter(tar)
        first = next(members, None)
        if first is None:
            return
        top = member_parts(first.name)
        placement: Placement | None = None
        kind = side.kind(dest)
        if opts.from_stream:
            if kind != "dir":
                raise CopyError(f"the destination {dest} must be an existing directory")
            directory = dest
        else:
            placement = plan_placement(
                side.resolve(dest) if kind == "file" else dest,
                kind,
                src_is_dir=first.isdir(),
                contents=not top,
                src_name=top[-1] if top else ".",
            )
            directory = placement.directory
        try:
            root = side.open_path(directory, _DIR & ~os.O_NOFOLLOW)
        except OSError as e:
            raise CopyError(f"cannot copy to {dest}: {e.strerror}: {directory}") from None
        try:
            _Extractor(tar, root, opts).run(_chain(first, members), top, placement)
        finally:
            os.close(root)


def _chain(first: tarfile.TarInfo, rest: Iterator[tarfile.TarInfo]) -> Iterator[tarfile.TarInfo]:
    yield first
    yield from rest


class _Extractor:
    def __init__(self, tar: tarfile.TarFile, root: int, opts: ExtractOptions) -> None:
        self.tar = tar
        self.root = root
        self.opts = opts
        self.dirs: list[tuple[list[str], tarfile.TarInfo]] = []

    def run(
        self, members: Iterator[tarfile.TarInfo], top: list[str], placement: Placement | None
    ) -> None:
        for member in members:
            rel = relocate(member_parts(member.name), top, placement)
            if rel is None:
                continue
            link = None
            if member.islnk():
                link = relocate(member_parts(member.linkname), top, placement)
                if link is None:
                    continue
            self.member(member, rel, link)
        # Deepest first, so a read-only directory does not stop its children.
        for parts, member in sorted(self.dirs, key=lambda d: len(d[0]), reverse=True):
            fd = self.walk(parts)
            try:
                self.meta_fd(fd, member)
            finally:
                os.close(fd)

    def walk(self, parts: list[str], *, create: bool = False) -> int:
        """A directory fd for ``parts`` below the root, never following a symlink."""
        fd = os.dup(self.root)
        try:
            for part in parts:
                try:
                    nxt = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise CopyError(
                            f"cannot copy into {'/'.join(parts)}: {part} is not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def member(self, m: tarfile.TarInfo, rel: list[str], link: list[str] | None) -> None:
        parent = self.walk(rel[:-1], create=True)
        name = rel[-1]
        try:
            self.make_room(parent, name, rel, want_dir=m.isdir())
            if m.isdir():
                if not _is_dir(parent, name):
                    os.mkdir(name, 0o700, dir_fd=parent)
                self.dirs.append((rel, m))
            elif m.isreg():
                self.regular(parent, name, m)
            elif m.issym():
                os.symlink(m.linkname, name, dir_fd=parent)
                self.meta_at(parent, name, m)
            elif m.islnk():
                assert link is not None
                src = self.walk(link[:-1])
                try:
                    os.link(
                        link[-1], name, src_dir_fd=src, dst_dir_fd=parent, follow_symlinks=False
                    )
                finally:
                    os.close(src)
            elif m.isfifo():
                os.mkfifo(name, 0o600, dir_fd=parent)
                self.meta_at(parent, name, m, chmod=True)
            elif m.ischr() or m.isblk():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                try:
                    os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
                except PermissionError:
                    print(
                        f"WARN: cannot create device {'/'.join(rel)}: not permitted",
                        file=sys.stderr,
                    )
                    return
                self.meta_at(parent, name, m, chmod=True)
        finally:
            os.close(parent)

    def make_room(self, parent: int, name: str, rel: list[str], *, want_dir: bool) -> None:
        """Remove what stands at ``name`` unless it is a directory and one is wanted."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and want_dir:
            return
        if is_dir != want_dir and not self.opts.overwrite:
            what = (
                ("a directory", "a non-directory") if is_dir else ("a non-directory", "a directory")
            )
            raise CopyError(
                f"cannot overwrite {what[0]} {'/'.join(rel)} with {what[1]}",
                hint="use --overwrite to replace it",
            )
        if is_dir:
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)

    def regular(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        data = self.tar.extractfile(m)
        assert data is not None
        fd = os.open(name, _NEW_FILE, 0o600, dir_fd=parent)
        try:
            while chunk := data.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            self.meta_fd(fd, m)
        finally:
            os.close(fd)

    def meta_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.opts.owner is not None:
            os.fchown(fd, *self.opts.owner)
        os.fchmod(fd, m.mode & 0o7777)
        os.utime(fd, (m.mtime, m.mtime))

    def meta_at(self, parent: int, name: str, m: tarfile.TarInfo, *, chmod: bool = False) -> None:
        """Owner and time of an entry we just made (symlinks keep mode 0777)."""
        if self.opts.owner is not None:
            os.chown(name, *self.opts.owner, dir_fd=parent, follow_symlinks=False)
        if chmod:  # a fifo or device just made by us, no symlink
            os.chmod(name, m.mode & 0o7777, dir_fd=parent)
        os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


# -- the verb ----------------------------------------------------------------------


@attrs.frozen
class CopyOptions:
    archive: bool = True  # into a container: chown to its user (Podman's default)
    overwrite: bool = False


def cp(
    src: str,
    dest: str,
    opts: CopyOptions = CopyOptions(),
    paths: StoragePaths | None = None,
) -> None:
    """Copy ``src`` to ``dest``; one of them is ``CONTAINER:PATH``. ``-`` is a tar
    stream on stdin (as ``src``) or stdout (as ``dest``). Call before any thread exists."""
    from rootless.engine import ctrfs

    plan = parse_cp_args(src, dest)
    record, spec, target, idmap = ctrfs.container_target(plan.container, paths)
    what = f"container {record.name}"
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    if plan.direction == "out":
        source = plan_source(plan.container_path)

        def produce() -> int:
            with os.fdopen(write_fd, "wb") as out:
                write_tar(out, container_side(), source, what)
            return 0

        pid = ctrfs.fork_in_container(target, idmap, produce, keep=(write_fd,))
        os.close(write_fd)
        try:
            with os.fdopen(read_fd, "rb") as stream:
                _host_consume(stream, plan.host_path, opts)
        except BaseException:
            # Our side failed: the container's side gets EPIPE; if it failed first,
            # its message (already printed) is the one that counts.
            code = ctrfs.wait_child(pid)
            if code != 0:
                raise ctrfs.ChildFailed(code) from None
            raise
    else:
        if plan.host_path != "-":
            _check_host_source(plan.host_path)
        user = _user_spec(spec)

        def consume() -> int:
            owner = _owner(user) if opts.archive else None
            extract = ExtractOptions(owner, opts.overwrite, from_stream=plan.host_path == "-")
            with os.fdopen(read_fd, "rb") as stream:
                extract_tar(stream, container_side(), plan.container_path, extract)
            return 0

        pid = ctrfs.fork_in_container(target, idmap, consume, keep=(read_fd,))
        os.close(read_fd)
        try:
            with os.fdopen(write_fd, "wb") as out:
                _host_produce(out, plan.host_path)
        except BaseException:
            ctrfs.kill_child(pid)
            raise
    code = ctrfs.wait_child(pid)
    if code != 0:
        raise ctrfs.ChildFailed(code)


def _host_consume(stream: IO[bytes], dest: str, opts: CopyOptions) -> None:
    if dest == "-":
        shutil.copyfileobj(stream, sys.stdout.buffer, _CHUNK)
        sys.stdout.buffer.flush()
        return
    try:
        extract_tar(stream, host_side(), dest, ExtractOptions(None, opts.overwrite))
    except (OSError, tarfile.TarError) as e:
        raise CopyError(f"cannot copy to {dest}: {e}") from None


def _host_produce(out: IO[bytes], src: str) -> None:
    try:
        if src == "-":
            shutil.copyfileobj(sys.stdin.buffer, out, _CHUNK)
        else:
            write_tar(out, host_side(), plan_source(src), "the host")
    except BrokenPipeError:
        pass  # the container's side stopped early; its exit code tells why


def _check_host_source(path: str) -> None:
    try:
        os.lstat(path)
    except OSError as e:
        raise CopyError(f'"{path}" could not be found on the host: {e.strerror}') from None


def _user_spec(spec: Spec) -> str:
    """The container's user as ``-u`` gave it (a name is resolved inside the container)."""
    return spec.annotations.get(USER_ANNOTATION) or (
        f"{spec.process.user.uid}:{spec.process.user.gid}"
    )


def _owner(user: str) -> tuple[int, int]:
    """``user`` resolved against the container's /etc/passwd and /etc/group (in the chroot)."""

    def read(path: str) -> str:
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    resolved = resolve_user(user, read("/etc/passwd"), read("/etc/group")).user
    return resolved.uid, resolved.gid
