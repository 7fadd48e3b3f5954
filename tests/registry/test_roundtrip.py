"""Push then pull against a real docker-registry: blobs, digests, indexes, chunked uploads."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from rootless.errors import ImageError
from rootless.image.manifest import Platform, parse_manifest
from rootless.image.mediatypes import OCI_INDEX
from rootless.image.reference import parse_reference
from rootless.image.store import Store
from rootless.registry import Phase, ProgressEvent, pull_image, push_image
from tests.registry._images import (
    busybox_layer,
    make_image,
    make_index,
    sha256,
    small_layer,
    store_image,
)


def _tags(host: str, repo: str) -> list[str]:
    with urllib.request.urlopen(f"http://{host}/v2/{repo}/tags/list") as resp:
        return list(json.load(resp)["tags"])


async def test_push_then_pull_round_trip(registry: str, store: Store, tmp_path: Path) -> None:
    image = make_image([busybox_layer(), small_layer("second layer")])
    store_image(store, image)
    ref = parse_reference(f"{registry}/test/busybox:1.0")
    pushed: list[ProgressEvent] = []
    digest = await push_image(
        ref, store, image.manifest, image.media_type, tls_verify=False, progress=pushed.append
    )
    assert digest == image.digest
    assert _tags(registry, "test/busybox") == ["1.0"]
    assert {e.digest for e in pushed if e.phase is Phase.DONE} == {
        sha256(b) for b in (image.config, *image.layers, image.manifest)
    }

    fresh = Store(tmp_path / "fresh")
    events: list[ProgressEvent] = []
    pulled = await pull_image(ref, fresh, tls_verify=False, progress=events.append)
    assert pulled.manifest_digest == image.digest
    assert pulled.manifest == parse_manifest(image.manifest)
    assert pulled.config.config.cmd == ("/bin/sh",)
    assert pulled.manifest.config.digest == sha256(image.config)
    assert [layer.digest for layer in pulled.manifest.layers] == [sha256(b) for b in image.layers]
    for blob in (image.config, *image.layers, image.manifest):
        assert fresh.read_blob(sha256(blob)) == blob
    busybox = sha256(image.layers[0])
    advances = [e.done for e in events if e.digest == busybox and e.phase is Phase.ADVANCE]
    assert advances == sorted(advances) and advances[-1] == len(image.layers[0])

    # A second pull finds every blob in the store and transfers nothing.
    again: list[ProgressEvent] = []
    await pull_image(ref, fresh, tls_verify=False, progress=again.append)
    assert {e.phase for e in again if e.kind != "manifest"} == {Phase.EXISTS}


async def test_pull_by_digest(registry: str, store: Store, tmp_path: Path) -> None:
    image = make_image([small_layer("by digest")], docker=True)
    store_image(store, image)
    await push_image(
        parse_reference(f"{registry}/test/d:x"),
        store,
        image.manifest,
        image.media_type,
        tls_verify=False,
    )
    fresh = Store(tmp_path / "fresh")
    pulled = await pull_image(
        parse_reference(f"{registry}/test/d@{image.digest}"), fresh, tls_verify=False
    )
    assert pulled.manifest_digest == image.digest
    assert pulled.manifest.media_type == image.media_type
    assert fresh.read_blob(sha256(image.layers[0])) == image.layers[0]


async def test_index_with_two_platforms(registry: str, store: Store, tmp_path: Path) -> None:
    amd = make_image([small_layer("amd64")], arch="amd64")
    arm = make_image([small_layer("arm64")], arch="arm64", variant="v8")
    index = make_index([(amd, "linux", "amd64", ""), (arm, "linux", "arm64", "v8")])
    for image in (amd, arm):
        store_image(store, image)
    ref = parse_reference(f"{registry}/test/multi:latest")
    assert await push_image(ref, store, index, OCI_INDEX, tls_verify=False) == sha256(index)

    for platform, image in (
        (Platform("linux", "arm64", "v8"), arm),
        (Platform("linux", "amd64"), amd),
    ):
        fresh = Store(tmp_path / str(platform).replace("/", "-"))
        pulled = await pull_image(ref, fresh, platform=platform, tls_verify=False)
        assert pulled.index_digest == sha256(index)
        assert pulled.manifest_digest == image.digest
        assert pulled.platform == platform
        assert fresh.read_blob(sha256(image.layers[0])) == image.layers[0]
        other = amd if image is arm else arm
        assert not fresh.has_blob(sha256(other.layers[0]))

    with pytest.raises(ImageError) as err:
        await pull_image(
            ref,
            Store(tmp_path / "s390x"),
            platform=Platform("linux", "s390x"),
            tls_verify=False,
        )
    assert str(err.value) == (
        f"cannot pull {registry}/test/multi:latest: no image for platform linux/s390x in the"
        " manifest list; available: linux/amd64, linux/arm64/v8; choose one with --platform"
    )


async def test_chunked_upload_and_cross_repo_mount(
    registry: str, store: Store, tmp_path: Path
) -> None:
    image = make_image([busybox_layer("chunked")])
    store_image(store, image)
    first = parse_reference(f"{registry}/test/chunked:1")
    await push_image(
        first, store, image.manifest, image.media_type, tls_verify=False, chunk_size=256 << 10
    )
    fresh = Store(tmp_path / "fresh")
    await pull_image(first, fresh, tls_verify=False)
    assert fresh.read_blob(sha256(image.layers[0])) == image.layers[0]

    events: list[ProgressEvent] = []
    second = parse_reference(f"{registry}/other/copy:1")
    await push_image(
        second,
        store,
        image.manifest,
        image.media_type,
        tls_verify=False,
        mount_from="test/chunked",
        progress=events.append,
    )
    phases = {e.digest: e.phase for e in events if e.kind in ("layer", "config")}
    assert set(phases.values()) == {Phase.MOUNTED}
    await pull_image(second, Store(tmp_path / "second"), tls_verify=False)


async def test_push_skips_blobs_the_registry_has(registry: str, store: Store) -> None:
    image = make_image([small_layer("shared")])
    store_image(store, image)
    ref = parse_reference(f"{registry}/test/skip:1")
    await push_image(ref, store, image.manifest, image.media_type, tls_verify=False)
    events: list[ProgressEvent] = []
    await push_image(
        ref.with_tag("2"),
        store,
        image.manifest,
        image.media_type,
        tls_verify=False,
        progress=events.append,
    )
    assert {e.phase for e in events if e.kind != "manifest"} == {Phase.EXISTS}
    assert sorted(_tags(registry, "test/skip")) == ["1", "2"]
