"""``RUN --mount=type=cache``: which directory a cache mount uses, and who may use it.

A cache is a directory under the store (``build-mounts/<hash of id>``) kept between
builds. ``sharing=`` says what happens when several RUNs use one id at the same
time, in one build or in concurrent builds (an ``flock`` on ``<dir>.lock``, so any
process of the user sees it):

- ``shared`` (default): all use it at once (a shared lock, so they wait only while a
  ``locked`` or ``private`` RUN holds it);
- ``locked``: one RUN at a time (an exclusive lock, waited for);
- ``private``: an exclusive lock on the first free directory of the id's pool
  (``<dir>``, ``<dir>-private-1``, ...): a RUN never waits, it gets a new directory
  when the others are in use, and later RUNs reuse it.

A new directory is made with ``mode``/``uid``/``gid`` (0755, 0, 0) and, with
``from=``, filled with a copy of ``source`` (default: the root) of that stage or
image. Waiting polls with ``trio.sleep``: the build runs nothing in threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path

from rootless.build.dockerfile import Mount as MountSpec
from rootless.errors import BuildError
from rootless.runtime.securejoin import resolve_in_root

SHARING = ("shared", "private", "locked")
_POLL = 0.05
View = Callable[[str], contextlib.AbstractContextManager[Path]]


def cache_dir_name(cache_id: str) -> str:
    """The directory name of cache mount ``cache_id``. Pure."""
    return hashlib.sha256(cache_id.encode()).hexdigest()[:32]


def cache_key(m: MountSpec, target: str) -> str:
    """The directory name of cache mount ``m`` mounted at ``target``. Pure."""
    return cache_dir_name(m.option("id") or target)


def sharing_of(m: MountSpec) -> str:
    """The ``sharing=`` mode of cache mount ``m``, checked. Pure."""
    mode = m.option("sharing") or "shared"
    if mode not in SHARING:
        raise BuildError(
            f"invalid --mount sharing={mode}", hint="use sharing=shared, private or locked"
        )
    if m.source is not None and m.from_ is None:
        raise BuildError(
            f"--mount type=cache,source={m.source} needs from=",
            hint="name the stage or image to seed the cache from with from=NAME",
        )
    return mode


def octal_option(m: MountSpec, key: str, default: int) -> int:
    value = m.option(key)
    if value is None:
        return default
    try:
        return int(value, 8)
    except ValueError:
        raise BuildError(f"invalid --mount {key}={value}: use an octal mode such as 0755") from None


def number_option(m: MountSpec, key: str) -> int:
    value = m.option(key) or "0"
    if not value.isdigit():
        raise BuildError(f"invalid --mount {key}={value}: use a number")
    return int(value)


def try_lock(path: Path, *, exclusive: bool) -> int | None:
    """An open descriptor holding an flock on ``path`` (made if missing), or None when
    another holder's lock conflicts. Closing the descriptor releases it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


async def _wait_lock(path: Path, *, exclusive: bool, waiting: Callable[[], None]) -> int:
    import trio

    fd = try_lock(path, exclusive=exclusive)
    if fd is None:
        waiting()
    while fd is None:
        await trio.sleep(_POLL)
        fd = try_lock(path, exclusive=exclusive)
    return fd


def _lock_path(directory: Path) -> Path:
    return directory.with_name(directory.name + ".lock")


async def _lease(root: Path, name: str, mode: str, waiting: Callable[[], None]) -> tuple[Path, int]:
    """The directory to use for cache ``name`` in ``mode``, and the lock held on it."""
    base = root / name
    if mode != "private":
        lock = _lock_path(base)
        return base, await _wait_lock(lock, exclusive=mode == "locked", waiting=waiting)
    number = 0
    while True:
        path = base if number == 0 else root / f"{name}-private-{number}"
        fd = try_lock(_lock_path(path), exclusive=True)
        if fd is not None:
            return path, fd
        number += 1


@contextlib.asynccontextmanager
async def lease_caches(
    mounts: Sequence[MountSpec],
    targets: Sequence[str],
    root: Path,
    view: View,
    say: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[Mapping[str, Path]]:
    """The directory of each cache mount of one RUN (by :func:`cache_key`), locked as its
    ``sharing`` says until the context ends. ``targets`` are the mounts' mount points;
    ``view(ref)`` gives a read-only view of a stage or image (for ``from=``); ``say``
    tells that a RUN waits for another one's lock."""
    wanted: dict[str, tuple[str, MountSpec]] = {}
    for m, target in zip(mounts, targets, strict=True):
        if m.type == "cache":
            key = cache_key(m, target)
            mode = sharing_of(m)
            # One id twice in a RUN uses one directory, under the stricter lock.
            if key not in wanted or mode == "locked":
                wanted[key] = (mode, m)
    if wanted:
        root.mkdir(parents=True, exist_ok=True)
    held: list[int] = []
    leased: dict[str, Path] = {}
    try:
        for key in sorted(wanted):  # one order for everyone: no lock cycle
            mode, m = wanted[key]
            name = m.option("id") or m.target
            note = f"waiting for the cache mount {name}: another RUN holds it"
            path, fd = await _lease(root, key, mode, functools.partial(say, note))
            held.append(fd)
            if not path.is_dir():
                _make(path, m, view)
            leased[key] = path
        yield leased
    finally:
        for fd in held:
            os.close(fd)


def _make(path: Path, m: MountSpec, view: View) -> None:
    """A new cache directory, seeded from ``from=`` when given; made under a temporary
    name and renamed, so a failed seed leaves no half-filled cache."""
    tmp = path.with_name(f"{path.name}.new-{os.urandom(4).hex()}")
    try:
        if m.from_ is not None:
            with view(m.from_) as source_root:
                _seed(source_root, m, tmp)
        else:
            tmp.mkdir()
        os.chown(tmp, number_option(m, "uid"), number_option(m, "gid"))
        os.chmod(tmp, octal_option(m, "mode", 0o755))
        os.rename(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _seed(source_root: Path, m: MountSpec, tmp: Path) -> None:
    source = resolve_in_root(str(source_root), m.source or "/")
    if not os.path.isdir(source):
        raise BuildError(
            f"cannot seed the cache mount from {m.from_}:{m.source or '/'}: not a directory"
        )
    shutil.copytree(source, tmp, symlinks=True)
    for src, dst in _pairs(source, str(tmp)):  # copytree keeps modes, not owners
        st = os.lstat(src)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        if not os.path.islink(dst):  # chown cleared the set-ID bits
            os.chmod(dst, st.st_mode & 0o7777)


def _pairs(source: str, dest: str) -> Iterator[tuple[str, str]]:
    for directory, dirs, files in os.walk(source):
        rel = os.path.relpath(directory, source)
        for name in (*dirs, *files):
            yield os.path.join(directory, name), os.path.join(dest, rel, name)
