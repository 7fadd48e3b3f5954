"""Named and anonymous volumes on disk: ``VOLUMES/NAME/_data`` plus ``volume.json``.

A volume appears whole or not at all: it is built in a hidden directory and renamed
into place. One lock (``VOLUMES/.lock``) orders every change, including the first
use's copy of image content, so two containers starting at once see one volume.
Files in a volume may belong to subordinate IDs, so removal runs in the user
namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rootless._atomic import atomic_write, flock, fsync_dir
from rootless._empty import EMPTY_MAP
from rootless._events import emit
from rootless._record import Record
from rootless._units import format_timestamp
from rootless.errors import ConfigError
from rootless.volumes.parse import check_volume_name

METADATA = "volume.json"
DATA = "_data"
ANONYMOUS_LABEL = "io.rootless.volume.anonymous"
CONTAINER_LABEL = "io.rootless.volume.container"


class NoSuchVolume(ConfigError):
    exit_code = 1  # as Podman's volume rm/inspect


class VolumeExists(ConfigError):
    pass


class VolumeInUse(ConfigError):
    exit_code = 2  # as Podman's volume rm


class Volume(Record):
    name: str
    mountpoint: Path  # the directory containers see (``_data``)
    created: str  # RFC 3339, UTC
    labels: Mapping[str, str] = EMPTY_MAP
    options: Mapping[str, str] = EMPTY_MAP
    # Docker's rule: a new, empty volume gets the image's content at its mount path.
    needs_copy: bool = True

    @property
    def anonymous(self) -> bool:
        return self.labels.get(ANONYMOUS_LABEL) == "true"

    def to_json(self) -> dict[str, Any]:
        """``volume inspect``'s shape (Podman's field names)."""
        return {
            "Name": self.name,
            "Driver": "local",
            "Mountpoint": str(self.mountpoint),
            "CreatedAt": self.created,
            "Labels": dict(self.labels),
            "Scope": "local",
            "Options": dict(self.options),
            "Anonymous": self.anonymous,
            "NeedsCopyUp": self.needs_copy,
        }


def parse_options(options: Mapping[str, str]) -> tuple[int | None, int | None]:
    """The owner asked for by ``--opt o=uid=N,gid=N`` (the only option supported)."""
    uid = gid = None
    for key, value in options.items():
        if key != "o":
            raise ConfigError(
                f'unsupported volume option "{key}"',
                hint="the local driver here takes only o=uid=N,gid=N",
            )
        for item in (i for i in value.split(",") if i):
            k, _, v = item.partition("=")
            if k not in ("uid", "gid") or not v.isdigit():
                raise ConfigError(
                    f'unsupported volume mount option "{item}"',
                    hint="the local driver here takes only o=uid=N,gid=N",
                )
            if k == "uid":
                uid = int(v)
            else:
                gid = int(v)
    return uid, gid


class VolumeStore:
    """The volumes under ``root`` (``$XDG_DATA_HOME/rootless/volumes``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (for a read-modify-write spanning several calls)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with flock(self.root / ".lock"):
            yield

    def _dir(self, name: str) -> Path:
        return self.root / check_volume_name(name)

    def find(self, name: str) -> Volume | None:
        path = self._dir(name) / METADATA
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot read volume {name}: {path} is unreadable ({e})",
                hint=f"remove the volume's directory {path.parent}",
            ) from None
        return Volume(
            name=name,
            mountpoint=path.parent / DATA,
            created=str(data.get("created", "")),
            labels=dict(data.get("labels") or {}),
            options=dict(data.get("options") or {}),
            needs_copy=bool(data.get("needs_copy", True)),
        )

    def get(self, name: str) -> Volume:
        vol = self.find(name)
        if vol is None:
            raise NoSuchVolume(
                f"no volume with name {name!r} found",
                hint="list volumes with: rootless volume ls",
            )
        return vol

    def list(self) -> list[Volume]:
        try:
            names = sorted(n for n in os.listdir(self.root) if not n.startswith("."))
        except FileNotFoundError:
            return []
        return [v for v in (self.find(n) for n in names) if v is not None]

    def create(
        self,
        name: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> Volume:
        """Create a volume (a random 64-hex name when ``name`` is None). Hold the lock."""
        name = check_volume_name(name) if name is not None else os.urandom(32).hex()
        existing = self.find(name)
        if existing is not None:
            if exist_ok:
                return existing
            raise VolumeExists(
                f"volume with name {name} already exists",
                hint="choose another name, or remove it first: rootless volume rm " + name,
            )
        parse_options(options or {})
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.root / f".new-{name}-{os.urandom(4).hex()}"
        tmp.mkdir(mode=0o700)
        try:
            (tmp / DATA).mkdir(mode=0o755)
            (tmp / DATA).chmod(0o755)  # mkdir's mode is masked by the umask
            vol = Volume(
                name,
                self.root / name / DATA,
                format_timestamp(time.time_ns()),
                dict(labels or {}),
                dict(options or {}),
            )
            _write_metadata(tmp, vol)
            os.rename(tmp, self.root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        emit(self.root.parent, "volume", "create", id=name, name=name)
        return vol

    def save(self, vol: Volume) -> None:
        """Rewrite a volume's metadata (hold the lock)."""
        _write_metadata(self._dir(vol.name), vol)

    def remove(self, names: Sequence[str]) -> None:
        """Delete volumes and their data (hold the lock; check use first).

        Each is renamed aside first, so a failure half-way leaves no half volume
        visible; the data is removed inside the user namespace, where every owner
        of its files is mapped.
        """
        doomed = []
        for name in names:
            src = self._dir(name)
            dst = self.root / f".rm-{name}-{os.urandom(4).hex()}"
            os.rename(src, dst)
            doomed.append(dst)
        if doomed:
            fsync_dir(self.root)
            remove_trees(doomed)
        for name in names:
            emit(self.root.parent, "volume", "remove", id=name, name=name)


def _write_metadata(directory: Path, vol: Volume) -> None:
    data = {
        "name": vol.name,
        "created": vol.created,
        "labels": dict(vol.labels),
        "options": dict(vol.options),
        "needs_copy": vol.needs_copy,
    }
    atomic_write(directory / METADATA, json.dumps(data, indent=2).encode(), mode=0o600)


def remove_trees(dirs: list[Path]) -> None:
    """Delete directory trees whose files may belong to subordinate IDs."""
    from rootless.runtime.userns import run_in_userns

    def job() -> int:
        for d in dirs:
            shutil.rmtree(d)
        return 0

    try:
        for d in dirs:
            shutil.rmtree(d)  # fast path: every file is the user's own
        return
    except PermissionError:
        pass
    code = run_in_userns(job)
    if code != 0:
        raise ConfigError(
            f"cannot remove {', '.join(map(str, dirs))} (exit code {code})",
            hint="remove it with: rootless unshare rm -rf PATH",
        )


def filter_volumes(
    vols: Sequence[Volume], filters: Sequence[str], users: Mapping[str, Sequence[str]]
) -> list[Volume]:
    """``volume ls --filter``: every filter must match (name is a substring, as Podman)."""
    parsed = []
    for f in filters:
        key, _, value = f.partition("=")
        if key not in ("name", "label") and (
            key not in ("dangling", "anonymous") or value not in ("true", "false")
        ):
            raise ConfigError(
                f'invalid volume filter "{f}"',
                hint="use name=TEXT, label=KEY[=VALUE], dangling=true|false, anonymous=true|false",
            )
        parsed.append((key, value))
    return [v for v in vols if all(_matches(v, k, value, users) for k, value in parsed)]


def _matches(v: Volume, key: str, value: str, users: Mapping[str, Sequence[str]]) -> bool:
    if key == "name":
        return value in v.name
    if key == "label":
        k, eq, want = value.partition("=")
        return k in v.labels and (not eq or v.labels[k] == want)
    if key == "dangling":
        return (v.name not in users) == (value == "true")
    return v.anonymous == (value == "true")
