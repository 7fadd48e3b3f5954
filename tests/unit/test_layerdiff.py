"""Layer tars from directories: format, whiteouts, diffs, determinism, the compressing sink."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from rootless.errors import ImageError
from rootless.image._tar import TarReader
from rootless.image.layerdiff import (
    DiffOptions,
    DirDiff,
    LayerSink,
    TarEntry,
    UpperDir,
    WholeTree,
    tar_header,
    write_layer,
)
from rootless.image.unpack import unpack_layer


def layer(source: UpperDir | DirDiff | WholeTree, options: DiffOptions | None = None) -> bytes:
    out = io.BytesIO()
    write_layer(source, out, options or DiffOptions())
    return out.getvalue()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"\x7fELF" + bytes(5000))
    (root / "bin/tool").chmod(0o4755)
    os.link(root / "bin/tool", root / "bin/tool2")
    os.symlink("tool", root / "bin/alias")
    os.mkfifo(root / "fifo")
    (root / ("d" * 120)).mkdir()
    (root / ("d" * 120) / "é-long").write_text("x")
    return root


def test_header_round_trips_through_both_readers() -> None:
    entry = TarEntry(
        "a/" + "n" * 150,
        b"0",
        0o755,
        uid=3_000_000,
        gid=7,
        mtime=1_700_000_000,
        size=0,
        xattrs=(("user.k", b"v\x00w"),),
    )
    data = tar_header(entry) + bytes(1024)
    info = members(data)["a/" + "n" * 150]
    assert (info.uid, info.gid, info.mode, info.mtime) == (3_000_000, 7, 0o755, 1_700_000_000)
    header = next(iter(TarReader(io.BytesIO(data))))
    assert header.name == "a/" + "n" * 150
    assert header.uid == 3_000_000
    assert header.xattrs == {"user.k": b"v\x00w"}


def test_whole_tree_entries_types_and_order(tmp_path: Path) -> None:
    data = layer(WholeTree(tree(tmp_path / "t")))
    got = members(data)
    assert names(data) == sorted(names(data), key=lambda n: n.split("/"))
    assert got["bin/tool"].mode == 0o4755 and got["bin/tool"].size == 5004
    assert got["bin/tool2"].islnk() and got["bin/tool2"].linkname == "bin/tool"
    assert got["bin/alias"].issym() and got["bin/alias"].linkname == "tool"
    assert got["fifo"].isfifo()
    assert got["d" * 120].isdir()
    assert got[("d" * 120) + "/é-long"].size == 1
    # GNU tar reads it too, and extracts the same content.
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xf", "-", "-C", str(out)], input=data, check=True)
    assert (out / "bin/tool").read_bytes() == (tmp_path / "t/bin/tool").read_bytes()
    assert os.readlink(out / "bin/alias") == "tool"


def test_sockets_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "t/sock"))
        assert names(layer(WholeTree(tmp_path / "t"))) == []
    finally:
        sock.close()


def test_same_tree_same_bytes_and_normalised_metadata(tmp_path: Path) -> None:
    root = tree(tmp_path / "t")
    first = layer(WholeTree(root))
    assert layer(WholeTree(root)) == first
    clamped = members(layer(WholeTree(root), DiffOptions(mtime_clamp=1000, owner=(5, 6))))
    assert {(m.mtime, m.uid, m.gid) for m in clamped.values()} == {(1000, 5, 6)}
    assert all(m.uname == "" for m in clamped.values())


def test_xattrs_kept_except_overlay_ones(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    f = tmp_path / "t/f"
    f.write_text("x")
    os.setxattr(f, "user.note", b"yes")
    os.setxattr(f, "user.overlay.origin", b"zzz")
    got = members(layer(WholeTree(tmp_path / "t")))["f"].pax_headers
    assert got == {"SCHILY.xattr.user.note": "yes"}
    plain = members(layer(WholeTree(tmp_path / "t"), DiffOptions(xattrs=False)))["f"]
    assert plain.pax_headers == {}


def test_upper_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    whiteout(upper / "etc/motd")
    (upper / "etc/new").write_text("n")
    (upper / "var/cache").mkdir(parents=True)
    os.setxattr(upper / "var/cache", "user.overlay.opaque", b"y")
    (upper / "var/cache/fresh").write_text("f")
    (upper / "fuse").mkdir()  # fuse-overlayfs's forms: marker files
    (upper / "fuse/.wh.gone").write_text("")
    (upper / "fuse/.wh..wh..opq").write_text("")
    data = layer(UpperDir(upper))
    assert names(data) == [
        "etc",
        "etc/.wh.motd",
        "etc/new",
        "fuse",
        "fuse/.wh..wh..opq",
        "fuse/.wh.gone",
        "var",
        "var/cache",
        "var/cache/.wh..wh..opq",
        "var/cache/fresh",
    ]
    assert members(data)["var/cache"].pax_headers == {}  # overlay's xattr is not copied


def test_upper_with_redirects_is_refused(tmp_path: Path) -> None:
    (tmp_path / "upper/moved").mkdir(parents=True)
    os.setxattr(tmp_path / "upper/moved", "user.overlay.redirect", b"/old")
    with pytest.raises(ImageError, match=r"user\.overlay\.redirect"):
        layer(UpperDir(tmp_path / "upper"))


def test_upper_layer_unpacks_to_the_same_layer(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "a/b").mkdir(parents=True)
    (upper / "a/b/f").write_text("data")
    whiteout(upper / "a/gone")
    os.setxattr(upper / "a/b", "user.overlay.opaque", b"y")
    out = tmp_path / "out"
    out.mkdir()
    info = unpack_layer(io.BytesIO(layer(UpperDir(upper))), out)
    assert info.opaque_dirs == ("a/b",)
    assert (out / "a/b/f").read_text() == "data"
    st = os.lstat(out / "a/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(out / "a/b", "user.overlay.opaque") == b"y"


def test_directory_diff(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower")
    new = tmp_path / "new"
    subprocess.run(["cp", "-a", str(lower), str(new)], check=True)
    (new / "etc/hosts").write_text("changed\n")
    (new / "etc/added").write_text("a")
    (new / "fifo").unlink()
    (new / "bin/tool").chmod(0o755)  # metadata only: the whole file is written again
    (new / "newdir/sub").mkdir(parents=True)
    (new / "newdir/sub/x").write_text("x")
    data = layer(DirDiff(lower, new))
    assert names(data) == [
        ".wh.fifo",
        "bin",
        "bin/tool",
        "bin/tool2",
        "etc",
        "etc/added",
        "etc/hosts",
        "newdir",
        "newdir/sub",
        "newdir/sub/x",
    ]
    # The chmod changed the inode both names share: the second is a link to the first.
    assert members(data)["bin/tool"].isfile()
    assert members(data)["bin/tool2"].linkname == "bin/tool"


def test_directory_diff_of_identical_trees_is_empty(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower")
    new = tmp_path / "new"
    subprocess.run(["cp", "-a", str(lower), str(new)], check=True)
    assert names(layer(DirDiff(lower, new))) == []


def test_directory_diff_type_change(tmp_path: Path) -> None:
    (tmp_path / "lower/x").mkdir(parents=True)
    (tmp_path / "lower/x/inner").write_text("i")
    (tmp_path / "new").mkdir()
    (tmp_path / "new/x").write_text("now a file")
    assert names(layer(DirDiff(tmp_path / "lower", tmp_path / "new"))) == ["x"]


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_sink_digests(tmp_path: Path, compression: str) -> None:
    root = tree(tmp_path / "t")
    (root / "big").write_bytes(os.urandom(3 << 20))
    plain = layer(WholeTree(root))
    sink = LayerSink(tmp_path, compression)  # type: ignore[arg-type]
    entries = write_layer(WholeTree(root), sink)
    blob = sink.finish(entries)
    stored = blob.path.read_bytes()
    assert blob.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert blob.digest == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert blob.size == len(stored)
    assert blob.entries == len(names(plain))
    if compression == "gzip":
        assert gzip.decompress(stored) == plain
    elif compression == "zstd":
        assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == plain
    else:
        assert stored == plain


def test_sink_abort_removes_the_file(tmp_path: Path) -> None:
    sink = LayerSink(tmp_path)
    sink.write(b"x" * (2 << 20))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="unknown layer compression 'lz4'"):
        LayerSink(tmp_path, "lz4")  # type: ignore[arg-type]
