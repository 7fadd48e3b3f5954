"""Layers written from real overlay upper directories (and copy-driver trees), read back.

Each test runs a script as root of the user's namespace (``python -m rootless
unshare``): it builds a lower layer with several owners, mounts kernel overlayfs
with ``userxattr``, changes the merged view (deletes, replaces a directory
wholesale, adds hardlinks, fifos, symlinks, files of other owners), writes the
upper as a layer tar, unpacks that tar with the project's unpack into a fresh
layer, mounts lower + new layer, and compares the two merged views.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import podman_env, stop_podman

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, os, shutil, stat, subprocess, sys
from pathlib import Path
sys.path.insert(0, REPO)
from rootless.image.layerdiff import DirDiff, UpperDir, write_layer
from rootless.image.unpack import UnpackOptions, unpack_layer

base = Path(BASE)
lower, upper, work, merged = (base / n for n in ("lower", "upper", "work", "merged"))
for d in (lower, upper, work, merged):
    d.mkdir()

def put(path, data=b"", mode=0o644, owner=(0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.chown(path, *owner)

put(lower / "etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
put(lower / "etc/motd", b"hello\n")
put(lower / "etc/keep", b"kept\n", 0o600, (1000, 1000))
put(lower / "var/cache/a", b"a")
put(lower / "var/cache/sub/b", b"b")
put(lower / "srv/www/index.html", b"<p>", 0o644, (33, 33))
os.chown(lower / "srv/www", 33, 33)
os.chmod(lower / "var", 0o1777)
os.symlink("passwd", lower / "etc/pw")
# An old time everywhere below, so a wrong mtime in the layer shows in the views.
for d, dirs, files in os.walk(lower, topdown=False):
    for n in dirs + files:
        os.utime(os.path.join(d, n), (1_600_000_000, 1_600_000_000), follow_symlinks=False)

def change(root):
    """What a RUN step might do, applied to the merged view (or a copy-driver tree)."""
    os.unlink(root / "etc/motd")
    shutil.rmtree(root / "var/cache")
    (root / "var/cache").mkdir()
    put(root / "var/cache/fresh", b"new cache")
    put(root / "etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    put(root / "home/app/.profile", b"export A=1\n", 0o640, (1000, 1000))
    os.chown(root / "home/app", 1000, 1000)
    os.chmod(root / "home/app", 0o750)
    os.link(root / "home/app/.profile", root / "home/app/profile-link")
    os.mkfifo(root / "home/app/pipe")
    os.symlink("../etc/passwd", root / "home/pw-link")
    os.chmod(root / "srv/www/index.html", 0o600)
    os.setxattr(root / "home/app/.profile", "user.note", b"kept")
    os.unlink(root / "etc/pw")

def view(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISREG(st.st_mode):
                what = open(p, "rb").read().decode()
            elif stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(p)
            else:
                what = stat.filemode(st.st_mode)[0]
            xattrs = sorted(k for k in os.listxattr(p, follow_symlinks=False)
                            if not k.startswith("user.overlay."))
            out[rel] = [what, oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid,
                        int(st.st_mtime), xattrs]
    links = {}
    for rel in out:
        st = os.lstat(os.path.join(root, rel))
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            links.setdefault(st.st_ino, []).append(rel)
    return out, sorted(sorted(v) for v in links.values())

def mount(lowers, target, up=None, wk=None):
    opts = "lowerdir=" + ":".join(str(p) for p in reversed(lowers))
    if up is not None:
        opts += f",upperdir={up},workdir={wk}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts + ",userxattr", str(target)],
                   check=True)

if MODE == "upper":
    mount([lower], merged, upper, work)
    change(merged)
    want = view(merged)
    subprocess.run(["umount", str(merged)], check=True)
    source = UpperDir(upper)
else:
    subprocess.run(["cp", "-a", str(lower), str(base / "copy")], check=True)
    change(base / "copy")
    want = view(base / "copy")
    source = DirDiff(lower, base / "copy")

with open(base / "layer.tar", "wb") as f:
    write_layer(source, f)
layer = base / "layer"
layer.mkdir()
with open(base / "layer.tar", "rb") as f:
    info = unpack_layer(f, layer, UnpackOptions(preserve_owner=True))
check = base / "check"
check.mkdir()
mount([lower, layer], check)
got = view(check)
print(json.dumps({"want": want, "got": got, "opaque": list(info.opaque_dirs)}))
'''


def run_in_userns(tmp_path: Path, mode: str) -> dict[str, object]:
    script = tmp_path / "script.py"
    script.write_text(f"REPO = {str(REPO)!r}\nBASE = {str(tmp_path / 'w')!r}\nMODE = {mode!r}\n")
    script.write_text(script.read_text() + SCRIPT)
    (tmp_path / "w").mkdir()
    # The script mounts inside the unshare's own mount namespace: gone when it exits.
    result = subprocess.run(
        [sys.executable, "-m", "rootless", "unshare", sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Files owned by subordinate ids can only be removed from inside the namespace.
    subprocess.run(
        [sys.executable, "-m", "rootless", "unshare", "rm", "-rf", str(tmp_path / "w")],
        cwd=REPO,
        check=False,
    )
    shutil.rmtree(tmp_path, ignore_errors=True)


def layer_members(tmp_path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tmp_path / "w" / "layer.tar") as tf:
        return {m.name: m for m in tf.getmembers()}


def test_overlay_upper_round_trip(work: Path) -> None:
    out = run_in_userns(work, "upper")
    assert out["got"] == out["want"]
    members = layer_members(work)
    # Deletions are whiteouts, the replaced directory is opaque, owners are container ids.
    assert "etc/.wh.motd" in members
    assert "etc/.wh.pw" in members
    assert "var/cache/.wh..wh..opq" in members
    assert "var/cache/sub" not in members
    assert members["home/app/.profile"].uid == 1000
    assert members["home/app/.profile"].pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert members["home/app/profile-link"].islnk()
    assert members["home/app/pipe"].isfifo()
    assert members["var"].mode == 0o1777
    assert not any(name.startswith("srv/www/") and name != "srv/www/index.html" for name in members)
    assert out["opaque"] == ["var/cache"]
    want = dict(out["want"][0])  # type: ignore[index]
    assert "etc/motd" not in want and "var/cache/sub" not in want
    assert want["srv/www/index.html"][2] == 33


def test_copy_driver_diff_round_trip(work: Path) -> None:
    out = run_in_userns(work, "copy")
    assert out["got"] == out["want"]
    members = layer_members(work)
    assert "etc/.wh.motd" in members
    assert "var/cache/.wh.sub" in members and "var/cache/.wh.a" in members
    # Unchanged entries stay out; the unchanged parents of changed ones are written.
    assert "etc/keep" not in members
    assert "srv" in members and members["srv/www"].uid == 33
    assert "srv/www/index.html" in members


# -- archives through podman -------------------------------------------------------


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Runs podman as this unprivileged user with private storage (conftest's podman_env)."""
    env, short = podman_env(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=env, capture_output=True, text=True, check=False
        )

    yield run
    stop_podman(env, short)


