"""Layers unpacked by rootless, seen through the kernel: owners in a user namespace,
kernel overlayfs and fuse-overlayfs honouring our whiteouts and opaque directories.

Uses util-linux ``unshare`` (``--map-auto`` maps the subordinate range) so these
tests stand on their own, apart from the runtime's user-namespace runner.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rootless.image.rootfs import (
    CopyLayer,
    check_probe_view,
    materialise,
    plan_fuse_overlayfs,
    plan_overlay,
    probe_layers,
)
from rootless.image.unpack import unpack_layer

REPO = Path(__file__).resolve().parents[2]
USERNS = ["unshare", "--user", "--map-root-user", "--map-auto", "--mount"]


def tar(entries: list[tuple[str, bytes, str, int]]) -> bytes:
    """(name, type, data or symlink target, uid) entries into a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, uid in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.uid = info.gid = uid
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            if kind == tarfile.SYMTYPE:
                info.linkname = data.decode()
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


def in_userns(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*USERNS, sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n{code}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )


def subordinate_uid_base() -> int:
    name = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
    for line in Path("/etc/subuid").read_text().splitlines():
        user, start, _ = line.split(":")
        if user in (name, str(os.getuid())):
            return int(start)
    pytest.fail(f"no subordinate uid range for {name} in /etc/subuid")


def test_unpack_in_userns_keeps_owners(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(
        tar(
            [
                ("root-file", tarfile.REGTYPE, b"r", 0),
                ("www", tarfile.DIRTYPE, b"", 33),
                ("www/index", tarfile.REGTYPE, b"i", 1000),
                ("link", tarfile.SYMTYPE, b"www/index", 1000),
            ]
        )
    )
    diff = tmp_path / "diff"
    diff.mkdir()
    code = (
        "from pathlib import Path\n"
        "from rootless.image.unpack import UnpackOptions, unpack_layer\n"
        f"with open({str(layer)!r}, 'rb') as f:\n"
        f"    unpack_layer(f, Path({str(diff)!r}), UnpackOptions(preserve_owner=True))\n"
    )
    try:
        result = in_userns(tmp_path, code)
        assert result.returncode == 0, result.stderr
        base = subordinate_uid_base()
        assert (diff / "root-file").stat().st_uid == os.getuid()
        assert (diff / "www").stat().st_uid == base + 32
        assert (diff / "www/index").stat().st_uid == base + 999
        assert (diff / "link").lstat().st_uid == base + 999
    finally:
        # Files owned by subordinate ids can only be removed from inside.
        in_userns(tmp_path, f"import shutil; shutil.rmtree({str(diff)!r})")
    assert not diff.exists()


def unpacked(tmp_path: Path, name: str, entries: list[tuple[str, bytes, str, int]]) -> CopyLayer:
    diff = tmp_path / name
    diff.mkdir()
    info = unpack_layer(io.BytesIO(tar(entries)), diff)
    return CopyLayer(diff, info.opaque_dirs)


def two_layers(tmp_path: Path) -> list[CopyLayer]:
    r, d = tarfile.REGTYPE, tarfile.DIRTYPE
    me = os.getuid()
    base = unpacked(
        tmp_path,
        "l0",
        [
            ("etc", d, b"", me),
            ("etc/a", r, b"a0", me),
            ("etc/gone", r, b"g", me),
            ("opq", d, b"", me),
            ("opq/old", r, b"o", me),
        ],
    )
    top = unpacked(
        tmp_path,
        "l1",
        [
            ("etc/a", r, b"a1", me),
            ("etc/.wh.gone", r, b"", me),
            ("opq", d, b"", me),
            ("opq/.wh..wh..opq", r, b"", me),
            ("opq/new", r, b"n", me),
        ],
    )
    return [base, top]


def view_code(mount: str, merged: Path) -> str:
    return (
        "import subprocess, json, os\n"
        f"subprocess.run({mount}, check=True)\n"
        f"root = {str(merged)!r}\n"
        "out = {}\n"
        "for d, dirs, files in os.walk(root):\n"
        "    for n in dirs + files:\n"
        "        p = os.path.join(d, n)\n"
        "        out[os.path.relpath(p, root)] = 'dir' if os.path.isdir(p) else open(p).read()\n"
        "print(json.dumps(out, sort_keys=True))\n"
    )


def copy_view(layers: list[CopyLayer], target: Path) -> str:
    import json

    target.mkdir()
    materialise(layers, target)
    out = {}
    for d, dirs, files in os.walk(target):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, target)] = "dir" if os.path.isdir(p) else Path(p).read_text()
    return json.dumps(out, sort_keys=True)


def test_overlay_and_copy_driver_agree(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    for d in ("upper", "work", "merged"):
        (tmp_path / d).mkdir()
    plan = plan_overlay(
        [layer.diff for layer in layers], tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    )
    mount = ["mount", "-t", plan.fstype, plan.source, "-o", plan.options, str(plan.target)]
    result = in_userns(tmp_path, view_code(repr(mount), plan.target))
    assert result.returncode == 0, result.stderr
    expected = '{"etc": "dir", "etc/a": "a1", "opq": "dir", "opq/new": "n"}'
    assert result.stdout.strip() == expected
    assert copy_view(layers, tmp_path / "copy") == expected


@pytest.mark.skipif(
    shutil.which("fuse-overlayfs") is None or not os.access("/dev/fuse", os.R_OK | os.W_OK),
    reason="fuse-overlayfs not installed or /dev/fuse not usable by this user",
)
def test_fuse_overlayfs_reads_our_layers(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    for d in ("upper", "work", "merged"):
        (tmp_path / d).mkdir()
    argv = plan_fuse_overlayfs(
        [layer.diff for layer in layers], tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    )
    result = in_userns(tmp_path, view_code(repr(argv), tmp_path / "merged"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"etc": "dir", "etc/a": "a1", "opq": "dir", "opq/new": "n"}'


def test_overlay_probe(tmp_path: Path) -> None:
    lowers, upper, work, merged = probe_layers(tmp_path / "probe")
    plan = plan_overlay(lowers, upper, work, merged)
    code = (
        "import subprocess\n"
        "from pathlib import Path\n"
        "from rootless.image.rootfs import check_probe_view\n"
        f"subprocess.run(['mount', '-t', 'overlay', 'overlay', '-o', {plan.options!r},"
        f" {str(merged)!r}], check=True)\n"
        f"check_probe_view(Path({str(merged)!r}))\n"
    )
    result = in_userns(tmp_path, code)
    assert result.returncode == 0, result.stderr
    # Without the overlay the probe view is wrong, so the check is not vacuous.
    with pytest.raises(Exception, match="overlay probe: merged view shows"):
        check_probe_view(lowers[0])
