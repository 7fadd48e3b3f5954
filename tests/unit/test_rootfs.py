import io
import os
import stat
from pathlib import Path

import pytest
from _tars import dir_, file, hardlink, make_tar, symlink

from rootless.errors import ImageError
from rootless.image.rootfs import (
    CopyLayer,
    detect_driver,
    materialise,
    plan_fuse_overlayfs,
    plan_overlay,
)
from rootless.image.unpack import unpack_layer


def test_plan_overlay_orders_top_first() -> None:
    plan = plan_overlay(
        [Path("/s/l0"), Path("/s/l1"), Path("/s/l2")], Path("/c/u"), Path("/c/w"), Path("/c/m")
    )
    assert plan.fstype == "overlay"
    assert plan.options == "lowerdir=/s/l2:/s/l1:/s/l0,upperdir=/c/u,workdir=/c/w,userxattr"
    assert plan.target == Path("/c/m")
    plain = plan_overlay([Path("/a")], Path("/u"), Path("/w"), Path("/m"), userxattr=False)
    assert plain.options == "lowerdir=/a,upperdir=/u,workdir=/w"


def test_plan_overlay_escapes_and_limits() -> None:
    plan = plan_overlay([Path("/a:b,c")], Path("/u"), Path("/w"), Path("/m"))
    assert plan.options.startswith(r"lowerdir=/a\:b\,c,")
    with pytest.raises(ImageError, match="cannot mount an overlay of 100 layers"):
        plan_overlay([Path("/x" * 30)] * 100, Path("/u"), Path("/w"), Path("/m"))
    with pytest.raises(ImageError, match="the image has no layers"):
        plan_overlay([], Path("/u"), Path("/w"), Path("/m"))


def test_plan_fuse_overlayfs() -> None:
    argv = plan_fuse_overlayfs([Path("/l0"), Path("/l1")], Path("/u"), Path("/w"), Path("/m"))
    assert argv == ["fuse-overlayfs", "-o", "lowerdir=/l1:/l0,upperdir=/u,workdir=/w", "/m"]


def test_detect_driver_falls_back() -> None:
    def broken() -> None:
        raise OSError(1, "Operation not permitted")

    def works() -> None:
        pass

    choice = detect_driver([("overlay", broken), ("fuse-overlayfs", works)], which=lambda _: "/x")
    assert choice.driver == "fuse-overlayfs"
    assert choice.reasons == ("overlay: [Errno 1] Operation not permitted",)
    choice = detect_driver([("overlay", broken), ("fuse-overlayfs", works)], which=lambda _: None)
    assert choice.driver == "copy"
    assert choice.reasons[1] == "fuse-overlayfs: not installed"
    assert detect_driver([("overlay", works)]).driver == "overlay"


def layer(tmp_path: Path, name: str, entries: list) -> CopyLayer:  # type: ignore[type-arg]
    diff = tmp_path / name / "diff"
    diff.mkdir(parents=True)
    info = unpack_layer(io.BytesIO(make_tar(entries)), diff)
    return CopyLayer(diff, info.opaque_dirs)


def tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = p.read_text()
    return out


def test_copy_driver_applies_whiteouts_and_opaque(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched")
    base = layer(
        tmp_path,
        "l0",
        [
            dir_("etc/"),
            file("etc/a", b"a0"),
            file("etc/gone", b"g"),
            dir_("opq/"),
            file("opq/old", b"o"),
            symlink("lnk", str(outside)),
            file("bin/tool", b"t", mode=0o755, mtime=1_234_567),
            hardlink("bin/tool2", "bin/tool"),
        ],
    )
    top = layer(
        tmp_path,
        "l1",
        [
            file("etc/a", b"a1"),
            file("etc/.wh.gone"),
            dir_("opq/"),
            file("opq/.wh..wh..opq"),
            file("opq/new", b"n"),
            file("lnk/sentinel", b"pwned"),  # a directory replaces the lower symlink
            dir_("ro/", mode=0o555),
            file("ro/f", b"r"),
        ],
    )
    target = tmp_path / "rootfs"
    target.mkdir()
    materialise([base, top], target)
    assert tree(target) == {
        "bin": "dir",
        "bin/tool": "t",
        "bin/tool2": "t",
        "etc": "dir",
        "etc/a": "a1",
        "lnk": "dir",
        "lnk/sentinel": "pwned",
        "opq": "dir",
        "opq/new": "n",
        "ro": "dir",
        "ro/f": "r",
    }
    assert (outside / "sentinel").read_text() == "untouched"
    st = (target / "bin/tool").stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_mtime == 1_234_567
    assert st.st_ino == (target / "bin/tool2").stat().st_ino
    assert stat.S_IMODE((target / "ro").stat().st_mode) == 0o555
    with pytest.raises(OSError):
        os.getxattr(target / "opq", "user.overlay.opaque")


def test_copy_driver_opaque_root(tmp_path: Path) -> None:
    base = layer(tmp_path, "l0", [file("a", b"1"), dir_("d/"), file("d/x", b"2")])
    top = layer(tmp_path, "l1", [file(".wh..wh..opq"), file("b", b"3")])
    target = tmp_path / "rootfs"
    target.mkdir()
    materialise([base, top], target)
    assert tree(target) == {"b": "3"}