def test_podman_loads_what_we_save_and_we_load_what_it_saves(
    tmp_path: Path, podman: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    from rootless.image.archive import load, save
    from rootless.image.commit import commit_image
    from rootless.image.layerdiff import WholeTree
    from rootless.image.store import Store

    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("ours\n")
    store = Store(tmp_path / "store")
    image = commit_image(
        store, parent=None, layer=WholeTree(root), changes=["ENV FROM=rootless"],
        names=["localhost/ours:1"],
    )  # fmt: skip
    for fmt in ("docker-archive", "oci-archive"):
        out = tmp_path / f"{fmt}.tar"
        save(store, ["localhost/ours:1"], out, fmt=fmt)
        loaded = podman("load", "-q", "-i", str(out))
        assert loaded.returncode == 0, loaded.stderr
        info = podman("image", "inspect", "localhost/ours:1")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)[0]["Id"] == image.id[7:]
    for fmt in ("docker-archive", "oci-archive"):
        out = tmp_path / f"podman-{fmt}.tar"
        saved = podman("save", "-q", "--format", fmt, "-o", str(out), "localhost/ours:1")
        assert saved.returncode == 0, saved.stderr
        other = Store(tmp_path / f"other-{fmt}")
        (back,) = load(other, out)
        assert [x.diff_id for x in back.layers] == [x.diff_id for x in image.layers]
        assert other.image_config(back).config.env == ("FROM=rootless",)
        assert (other.layer_dir(back.layers[0].diff_id) / "etc/hostname").read_text() == "ours\n"
        assert "localhost/ours:1" in back.names
