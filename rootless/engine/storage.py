"""Which rootfs driver this host supports: kernel overlayfs in a user namespace, or copy.

The probe mounts a tiny overlay (with a whiteout and an opaque directory) as root of
the user's namespace and checks the merged view; the answer is kept in the runtime
directory (cleared at reboot, like the kernel it describes). ``ROOTLESS_STORAGE_DRIVER``
forces a driver. fuse-overlayfs is not used: /dev/fuse is often not usable by users
(it is not here), and the copy driver works everywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rootless._paths import StoragePaths
from rootless.errors import ConfigError

DRIVERS = ("overlay", "copy")


def storage_driver(paths: StoragePaths) -> str:
    forced = os.environ.get("ROOTLESS_STORAGE_DRIVER")
    if forced:
        if forced not in DRIVERS:
            raise ConfigError(
                f'unknown storage driver "{forced}" in ROOTLESS_STORAGE_DRIVER',
                hint="use overlay or copy",
            )
        return forced
    cache = paths.runtime / "storage-driver"
    try:
        known = cache.read_text().strip()
    except OSError:
        known = ""
    if known in DRIVERS:
        return known
    driver = "overlay" if probe_overlay(paths) else "copy"
    try:
        paths.runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        cache.write_text(driver)
    except OSError:
        pass  # no runtime dir: probe again next time
    return driver


def probe_overlay(paths: StoragePaths) -> bool:
    """True if kernel overlayfs works inside the user's namespace here."""
    import shutil

    from rootless.image.rootfs import check_probe_view, plan_overlay, probe_layers
    from rootless.runtime.userns import run_in_userns
    from rootless.sys import mount as sysmount

    paths.data.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=paths.data))

    def probe() -> int:
        try:
            layers, upper, work, merged = probe_layers(root)
            plan = plan_overlay(layers, upper, work, merged)
            sysmount.mount("overlay", str(merged), "overlay", 0, plan.options)
            check_probe_view(merged)
            return 0
        except Exception:
            return 1
        finally:
            shutil.rmtree(root, ignore_errors=True)

    try:
        return run_in_userns(probe) == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
