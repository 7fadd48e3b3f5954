"""Test images made offline: a busybox layer, its config and manifest, an OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import attrs

from rootless.errors import ImageError
from rootless.registry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DirStore:
    """A minimal content-addressed store with the interface of rootless.image.store.Store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.root / digest.replace(":", "-")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_writer(self, digest: str, expected_size: int) -> _Writer:
        return _Writer(self.blob_path(digest), digest, expected_size)

    def read(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        with self.blob_writer(digest, len(data)) as w:
            w.write(data)
        return digest

    def blobs(self) -> set[str]:
        return {p.name.replace("-", ":", 1) for p in self.root.iterdir() if "tmp" not in p.name}

    def temp_files(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if "tmp" in p.name]


class _Writer:
    def __init__(self, path: Path, digest: str, size: int) -> None:
        self.path, self.digest, self.size = path, digest, size
        self.tmp = path.with_name(path.name + ".tmp")
        self.hash = hashlib.sha256()
        self.file = open(self.tmp, "wb")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.file.write(data)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.file.close()
        if exc_type is not None or "sha256:" + self.hash.hexdigest() != self.digest:
            os.unlink(self.tmp)
            if exc_type is None:
                raise ImageError(f"store: digest mismatch for {self.digest}")
            return
        os.replace(self.tmp, self.path)


def make_store(root: Path) -> Any:
    """The real store once rootless.image.store exists, else the stand-in above."""
    try:
        from rootless.image.store import Store  # type: ignore[import-not-found]
    except ImportError:
        return DirStore(root)
    return Store(root)


def read_blob(store: Any, digest: str) -> bytes:
    return Path(store.blob_path(digest)).read_bytes()


def put_blob(store: Any, data: bytes) -> str:
    digest = sha256(data)
    if not store.has_blob(digest):
        with store.blob_writer(digest, len(data)) as w:
            w.write(data)
    return digest


def busybox_layer(marker: str = "") -> bytes:
    """A gzip'd tar with /bin/busybox, /bin/sh -> busybox and an optional marker file."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        with open("/bin/busybox", "rb") as f:
            info = tarfile.TarInfo("bin/busybox")
            info.size, info.mode = os.fstat(f.fileno()).st_size, 0o755
            tar.addfile(info, f)
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
        if marker:
            data = marker.encode()
            m = tarfile.TarInfo("marker")
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def small_layer(text: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@attrs.frozen
class Image:
    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def make_image(
    layers: list[bytes], *, arch: str = "amd64", variant: str = "", docker: bool = False
) -> Image:
    config_doc: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": [sha256(gzip.decompress(layer)) for layer in layers],
        },
    }
    if variant:
        config_doc["variant"] = variant
    config = json.dumps(config_doc, sort_keys=True).encode()
    media, cfg_type, layer_type = (
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
        if docker
        else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": media,
        "config": {"mediaType": cfg_type, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": layer_type, "digest": sha256(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    return Image(json.dumps(manifest).encode(), media, config, tuple(layers))


def store_image(store: Any, image: Image) -> None:
    for blob in (image.config, *image.layers, image.manifest):
        put_blob(store, blob)


def make_index(entries: list[tuple[Image, str, str, str]]) -> bytes:
    """An OCI index of (image, os, arch, variant) entries."""
    manifests = []
    for image, os_name, arch, variant in entries:
        platform = {"os": os_name, "architecture": arch}
        if variant:
            platform["variant"] = variant
        manifests.append(
            {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "platform": platform,
            }
        )
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def write_oci_layout(root: Path, image: Image, tag: str) -> Path:
    """An OCI image layout directory holding *image* under *tag* (for skopeo's oci: transport)."""
    if root.exists():
        shutil.rmtree(root)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (image.config, *image.layers, image.manifest):
        (blobs / sha256(blob).split(":")[1]).write_bytes(blob)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return root
