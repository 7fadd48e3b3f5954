import json
import re

import pytest

from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.manifest import (
    Index,
    Manifest,
    Platform,
    choose_platform,
    host_platform,
    parse_config,
    parse_manifest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def manifest(media_type: str = mt.OCI_MANIFEST, **over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D2, "size": 20}],
    }
    doc.update(over)
    return doc


def b(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_oci_manifest_roundtrip() -> None:
    m = parse_manifest(b(manifest()))
    assert isinstance(m, Manifest)
    assert m.config.digest == D1
    assert [layer.digest for layer in m.layers] == [D2]
    assert parse_manifest(b(m.to_dict())) == m


def test_docker_manifest_and_header() -> None:
    doc = manifest(
        mt.DOCKER_MANIFEST,
        config={"mediaType": mt.DOCKER_CONFIG, "digest": D1, "size": 1},
        layers=[{"mediaType": mt.DOCKER_LAYER_GZIP, "digest": D2, "size": 2}],
    )
    m = parse_manifest(b(doc), "application/vnd.docker.distribution.manifest.v2+json")
    assert isinstance(m, Manifest) and m.media_type == mt.DOCKER_MANIFEST


def test_media_type_from_header_or_shape() -> None:
    doc = manifest()
    del doc["mediaType"]
    assert parse_manifest(b(doc), mt.OCI_MANIFEST).media_type == mt.OCI_MANIFEST
    assert parse_manifest(b(doc)).media_type == mt.OCI_MANIFEST
    index = {"schemaVersion": 2, "manifests": []}
    assert isinstance(parse_manifest(b(index)), Index)


@pytest.mark.parametrize(
    ("doc", "header", "message"),
    [
        (b"{", None, "invalid manifest: not JSON"),
        (b(manifest(schemaVersion=1)), None, "unsupported manifest: Docker schema 1"),
        (b(manifest(schemaVersion=3)), None, "schemaVersion must be 2, not 3"),
        (b(manifest()), mt.DOCKER_MANIFEST, "differs from the Content-Type"),
        (b(manifest("application/x-foo")), None, "unsupported manifest media type"),
        (
            b(manifest(layers=[{"mediaType": "application/x-tar+lz4", "digest": D2, "size": 1}])),
            None,
            "unsupported layer media type 'application/x-tar+lz4'",
        ),
        (
            b(manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": "sha256:zz", "size": 1}])),
            None,
            "invalid image manifest: invalid digest 'sha256:zz'",
        ),
        (
            b(manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": D2, "size": -5}])),
            None,
            "has no valid size",
        ),
        (
            b(manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": D2, "size": True}])),
            None,
            "'size' must be an integer",
        ),
        (b(manifest(config={"mediaType": "x", "digest": D1, "size": 1})), None, "config media"),
    ],
)
def test_invalid_manifests(doc: bytes, header: str | None, message: str) -> None:
    with pytest.raises(ImageError, match=re.escape(message)):
        parse_manifest(doc, header)


def index_doc() -> bytes:
    def entry(digest: str, arch: str, variant: str | None = None) -> dict[str, object]:
        plat = {"os": "linux", "architecture": arch}
        if variant:
            plat["variant"] = variant
        return {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 5, "platform": plat}

    return b(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [entry(D1, "amd64"), entry(D2, "arm", "v6"), entry(D3, "arm", "v7")],
        }
    )


def test_choose_platform() -> None:
    index = parse_manifest(index_doc())
    assert isinstance(index, Index)
    assert choose_platform(index, Platform.parse("linux/amd64")).digest == D1
    assert choose_platform(index, Platform.parse("linux/x86_64")).digest == D1
    assert choose_platform(index, Platform.parse("linux/arm/v7")).digest == D3
    assert choose_platform(index, Platform.parse("linux/arm/v6")).digest == D2
    with pytest.raises(ImageError) as info:
        choose_platform(index, Platform.parse("linux/s390x"))
    assert info.value.message == (
        "no image for platform linux/s390x in the manifest list; "
        "available: linux/amd64, linux/arm/v6, linux/arm/v7"
    )


def test_platform_parse_and_host() -> None:
    assert str(Platform.parse("linux/aarch64")) == "linux/arm64"
    assert Platform.parse("linux/arm64/8").variant == "v8"
    with pytest.raises(ImageError, match="expected os/arch"):
        Platform.parse("linux")
    assert host_platform("x86_64") == Platform("linux", "amd64")
    assert host_platform("aarch64") == Platform("linux", "arm64", "v8")
    assert host_platform("armv7l") == Platform("linux", "arm", "v7")
    assert Platform("linux", "arm64").matches(Platform("linux", "arm64", "v8"))


def test_config() -> None:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "User": "1000",
            "Env": ["PATH=/bin"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": None,
            "WorkingDir": "/w",
            "Labels": {"a": "b"},
            "StopSignal": "SIGINT",
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
        "history": [{"created_by": "x"}, {"created_by": "y", "empty_layer": True}],
    }
    c = parse_config(b(doc))
    assert c.diff_ids == (D1, D2)
    assert c.config.entrypoint == ("/bin/sh", "-c")
    assert c.config.cmd is None
    assert c.config.env == ("PATH=/bin",)
    assert c.config.exposed_ports == ("80/tcp",)
    assert c.config.stop_signal == "SIGINT"
    assert c.history[1].empty_layer
    assert c.platform == Platform("linux", "amd64")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rootfs": {"type": "x"}}, "rootfs.type must be 'layers'"),
        ({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}, "invalid digest 'nope'"),
        ({"config": {"Env": "PATH=/"}}, "'Env' must be a list"),
        ([], "expected a JSON object"),
    ],
)
def test_bad_config(doc: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_config(b(doc))
