import hashlib
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _tars import dir_, file, make_tar, symlink

from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.reference import parse_reference
from rootless.image.store import Store


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add_image(store: Store, layers: list[bytes], *, cmd: str = "x") -> tuple[str, str]:
    """Store the blobs of an image of ``layers`` (gzip tars); return manifest and config digest."""
    raw_tars = [make_tar_of(layer) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in raw_tars]},
        }
    ).encode()
    config_digest = store.add_blob_bytes(config)
    descs = []
    for layer in layers:
        descs.append(
            {
                "mediaType": mt.OCI_LAYER_GZIP,
                "digest": store.add_blob_bytes(layer),
                "size": len(layer),
            }
        )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": descs,
        }
    ).encode()
    manifest_digest = store.add_blob_bytes(manifest)
    return manifest_digest, config_digest


def make_tar_of(gz: bytes) -> bytes:
    import gzip

    return gzip.decompress(gz)


BASE = make_tar(
    [dir_("etc/"), file("etc/os-release", b"base\n"), file("bin/sh", b"sh", mode=0o755)], "gzip"
)
TOP = make_tar([file("etc/.wh.os-release"), file("app", b"app")], "gzip")


def files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_blob_roundtrip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    digest = store.add_blob_bytes(b"hello")
    assert digest == sha(b"hello")
    assert store.has_blob(digest)
    assert store.blob_path(digest) == tmp_path / "blobs/sha256" / digest[7:]
    assert store.read_blob(digest) == b"hello"
    assert os.listdir(tmp_path / "tmp") == []


def test_blob_digest_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    want = sha(b"expected")
    with pytest.raises(ImageError) as info, store.blob_writer(want, 8) as w:
        w.write(b"tampered")
    assert info.value.message == (
        f"cannot store blob {want}: digest mismatch: the data hashes to {sha(b'tampered')}"
    )
    assert not store.has_blob(want)
    assert os.listdir(tmp_path / "tmp") == []


def test_blob_size_mismatch(tmp_path: Path) -> None:
    store = Store(tmp_path)
    want = sha(b"abc")
    with pytest.raises(ImageError) as info, store.blob_writer(want, 4) as w:
        w.write(b"abc")
    assert (
        info.value.message
        == f"cannot store blob {want}: size mismatch: expected 4 bytes, received 3"
    )
    with pytest.raises(ImageError) as info, store.blob_writer(want, 2) as w:
        w.write(b"abc")
    assert info.value.message == (
        f"cannot store blob {want}: size mismatch: more than the 2 bytes expected"
    )
    assert not store.has_blob(want)
    assert os.listdir(tmp_path / "tmp") == []


def test_blob_error_in_block_removes_temp(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.blob_writer(sha(b"x")) as w:
        w.write(b"x")
        raise RuntimeError("connection dropped")
    assert os.listdir(tmp_path / "tmp") == []
    assert not store.has_blob(sha(b"x"))


def test_bad_digest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=re.escape("invalid digest 'sha256:../../etc'")):
        Store(tmp_path).blob_path("sha256:../../etc")


def test_record_lookup_tag_untag_remove(tmp_path: Path) -> None:
    store = Store(tmp_path)
    manifest, config = add_image(store, [BASE, TOP])
    rec = store.record_image(manifest, names=["localhost/app:1"])
    assert rec.id == config
    assert rec.names == ("localhost/app:1",)
    assert [layer.digest for layer in rec.layers] == [sha(BASE), sha(TOP)]
    # lookups: name, reference, id, short id, digest
    assert store.lookup_image("localhost/app:1") == rec
    assert store.lookup_image(parse_reference("localhost/app:1")) == rec
    assert store.lookup_image(config) == rec
    assert store.lookup_image(rec.short_id) == rec
    assert store.lookup_image(f"localhost/app@{manifest}") == rec
    assert store.image_config(rec).config.cmd == ("x",)
    # layers are unpacked, whiteouts kept as whiteouts
    top = store.layer_dir(rec.layers[1].diff_id)
    assert files_in(top) == ["app", "etc", "etc/os-release"]
    assert os.stat(top / "etc/os-release", follow_symlinks=False).st_rdev == 0
    store.tag("localhost/app:1", "busybox")
    assert store.lookup_image("busybox").names == (
        "docker.io/library/busybox:latest",
        "localhost/app:1",
    )
    store.untag("localhost/app:1")
    with pytest.raises(ImageError) as info:
        store.lookup_image("localhost/app:1")
    assert info.value.message == "localhost/app:1: image not known"
    with pytest.raises(ImageError, match="localhost/app:1: no image has this name"):
        store.untag("localhost/app:1")
    assert [i.id for i in store.list_images()] == [rec.id]
    store.remove_image("busybox")
    assert store.list_images() == []
    assert os.listdir(tmp_path / "layers") == []
    assert os.listdir(tmp_path / "blobs/sha256") == []


