"""Docker's rule for a new volume: it starts with the image's content at its mount path.

The image's view of the path is the kernel's: its layers are mounted read-only as
one overlay (whiteouts and opaque directories applied, as in the container), the
path is resolved inside that view without leaving it, and the directory's content
is copied into the volume with owners, modes, xattrs and times. All of it runs as
root of the user's namespace (layer files belong to subordinate IDs).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from rootless._record import Record
from rootless.errors import ConfigError


class CopyJob(Record):
    image_path: str  # the mount path in the container, e.g. /home/app
    volume_dir: Path  # the volume's _data directory


def overlay_options(layers: Sequence[Path], empty: Path) -> str:
    """Read-only overlay options for ``layers`` (base first).

    Without an upper directory the kernel wants two lower layers at least, so an
    empty directory is put at the bottom.
    """
    from rootless.image.overlayfmt import escape_path

    lowers = ":".join(escape_path(p) for p in [*reversed(layers), empty])
    return f"lowerdir={lowers},userxattr"


def copy_up(layers: Sequence[Path], jobs: Sequence[CopyJob], scratch: Path) -> None:
    """Copy the image's content for each job into its volume if the volume is empty.

    Call as root of the user namespace, in a private mount namespace; ``scratch`` is
    an empty directory for the mount point.
    """
    from rootless.image.rootfs import CopyLayer, materialise
    from rootless.runtime.securejoin import resolve_in_root
    from rootless.sys import mount as sysmount

    merged, empty = scratch / "merged", scratch / "empty"
    merged.mkdir()
    empty.mkdir()
    sysmount.mount(
        "overlay", str(merged), "overlay", sysmount.MS_RDONLY, overlay_options(layers, empty)
    )
    try:
        for job in jobs:
            src = resolve_in_root(str(merged), job.image_path)
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode) or os.listdir(job.volume_dir):
                continue
            try:
                # The source's own metadata lands on the volume's root as well.
                materialise([CopyLayer(Path(src))], job.volume_dir)
            except OSError as e:
                raise ConfigError(
                    f"cannot copy the image's {job.image_path} into volume "
                    f"{job.volume_dir.parent.name}: {e.strerror or e}"
                ) from None
    finally:
        with contextlib.suppress(OSError):
            sysmount.umount2(str(merged), sysmount.MNT_DETACH)
