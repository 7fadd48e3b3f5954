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

from rootless.image.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)
from rootless.image.store import Store


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


def store_image(store: Store, image: Image) -> None:
    for blob in (image.config, *image.layers, image.manifest):
        store.add_blob_bytes(blob)


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
