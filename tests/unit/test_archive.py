"""save/load (docker-archive, oci-archive), import/export; skopeo reads and writes the archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.archive import export_rootfs, import_rootfs, load, save
from rootless.image.commit import History, commit_image
from rootless.image.layerdiff import WholeTree
from rootless.image.store import ImageRecord, Store

REPO = Path(__file__).resolve().parents[2]


def make_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=test\n")
    (root / "bin").mkdir()
    (root / "bin/app").write_bytes(b"#!/bin/sh\necho app\n")
    (root / "bin/app").chmod(0o755)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def image(store: Store, tmp_path: Path) -> ImageRecord:
    base = commit_image(
        store,
        parent=None,
        layer=WholeTree(make_tree(tmp_path / "rootfs")),
        changes=['CMD ["/bin/app"]'],
        history=History("base"),
        names=["localhost/app:1"],
    )
    top = tmp_path / "top"
    (top / "srv").mkdir(parents=True)
    (top / "srv/data").write_text("data\n")
    return commit_image(
        store,
        parent=base,
        layer=WholeTree(top),
        changes=["ENV MODE=test"],
        names=["localhost/app:2"],
    )


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: (tf.extractfile(m) or io.BytesIO()).read() for m in tf if m.isfile()}


def same_image(a: ImageRecord, b: ImageRecord) -> None:
    assert a.id == b.id
    assert [x.diff_id for x in a.layers] == [x.diff_id for x in b.layers]


def test_docker_archive_layout(store: Store, image: ImageRecord, tmp_path: Path) -> None:
    out = tmp_path / "app.tar"
    save(store, ["localhost/app:2"], out)
    files = members(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": image.id[7:] + ".json",
            "RepoTags": ["localhost/app:2"],
            "Layers": [layer.diff_id[7:] + ".tar" for layer in image.layers],
        }
    ]
    for layer in image.layers:  # layers are plain tars named by their diff ID
        assert "sha256:" + hashlib.sha256(files[layer.diff_id[7:] + ".tar"]).hexdigest() == (
            layer.diff_id
        )
    assert files[image.id[7:] + ".json"] == store.read_blob(image.id)
    assert list(tmp_path.glob(".app.tar*")) == []


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_load_round_trip(store: Store, image: ImageRecord, tmp_path: Path, fmt: Any) -> None:
    out = tmp_path / "app.tar"
    save(store, ["localhost/app:2", "localhost/app:1"], out, fmt=fmt)
    other = Store(tmp_path / "other")
    loaded = load(other, out)
    assert sorted(n for r in loaded for n in r.names) == ["localhost/app:1", "localhost/app:2"]
    same_image(other.lookup_image("localhost/app:2"), image)
    layer = other.layer_dir(image.layers[1].diff_id)
    assert (layer / "srv/data").read_text() == "data\n"
    assert other.image_config(other.lookup_image("localhost/app:2")).config.env == ("MODE=test",)
    # Loading again changes nothing and leaves no temp files.
    assert [r.id for r in load(other, out)] == [r.id for r in loaded]
    assert list((other.root / "tmp").iterdir()) == []


def test_oci_archive_index(store: Store, image: ImageRecord, tmp_path: Path) -> None:
    out = tmp_path / "app.tar"
    save(store, [image], out, fmt="oci-archive")
    files = members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert names == {"localhost/app:2"}
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    for blob in (manifest["config"], *manifest["layers"]):
        assert len(files["blobs/sha256/" + blob["digest"][7:]]) == blob["size"]


def test_docker_manifest_saved_as_oci(store: Store, image: ImageRecord, tmp_path: Path) -> None:
    docker = commit_image(store, parent=image, fmt="docker", names=["localhost/app:d"])
    out = tmp_path / "d.tar"
    save(store, ["localhost/app:d"], out, fmt="oci-archive")
    other = Store(tmp_path / "other")
    (loaded,) = load(other, out)
    assert loaded.id == docker.id
    assert loaded.manifest_media_type == mt.OCI_MANIFEST


def test_load_compressed_archive_from_a_pipe(
    store: Store, image: ImageRecord, tmp_path: Path
) -> None:
    out = tmp_path / "app.tar"
    save(store, ["localhost/app:2"], out)
    packed = gzip.compress(out.read_bytes())
    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write(packed)
    reader.stdin.close()
    other = Store(tmp_path / "other")
    (loaded,) = load(other, reader.stdout)  # type: ignore[arg-type]
    reader.wait()
    same_image(loaded, image)


def test_save_unknown_image(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="image not known"):
        save(store, ["localhost/nope:1"], tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


# -- interop with skopeo ---------------------------------------------------------


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_reads_what_we_save(
    store: Store, image: ImageRecord, tmp_path: Path, transport: Any
) -> None:
    out = tmp_path / "app.tar"
    save(store, ["localhost/app:2"], out, fmt=transport)
    result = subprocess.run(
        ["skopeo", "inspect", "--config", f"{transport}:{out}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["rootfs"]["diff_ids"] == [x.diff_id for x in image.layers]
    assert config["config"]["Env"] == ["MODE=test"]
    # skopeo copies it on into a layout, checking every digest on the way.
    copied = subprocess.run(
        ["skopeo", "copy", "--quiet", f"{transport}:{out}", f"oci:{tmp_path / 'layout'}:x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr


def oci_layout(tmp_path: Path) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.testimages import tar_rootfs, write_layout

    layers = [tar_rootfs(make_tree(tmp_path / "src"))]
    return write_layout(tmp_path / "layout", layers, {"Cmd": ["/bin/app"]})


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_we_load_what_skopeo_writes(store: Store, tmp_path: Path, transport: str) -> None:
    layout = oci_layout(tmp_path)
    out = tmp_path / "sk.tar"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"{transport}:{out}:localhost/sk:v1"],
        check=True,
    )
    (loaded,) = load(store, out)
    assert loaded.names == ("localhost/sk:v1",)
    assert (store.layer_dir(loaded.layers[0].diff_id) / "bin/app").read_bytes().startswith(b"#!")
    assert store.image_config(loaded).config.cmd == ("/bin/app",)


# -- hostile and broken archives ---------------------------------------------------


def rewrite(src: Path, dst: Path, change: Any) -> None:
    """Copy tar ``src`` to ``dst``; ``change(info, data)`` returns (info, data) or None."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin:
            data = tin.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            result = change(m, data)
            if result is None:
                continue
            info, data = result
            info.size = len(data) if info.isfile() else 0
            tout.addfile(info, io.BytesIO(data) if info.isfile() else None)


