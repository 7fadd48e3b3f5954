import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from _tars import Entry, dir_, file, hardlink, make_tar, symlink

from rootless.errors import ImageError
from rootless.image.unpack import OPAQUE_XATTR, LayerInfo, UnpackOptions, unpack_layer


def unpack(tmp_path: Path, data: bytes, **opts: object) -> tuple[Path, LayerInfo]:
    dest = tmp_path / "layer" / "diff"
    dest.mkdir(parents=True)
    info = unpack_layer(io.BytesIO(data), dest, UnpackOptions(**opts), what="test")  # type: ignore[arg-type]
    return dest, info


def sample() -> list[Entry]:
    return [
        dir_("./"),
        dir_("bin/", mode=0o755, mtime=1_000_000),
        file("bin/tool", b"#!/bin/sh\n", mode=0o4755, mtime=1_100_000),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mode=0o644),  # implicit etc/
        hardlink("bin/tool2", "bin/tool"),
        symlink("bin/sh", "/bin/busybox"),
        Entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
        dir_("ro/", mode=0o555, mtime=1_200_000),
        file("ro/inside", b"x", mode=0o400),
        file("attr", b"a", pax={"SCHILY.xattr.user.note": "hello"}),
    ]


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_unpack_contents(tmp_path: Path, compression: str) -> None:
    raw = make_tar(sample())
    dest, info = unpack(tmp_path, make_tar(sample(), compression))
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert info.compression == compression
    assert info.entries == 10
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    st = (dest / "bin/tool").lstat()
    assert stat.S_IMODE(st.st_mode) == 0o4755  # setuid kept (see docs/images.md)
    assert st.st_mtime == 1_100_000
    assert st.st_nlink == 2 and (dest / "bin/tool2").lstat().st_ino == st.st_ino
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
    assert (dest / "ro").stat().st_mtime == 1_200_000
    assert (dest / "bin").stat().st_mtime == 1_000_000  # set after its children
    assert stat.S_IMODE((dest / "etc").stat().st_mode) == 0o755
    assert os.getxattr(dest / "attr", "user.note") == b"hello"


def test_whiteouts(tmp_path: Path) -> None:
    dest, info = unpack(
        tmp_path,
        make_tar(
            [
                dir_("a/"),
                file("a/.wh.gone"),
                dir_("b/"),
                file("b/.wh..wh..opq"),
                file("b/new", b"n"),
                file(".wh..wh.plnk"),  # aufs bookkeeping is skipped
                file("c/.wh..wh..opq"),
            ]
        ),
    )
    st = (dest / "a/gone").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "b", OPAQUE_XATTR) == b"y"
    assert info.opaque_dirs == ("b", "c")
    assert sorted(os.listdir(dest)) == ["a", "b", "c"]
    assert os.listdir(dest / "b") == ["new"]


def test_overlay_xattrs_from_archive_are_dropped(tmp_path: Path) -> None:
    dest, info = unpack(
        tmp_path,
        make_tar([dir_("d/", pax={"SCHILY.xattr.user.overlay.opaque": "y"}), file("d/f")]),
    )
    with pytest.raises(OSError):
        os.getxattr(dest / "d", OPAQUE_XATTR)
    assert info.opaque_dirs == ()


def test_later_entries_replace_earlier(tmp_path: Path) -> None:
    dest, _ = unpack(
        tmp_path,
        make_tar(
            [
                file("x", b"old"),
                file("x", b"new"),
                dir_("d/"),
                file("d/f"),
                symlink("d", "/elsewhere"),
                symlink("s", "/tmp"),
                file("s", b"plain"),
            ]
        ),
    )
    assert (dest / "x").read_bytes() == b"new"
    assert os.readlink(dest / "d") == "/elsewhere"
    assert (dest / "s").read_bytes() == b"plain" and not (dest / "s").is_symlink()


# -- hostile archives ----------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "sentinel").write_bytes(b"untouched")
    return out


def assert_untouched(outside: Path) -> None:
    assert os.listdir(outside) == ["sentinel"]
    assert (outside / "sentinel").read_bytes() == b"untouched"