def test_tag_moves_between_images(tmp_path: Path) -> None:
    store = Store(tmp_path)
    m1, c1 = add_image(store, [BASE], cmd="one")
    m2, c2 = add_image(store, [BASE], cmd="two")
    store.record_image(m1, names=["localhost/app:1"])
    store.record_image(m2, names=["localhost/app:1"])
    assert store.lookup_image("localhost/app:1").id == c2
    assert store.lookup_image(c1).names == ()
    # the shared layer is unpacked once
    assert len(os.listdir(tmp_path / "layers")) == 1


def test_gc_keeps_referenced_and_clears_orphans(tmp_path: Path) -> None:
    store = Store(tmp_path)
    manifest, _ = add_image(store, [BASE])
    store.record_image(manifest, names=["localhost/app:1"])
    orphan = store.add_blob_bytes(b"orphan")
    (tmp_path / "tmp" / "blob-left-by-a-killed-pull").write_bytes(b"x")
    half = tmp_path / "tmp" / "layer-half"
    (half / "diff" / "ro").mkdir(parents=True)
    (half / "diff" / "ro" / "f").write_bytes(b"")
    os.chmod(half / "diff" / "ro", 0o555)
    report = store.gc()
    assert (report.blobs, report.temp) == (1, 2)
    assert not store.has_blob(orphan)
    assert os.listdir(tmp_path / "tmp") == []
    assert store.lookup_image("localhost/app:1")
    assert store.has_blob(manifest)


def test_gc_waits_for_sessions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    digest = store.add_blob_bytes(b"fresh")
    with store.session():
        assert store.gc(wait=False).skipped
    assert store.has_blob(digest)
    assert store.gc(wait=False).blobs == 1


def test_hostile_layer_leaves_no_visible_layer(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_bytes(b"untouched")
    store = Store(tmp_path / "store")
    evil = make_tar([symlink("x", str(outside)), file("x/sentinel", b"pwned")], "gzip")
    manifest, _ = add_image(store, [BASE, evil])
    with pytest.raises(ImageError, match="would be written through 'x', which is a symlink"):
        store.record_image(manifest, names=["localhost/evil:1"])
    assert (outside / "sentinel").read_bytes() == b"untouched"
    assert store.list_images() == []
    assert not store.has_layer(sha(make_tar_of(evil)))
    assert os.listdir(tmp_path / "store" / "tmp") == []
    store.gc()
    assert os.listdir(tmp_path / "store" / "blobs" / "sha256") == []
    assert os.listdir(tmp_path / "store" / "layers") == []


def test_diff_id_mismatch(tmp_path: Path) -> None:
    store = Store(tmp_path)
    blob = store.add_blob_bytes(BASE)
    wrong = sha(b"not this")
    with pytest.raises(ImageError) as info:
        store.ensure_layer(blob, mt.OCI_LAYER_GZIP, wrong)
    assert info.value.message == (
        f"cannot unpack layer {blob}: its tar stream hashes to {sha(make_tar_of(BASE))} "
        f"but the image config says {wrong}"
    )
    assert os.listdir(tmp_path / "layers") == []
    assert os.listdir(tmp_path / "tmp") == []


# -- several processes ----------------------------------------------------------


def _pull(root: str, start: float) -> None:
    store = Store(Path(root))
    while time.time() < start:
        time.sleep(0.001)
    with store.session():
        manifest, _ = add_image(store, [BASE, TOP])
        store.record_image(manifest, names=["localhost/app:1"])


def test_ten_concurrent_pulls(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = time.time() + 1.5
    procs = [ctx.Process(target=_pull, args=(str(tmp_path), start)) for _ in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(tmp_path)
    images = store.list_images()
    assert len(images) == 1 and images[0].names == ("localhost/app:1",)
    assert len(os.listdir(tmp_path / "blobs/sha256")) == 4  # manifest, config, two layers
    assert len(os.listdir(tmp_path / "layers")) == 2
    assert os.listdir(tmp_path / "tmp") == []


_KILLED_WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from rootless.image.store import Store
store = Store(Path(sys.argv[1]))
with store.session(), store.blob_writer("sha256:" + "0" * 64, 10**9) as w:
    w.write(b"x" * 1000)
    print("writing", flush=True)
    time.sleep(60)
"""


def test_sigkill_mid_blob_then_gc(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), str(root)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(os.listdir(tmp_path / "tmp")) == 1  # the partial blob, never visible
    assert os.listdir(tmp_path / "blobs/sha256") == []
    store = Store(tmp_path)
    assert store.gc(wait=False).temp == 1  # the killed writer's lock died with it
    manifest, _ = add_image(store, [BASE])
    store.record_image(manifest, names=["localhost/app:1"])
    assert os.listdir(tmp_path / "tmp") == []
