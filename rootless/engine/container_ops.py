"""Container verbs beyond start/stop: rename, restart, prune, diff, attach.

``cp`` lives in ``engine/copying.py`` and ``top`` in ``engine/processes.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from rootless._paths import StoragePaths
from rootless.container.records import (
    ContainerRecord,
    NoSuchContainer,
)
from rootless.engine.containers import containers_store
from rootless.errors import ConfigError, ContainerStartError
from rootless.image.overlayfmt import OPAQUE_XATTR, overlay_lowerdirs, overlay_upperdir
from rootless.runtime.idmap import IDMapPlan

WHITEOUT_XATTR = "user.overlay.whiteout"  # a whiteout kept as a file (Linux >= 6.7)


def rename(ref: str, new_name: str, paths: StoragePaths | None = None) -> ContainerRecord:
    """Give a container a new, unused name (running containers too, as in Podman)."""
    from rootless.engine.containers import containers_store

    containers = containers_store(paths)
    record = containers.get(ref)
    containers.rename(record.id, new_name)
    return containers.get(record.id)


def restart(
    ref: str, timeout: float | None = None, paths: StoragePaths | None = None
) -> ContainerRecord:
    """Stop (if running) then start the container."""
    from rootless.engine import lifecycle

    record = lifecycle.stop(ref, timeout, paths)
    return lifecycle.start(record.id, paths)


def prune(paths: StoragePaths | None = None) -> list[str]:
    """Remove every exited container; their IDs.

    Containers in state ``created`` are kept: one may be a ``run -d`` in progress.
    """
    from rootless.engine import lifecycle

    containers = containers_store(paths)
    doomed = [r.id for r in map(containers.refresh, containers.list()) if r.status == "exited"]
    removed = []
    for cid in doomed:
        try:
            lifecycle.rm(cid, paths=paths)
        except NoSuchContainer:  # removed by someone else meanwhile
            continue
        removed.append(cid)
    return removed


# -- attach ---------------------------------------------------------------------


def attach(ref: str, *, sig_proxy: bool = True, paths: StoragePaths | None = None) -> int:
    """Print a running container's output from now on; its exit code once it exits.

    With ``sig_proxy``, SIGINT and SIGTERM received meanwhile are sent to the container.
    """
    import signal

    from rootless.cli.logs import print_log
    from rootless.engine import lifecycle

    containers = containers_store(paths)
    record = lifecycle.get(ref, containers)
    if record.status != "running":
        raise ContainerStartError(
            f"cannot attach to container {record.name}: it is not running",
            hint="start it with: rootless start -a " + record.name,
        )
    previous: dict[signal.Signals, Any] = {}

    def forward(sig: int, frame: object) -> None:
        with contextlib.suppress(ContainerStartError):  # it exited meanwhile
            lifecycle.kill(record.id, sig, paths)

    if sig_proxy:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, forward)
    try:
        print_log(record.id, since=time.time_ns(), follow=True)
        return lifecycle.wait(record.id, paths)
    finally:
        for proxied, handler in previous.items():
            signal.signal(proxied, handler)


# -- diff -----------------------------------------------------------------------

ChangeKind = Literal["A", "C", "D"]


@attrs.frozen(order=True)
class Change:
    path: str
    kind: ChangeKind


def parse_overlay_options(options: str) -> tuple[list[str], str]:
    """overlayfs options -> (lower directories, topmost first; the upper directory)."""
    upper = overlay_upperdir(options)
    if not upper:
        raise ConfigError("the container's overlay options name no upper directory")
    return overlay_lowerdirs(options), upper


class _Lowers:
    """Which paths exist in the image's layers (whiteouts and opaque dirs applied)."""

    def __init__(self, layers: Sequence[str]) -> None:
        self.layers = [Path(p) for p in layers]

    def exists(self, rel: str) -> bool:
        parts = rel.split("/")
        for layer in self.layers:
            hidden = False
            for i in range(1, len(parts) + 1):
                st = _lstat(layer.joinpath(*parts[:i]))
                if st is None:
                    break
                if _is_whiteout(layer.joinpath(*parts[:i]), st):
                    return False
                if i == len(parts):
                    return True
                if not stat.S_ISDIR(st.st_mode):
                    return False
            # an opaque directory on the way hides the layers below it
            for i in range(1, len(parts)):
                if _opaque(layer.joinpath(*parts[:i])):
                    hidden = True
            if hidden:
                return False
        return False

    def children(self, rel: str) -> set[str]:
        names: set[str] = set()
        for layer in self.layers:
            d = layer / rel
            try:
                entries = os.listdir(d)
            except OSError:
                entries = []
            for name in entries:
                if self.exists(f"{rel}/{name}"):
                    names.add(name)
            if _opaque(d):
                break
        return names


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _is_whiteout(path: Path, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        try:
            os.getxattr(path, WHITEOUT_XATTR, follow_symlinks=False)
            return True
        except OSError:
            return False
    return False


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def scan_upper(upper: str, lowers: Sequence[str]) -> list[Change]:
    """The changes an overlay's upper directory holds against its lower layers."""
    below = _Lowers(lowers)
    changes: list[Change] = []

    def walk(rel: str) -> None:
        directory = Path(upper, rel)
        for name in sorted(os.listdir(directory)):
            child = f"{rel}/{name}" if rel else name
            path = directory / name
            st = os.lstat(path)
            if _is_whiteout(path, st):
                changes.append(Change("/" + child, "D"))
                continue
            existed = below.exists(child)
            changes.append(Change("/" + child, "C" if existed else "A"))
            if stat.S_ISDIR(st.st_mode):
                if existed and _opaque(path):
                    kept = set(os.listdir(path))
                    changes.extend(
                        Change(f"/{child}/{gone}", "D") for gone in below.children(child) - kept
                    )
                walk(child)

    walk("")
    return sorted(changes)


def diff(ref: str, paths: StoragePaths | None = None) -> list[Change]:
    """The changes in a container's writable layer, sorted by path."""
    from rootless.engine import ctrfs

    record, spec, _, idmap = ctrfs.container_target(ref, paths)
    if not spec.root.overlay:
        raise ConfigError(
            f"cannot diff container {record.name}: it runs on a --rootfs directory, "
            "which has no separate writable layer",
        )
    lowers, upper = parse_overlay_options(spec.root.overlay)
    # Subordinate-ID owners may keep us out of some directories: look from inside.
    found = collect_in_userns(lambda: [[c.path, c.kind] for c in scan_upper(upper, lowers)], idmap)
    return [Change(p, k) for p, k in found]


def collect_in_userns(fn: Callable[[], Any], idmap: IDMapPlan) -> Any:
    """``fn()``'s JSON-able result, computed as root of the user's user namespace."""
    from rootless.engine import ctrfs
    from rootless.runtime.userns import fork_in_userns

    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)

    def child() -> Any:
        os.close(read_fd)
        try:
            data = json.dumps(fn()).encode()
            with os.fdopen(write_fd, "wb") as f:
                f.write(data)
        except BaseException as e:
            ctrfs.report_and_exit(e)
        os._exit(0)

    pid = fork_in_userns(idmap, child, on_child_error=ctrfs.report_and_exit)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    code = ctrfs.wait_child(pid)
    if code != 0:
        raise ctrfs.ChildFailed(code)
    return json.loads(data)


def diff_json(changes: Sequence[Change]) -> dict[str, list[str]]:
    """Podman's ``diff --format json``: lists by kind, empty ones left out."""
    out: dict[str, list[str]] = {}
    for key, kind in (("changed", "C"), ("added", "A"), ("deleted", "D")):
        items = [c.path for c in changes if c.kind == kind]
        if items:
            out[key] = items
    return out