def hostile_cases(outside: Path) -> list[tuple[list[Entry], str]]:
    o = str(outside)
    return [
        (
            [file("../outside/sentinel", b"evil")],
            "entry '../outside/sentinel' leaves the layer directory ('..')",
        ),
        (
            [file("a/../../outside/x", b"evil")],
            "entry 'a/../../outside/x' leaves the layer directory ('..')",
        ),
        ([file(f"{o}/sentinel", b"evil")], f"entry '{o}/sentinel' is an absolute path"),
        (
            [symlink("link", o), file("link/sentinel", b"evil")],
            "entry 'link/sentinel' would be written through 'link', which is a symlink",
        ),
        (
            [symlink("link", "../../outside"), dir_("link/sub/")],
            "entry 'link/sub' would be written through 'link', which is a symlink",
        ),
        (
            [dir_("d/"), symlink("d/link", o), file("d/link/new", b"evil")],
            "entry 'd/link/new' would be written through 'd/link', which is a symlink",
        ),
        (
            [symlink("link", o), file("link/.wh.sentinel")],
            "entry 'link/.wh.sentinel' would be written through 'link', which is a symlink",
        ),
        (
            [symlink("link", o), file("link/.wh..wh..opq")],
            "entry 'link/.wh..wh..opq' would be written through 'link', which is a symlink",
        ),
        (
            [symlink("link", o), hardlink("h", "link/sentinel")],
            "entry 'h' is a hardlink to 'link/sentinel', which is not an earlier entry",
        ),
        (
            [hardlink("h", "../outside/sentinel")],
            "entry 'h' is a hardlink to '../outside/sentinel', outside the layer directory",
        ),
        (
            [hardlink("h", f"{o}/sentinel")],
            f"entry 'h' is a hardlink to '{o}/sentinel', outside the layer directory",
        ),
        (
            [hardlink("h", "missing")],
            "entry 'h' is a hardlink to 'missing', which is not an earlier entry",
        ),
        (
            [Entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
            "entry 'dev/null' is a device node; "
            "layers unpacked without privilege cannot hold devices",
        ),
        (
            [Entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)],
            "entry 'dev/sda' is a device node",
        ),
        ([file(".wh...")], "entry '.wh...' is a whiteout of nothing"),
    ]


def test_hostile_archives(tmp_path: Path, outside: Path) -> None:
    for i, (entries, message) in enumerate(hostile_cases(outside)):
        case = tmp_path / f"case{i}"
        case.mkdir()
        with pytest.raises(ImageError) as info:
            unpack(case, make_tar(entries))
        assert info.value.message.startswith("refusing layer test: "), info.value.message
        assert message in info.value.message, (message, info.value.message)
        assert_untouched(outside)


def test_size_cap(tmp_path: Path) -> None:
    bomb = make_tar([file("zeros", b"\0" * (4 << 20))], "gzip")
    assert len(bomb) < 10_000
    with pytest.raises(ImageError) as info:
        unpack(tmp_path, bomb, max_bytes=1 << 20)
    assert info.value.message == "refusing layer test: it unpacks to more than 1048576 bytes"
    assert info.value.hint == "raise the unpack size limit if the image is trusted"
    assert os.listdir(tmp_path / "layer" / "diff") == []


def test_file_size_cap_checked_at_the_header(tmp_path: Path) -> None:
    # The header's size is refused before any of the data is written.
    with pytest.raises(ImageError) as info:
        unpack(tmp_path / "a", make_tar([file("big", b"x" * (2 << 20))]), max_bytes=(1 << 20) + 1)
    assert info.value.message == "refusing layer test: it unpacks to more than 1048577 bytes"
    assert os.listdir(tmp_path / "a" / "layer" / "diff") == []


def test_stream_cap(tmp_path: Path) -> None:
    # Headers alone (no file data) also count against the cap.
    many = make_tar([dir_(f"d{i}/") for i in range(600)], "gzip")
    with pytest.raises(ImageError) as info:
        unpack(tmp_path, many, max_bytes=64 << 10)
    assert info.value.message == "refusing layer test: it unpacks to more than 65536 bytes"


def test_entry_cap(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        unpack(tmp_path, make_tar([file(f"f{i}") for i in range(20)]), max_entries=10)
    assert info.value.message == "refusing layer test: more than 10 entries"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b\x08\x00garbage-garbage", "cannot read layer test: corrupt gzip data"),
        (b"BZh91AY&SY", "unsupported layer compression bzip2"),
        (b"\x28\xb5\x2f\xfdjunkjunk", "cannot read layer test: corrupt zstd data"),
        (b"x" * 1024, "cannot read layer test: bad tar archive"),
    ],
)
def test_corrupt_streams(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ImageError) as info:
        unpack(tmp_path, data)
    assert message in str(info.value)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = make_tar(sample(), "gzip")
    with pytest.raises(ImageError, match="cannot read layer test: corrupt gzip data"):
        unpack(tmp_path, data[: len(data) - 20])


def test_preserve_owner_needs_mapping(tmp_path: Path) -> None:
    me = os.getuid()
    dest, _ = unpack(
        tmp_path, make_tar([file("mine", uid=me, gid=os.getgid())]), preserve_owner=True
    )
    assert (dest / "mine").stat().st_uid == me
    if me == 0:
        pytest.skip("root may chown to any id")
    with pytest.raises(ImageError) as info:
        unpack(tmp_path / "x", make_tar([file("f", uid=me + 1, gid=0)]), preserve_owner=True)
    assert info.value.message == (
        f"cannot unpack layer test: cannot give entry 'f' owner {me + 1}:0: Operation not permitted"
    )
