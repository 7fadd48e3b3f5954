"""Interop with skopeo: what skopeo pushes we pull, what we push skopeo reads and copies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rootless.image.manifest import Platform
from rootless.image.mediatypes import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from rootless.image.reference import parse_reference
from rootless.image.store import Store
from rootless.registry import pull_image, push_image
from tests.registry._images import (
    busybox_layer,
    make_image,
    make_index,
    sha256,
    small_layer,
    store_image,
    write_oci_layout,
)


def skopeo(*args: str) -> str:
    result = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("fmt", "media_type"), [("oci", OCI_MANIFEST), ("v2s2", DOCKER_MANIFEST)])
async def test_pull_what_skopeo_pushed(
    registry: str, tmp_path: Path, fmt: str, media_type: str
) -> None:
    image = make_image([busybox_layer(fmt)])
    layout = write_oci_layout(tmp_path / "layout", image, "v1")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--format",
        fmt,
        f"oci:{layout}:v1",
        f"docker://{registry}/skopeo/{fmt}:v1",
    )
    store = Store(tmp_path / "store")
    pulled = await pull_image(
        parse_reference(f"{registry}/skopeo/{fmt}:v1"), store, tls_verify=False
    )
    assert pulled.manifest.media_type == media_type
    assert len(pulled.manifest.layers) == 1
    # skopeo may recompress; what matters is that the blobs arrived verified and complete.
    layer = store.read_blob(pulled.manifest.layers[0].digest)
    assert sha256(layer) == pulled.manifest.layers[0].digest
    config = json.loads(store.read_blob(pulled.manifest.config.digest))
    assert config["rootfs"]["diff_ids"] == json.loads(image.config)["rootfs"]["diff_ids"]


async def test_pull_index_skopeo_pushed(registry: str, tmp_path: Path) -> None:
    amd = make_image([small_layer("amd")], arch="amd64")
    arm = make_image([small_layer("arm")], arch="arm64", variant="v8")
    index = make_index([(amd, "linux", "amd64", ""), (arm, "linux", "arm64", "v8")])
    layout = tmp_path / "layout"
    write_oci_layout(layout, amd, "unused")
    blobs = layout / "blobs" / "sha256"
    for blob in (arm.config, *arm.layers, arm.manifest, index):
        (blobs / sha256(blob).split(":")[1]).write_bytes(blob)
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": OCI_INDEX,
                        "digest": sha256(index),
                        "size": len(index),
                        "annotations": {"org.opencontainers.image.ref.name": "multi"},
                    }
                ],
            }
        )
    )
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{layout}:multi",
        f"docker://{registry}/skopeo/multi:v1",
    )
    store = Store(tmp_path / "store")
    ref = parse_reference(f"{registry}/skopeo/multi:v1")
    pulled = await pull_image(
        ref, store, platform=Platform("linux", "arm64", "v8"), tls_verify=False
    )
    assert pulled.manifest_digest == arm.digest
    assert store.read_blob(sha256(arm.layers[0])) == arm.layers[0]


async def test_skopeo_reads_what_we_pushed(registry: str, store: Store, tmp_path: Path) -> None:
    image = make_image([busybox_layer("ours")], docker=True)
    store_image(store, image)
    ref = parse_reference(f"{registry}/ours/busybox:2")
    await push_image(ref, store, image.manifest, image.media_type, tls_verify=False)

    info = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{registry}/ours/busybox:2")
    )
    assert info["Digest"] == image.digest
    assert info["Layers"] == [sha256(image.layers[0])]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry}/ours/busybox:2")
    assert raw.encode() == image.manifest

    out = tmp_path / "copied"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry}/ours/busybox:2", f"dir:{out}")
    assert (out / sha256(image.layers[0]).split(":")[1]).read_bytes() == image.layers[0]
    assert (out / "manifest.json").read_bytes() == image.manifest