@pytest.fixture
def saved(store: Store, image: ImageRecord, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for fmt in ("docker-archive", "oci-archive"):
        out[fmt] = tmp_path / f"{fmt}.tar"
        save(store, ["localhost/app:2"], out[fmt], fmt=fmt)
    return out


def assert_refused(tmp_path: Path, archive: Path, message: str) -> None:
    target = Store(tmp_path / "target")
    with pytest.raises(ImageError, match=message):
        load(target, archive)
    assert target.list_images() == []
    # Nothing half-loaded stays behind: no blobs, no layers, no temp files.
    for sub in ("blobs/sha256", "layers", "tmp"):
        assert list((target.root / sub).iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "/abs", "a/../../evil"])
def test_refuses_escaping_names(saved: dict[str, Path], tmp_path: Path, name: str) -> None:
    bad = tmp_path / "bad.tar"

    def add_evil(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == "manifest.json":
            info = tarfile.TarInfo(name)
            info.type = tarfile.REGTYPE
        return info, data

    rewrite(saved["docker-archive"], bad, add_evil)
    assert_refused(tmp_path, bad, "refusing archive .*: entry")
    assert not (tmp_path / "evil").exists()


def test_refuses_symlink_out_of_the_archive(saved: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"

    def link(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name.endswith(".tar"):
            info = tarfile.TarInfo(info.name)
            info.type = tarfile.SYMTYPE
            info.linkname = "../../etc/passwd"
        return info, data

    rewrite(saved["docker-archive"], bad, link)
    assert_refused(tmp_path, bad, "outside the archive")


def test_missing_blob(saved: dict[str, Path], image: ImageRecord, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    gone = "blobs/sha256/" + image.layers[1].digest[7:]
    rewrite(saved["oci-archive"], bad, lambda i, d: None if i.name == gone else (i, d))
    assert_refused(tmp_path, bad, f"'{gone}' is missing from the archive")


def test_oci_blob_digest_mismatch(
    saved: dict[str, Path], image: ImageRecord, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"
    name = "blobs/sha256/" + image.layers[0].digest[7:]

    def corrupt(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == name:
            data = bytes([data[0] ^ 1]) + data[1:]
        return info, data

    rewrite(saved["oci-archive"], bad, corrupt)
    assert_refused(tmp_path, bad, "digest mismatch")


def test_docker_layer_digest_mismatch(
    saved: dict[str, Path], image: ImageRecord, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"
    name = image.layers[0].diff_id[7:] + ".tar"

    def corrupt(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == name:
            data = data.replace(b"ID=test", b"ID=evil")
        return info, data

    rewrite(saved["docker-archive"], bad, corrupt)
    assert_refused(tmp_path, bad, r"layer .* hashes to .* \(digest mismatch\)")


def test_docker_config_digest_mismatch(
    saved: dict[str, Path], image: ImageRecord, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"

    def corrupt(info: tarfile.TarInfo, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        if info.name == image.id[7:] + ".json":
            data = data.replace(b"MODE=test", b"MODE=evil")
        return info, data

    rewrite(saved["docker-archive"], bad, corrupt)
    assert_refused(tmp_path, bad, r"config .* \(digest mismatch\)")


def test_not_an_image_archive(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tf:
        tf.add(make_tree(tmp_path / "t"), arcname=".")
    assert_refused(tmp_path, plain, "neither a docker-archive")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert_refused(tmp_path, junk, "not a tar archive")


# -- import and export -------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_import_rootfs(store: Store, tmp_path: Path, compress: bool) -> None:
    tree = make_tree(tmp_path / "t")
    tarball = tmp_path / "rootfs.tar"
    count = export_rootfs(tree, tarball)
    assert count == 4
    if compress:
        tarball.write_bytes(gzip.compress(tarball.read_bytes()))
    record = import_rootfs(
        store,
        tarball,
        names=["localhost/imported:1"],
        changes=["CMD=/bin/app", "ENV A=b"],
        message="from a tarball",
    )
    assert record.names == ("localhost/imported:1",)
    assert len(record.layers) == 1
    assert (store.layer_dir(record.layers[0].diff_id) / "etc/os-release").read_text() == "ID=test\n"
    config = store.image_config(record)
    assert config.config.cmd == ("/bin/sh", "-c", "/bin/app")
    assert config.history[0].comment == "from a tarball"


def test_import_refuses_hostile_tarball(store: Store, tmp_path: Path) -> None:
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as tf:
        info = tarfile.TarInfo("../outside")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ImageError, match="leaves the layer directory"):
        import_rootfs(store, tarball, names=["localhost/evil:1"])
    assert not (tmp_path / "outside").exists()
    assert store.list_images() == []
    assert list((store.root / "blobs/sha256").iterdir()) == []


def test_export_is_a_plain_tar(tmp_path: Path) -> None:
    out = io.BytesIO()
    export_rootfs(make_tree(tmp_path / "t"), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert sorted(tf.getnames()) == ["bin", "bin/app", "etc", "etc/os-release"]
