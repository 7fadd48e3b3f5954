"""Directory walking that never follows a symlink, with a small cache of directory fds.

Every path below the root is opened one component at a time with ``O_NOFOLLOW``
relative to its parent's fd, so a symlink anywhere in a path (planted by an earlier
entry or a lower layer) stops the walk instead of leading out of the tree.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_SIZE = 128

Parts = tuple[str, ...]


class NotADir(Exception):
    """A path component is not a directory (``kind`` says what it is instead)."""

    def __init__(self, parts: Parts, kind: str) -> None:
        super().__init__("/".join(parts), kind)
        self.path = "/".join(parts)
        self.kind = kind


def kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


class DirTree:
    """Resolve directories below ``root``; missing ones are created when asked to."""

    def __init__(self, root: Path, on_mkdir: Callable[[Parts], None] | None = None) -> None:
        self._root_fd = os.open(root, _DIR_FLAGS)
        self._cache: OrderedDict[Parts, int] = OrderedDict()
        self._on_mkdir = on_mkdir

    def close(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()
        os.close(self._root_fd)

    def __enter__(self) -> DirTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fd(self, parts: Parts, *, create: bool = True) -> int:
        """An ``O_PATH`` fd of directory ``parts``; owned by the cache, do not close it."""
        if not parts:
            return self._root_fd
        cached = self._cache.get(parts)
        if cached is not None:
            self._cache.move_to_end(parts)
            return cached
        parent = self.fd(parts[:-1], create=create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o700, dir_fd=parent)
            if self._on_mkdir is not None:
                self._on_mkdir(parts)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            raise NotADir(parts, kind_of(st.st_mode)) from None
        self._cache[parts] = fd
        if len(self._cache) > _CACHE_SIZE:
            os.close(self._cache.popitem(last=False)[1])
        return fd

    def forget(self, parts: Parts) -> None:
        """Drop ``parts`` and everything below it from the cache (it was replaced)."""
        n = len(parts)
        for key in [k for k in self._cache if k[:n] == parts]:
            os.close(self._cache.pop(key))

    def remove(self, parts: Parts) -> None:
        """Remove whatever is at ``parts`` (a whole tree for a directory), if anything."""
        parent = self.fd(parts[:-1], create=False)
        try:
            os.unlink(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            self.forget(parts)
            rmtree_at(parent, parts[-1])


def rmtree_at(parent_fd: int, name: str) -> None:
    """Remove directory ``name`` below ``parent_fd``, making read-only dirs writable first."""

    try:
        shutil.rmtree(name, dir_fd=parent_fd)
    except PermissionError:
        _chmod_tree(parent_fd, name)
        shutil.rmtree(name, dir_fd=parent_fd)


def _chmod_tree(parent_fd: int, name: str) -> None:
    """Give the owner rwx on every directory below ``name`` (to let rmtree proceed)."""
    # Only called on names just seen as directories (not symlinks) in our own tree.
    os.chmod(name, 0o700, dir_fd=parent_fd)
    fd = os.open(
        name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd
    )
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _chmod_tree(fd, entry.name)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it, whatever the directory modes say."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        rmtree_at(parent, path.name)
    except FileNotFoundError:
        pass
    finally:
        os.close(parent)
