"""Test images made offline: a rootfs directory -> an OCI layout -> a registry (via skopeo)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_rootfs(rootfs: Path, owners: Mapping[str, tuple[int, int]] | None = None) -> bytes:
    """An uncompressed tar of ``rootfs``; entries belong to root unless ``owners`` says."""
    owners = owners or {}
    raw = io.BytesIO()

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid = owners.get(info.name, (0, 0))
        info.uname = info.gname = ""
        info.mtime = 1_700_000_000
        return info

    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(rootfs)), recursive=False, filter=reset)
    return raw.getvalue()


def write_layout(
    out: Path, layers: list[bytes], config: Mapping[str, Any], tag: str = "latest"
) -> Path:
    """An OCI image layout with ``layers`` (uncompressed tars, gzip'd here)."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        d = digest(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    gz = [gzip.compress(layer, compresslevel=1, mtime=0) for layer in layers]
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": dict(config),
            "rootfs": {"type": "layers", "diff_ids": [digest(layer) for layer in layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": put(cfg), "size": len(cfg)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": put(g), "size": len(g)} for g in gz],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": put(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (out / "index.json").write_text(json.dumps(index))
    return out


def push_layout(layout: Path, dest: str, tag: str = "latest", fmt: str = "oci") -> None:
    """``skopeo copy`` the layout to ``docker://dest`` (plain http)."""
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", fmt,
         f"oci:{layout}:{tag}", f"docker://{dest}"],
        check=True,
    )  # fmt: skip
