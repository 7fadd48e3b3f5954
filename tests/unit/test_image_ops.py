"""Pure parts of the image verbs: rows, history, rmi and prune plans, push manifests."""

from __future__ import annotations

import json

import pytest

from rootless.engine import image_ops as ops
from rootless.errors import ConfigError
from rootless.image import mediatypes as mt
from rootless.image.manifest import (
    ContainerConfig,
    Descriptor,
    HistoryEntry,
    ImageConfig,
    Manifest,
)
from rootless.image.store import ImageRecord, LayerRef

HEX = "ab" * 32
OTHER = "cd" * 32
MDIGEST = "sha256:" + "11" * 32


def record(image_hex: str = HEX, names: tuple[str, ...] = (), created: str | None = None):
    layers = (
        LayerRef("sha256:" + "21" * 32, mt.OCI_LAYER_GZIP, 100, "sha256:" + "31" * 32),
        LayerRef("sha256:" + "22" * 32, mt.OCI_LAYER, 200, "sha256:" + "32" * 32),
    )
    return ImageRecord(
        f"sha256:{image_hex}", MDIGEST, mt.OCI_MANIFEST, None, layers, 300, created, 0.0, names
    )


# -- rows ----------------------------------------------------------------------------


def test_image_rows_one_per_name_or_none():
    rec = record(names=("docker.io/library/busybox:latest", "localhost:5000/a/b:1"))
    now = 1_700_000_000 + 7200
    rows = ops.image_rows(rec, size=4_870_000, now=now)
    assert [(r["Repository"], r["Tag"]) for r in rows] == [
        ("docker.io/library/busybox", "latest"),
        ("localhost:5000/a/b", "1"),
    ]
    assert rows[0]["ID"] == HEX[:12]
    assert rows[0]["Size"] == "4.87 MB"

    dangling = ops.image_rows(record(created="2023-11-14T22:13:20Z"), size=0, now=now)
    assert [(r["Repository"], r["Tag"]) for r in dangling] == [("<none>", "<none>")]
    assert dangling[0]["Created"] == "2 hours ago"
    assert dangling[0]["CreatedAt"] == "2023-11-14T22:13:20Z"
    assert ops.image_rows(record(), size=0, no_trunc=True)[0]["ID"] == f"sha256:{HEX}"


def test_image_json_and_repo_digests():
    rec = record(names=("localhost/x:1", "localhost/x:2", "quay.io/y:1"))
    config = ImageConfig("linux", "amd64", (), config=ContainerConfig(labels={"a": "b"}))
    out = ops.image_json(rec, config, size=5, containers=2)
    assert out["Id"] == HEX
    assert out["RepoDigests"] == [f"localhost/x@{MDIGEST}", f"quay.io/y@{MDIGEST}"]
    assert out["Labels"] == {"a": "b"} and out["Containers"] == 2 and out["Size"] == 5
    assert ops.image_json(record(), ImageConfig("linux", "amd64", ()), size=0)["RepoTags"] is None


def test_sort_newest_first():
    old = record(OTHER, created="2020-01-01T00:00:00Z")
    new = record(HEX, created="2024-01-01T00:00:00Z")
    none = record("ef" * 32)
    assert ops.sort_newest_first([old, none, new]) == [new, old, none]


# -- history ---------------------------------------------------------------------------


def test_history_sizes_follow_non_empty_entries_newest_first():
    config = ImageConfig(
        "linux",
        "amd64",
        (),
        history=(
            HistoryEntry("2024-01-01T00:00:00Z", "ADD rootfs", None, False),
            HistoryEntry("2024-01-02T00:00:00Z", "ENV A=1", None, True),
            HistoryEntry("2024-01-03T00:00:00Z", "RUN " + "x" * 60, "built", False),
        ),
    )
    items = ops.plan_history(record(), config, [1000, 20])
    assert [(i.id, i.size, i.empty_layer) for i in items] == [
        (HEX, 20, False),
        ("<missing>", 0, True),
        ("<missing>", 1000, False),
    ]
    rows = ops.history_rows(items)
    assert rows[0]["ID"] == HEX[:12]
    assert rows[0]["CreatedBy"] == "RUN " + "x" * 38 + "..."
    assert len(rows[0]["CreatedBy"]) == ops.CREATED_BY_WIDTH
    assert rows[0]["Comment"] == "built" and rows[2]["Size"] == "1 kB"
    assert ops.history_rows(items, no_trunc=True)[0]["CreatedBy"] == "RUN " + "x" * 60
    assert ops.history_json(items)[1] == {
        "id": "<missing>",
        "created": "2024-01-02T00:00:00Z",
        "CreatedBy": "ENV A=1",
        "size": 0,
        "comment": "",
        "tags": None,
    }


def test_history_without_entries_has_one_per_layer():
    items = ops.plan_history(record(), ImageConfig("linux", "amd64", ()), [5, 6])
    assert [(i.id, i.size) for i in items] == [(HEX, 6), ("<missing>", 5)]


# -- rmi, prune ------------------------------------------------------------------------


def test_rmi_a_name_of_a_multi_named_image_untags_it():
    rec = record(names=("localhost/a:1", "localhost/b:1"))
    plan = ops.plan_rmi([("a:1", rec)], {})
    assert plan.steps == (ops.RmiStep(rec, ("localhost/a:1",), False),)
    assert plan.exit_code == 0


def test_rmi_by_id_needs_force_when_named_twice():
    rec = record(names=("localhost/a:1", "localhost/b:1"))
    plan = ops.plan_rmi([(HEX[:12], rec)], {})
    assert plan.steps == () and plan.exit_code == 125
    assert "by ID with more than one tag" in plan.failures[0].message
    forced = ops.plan_rmi([(HEX[:12], rec)], {}, force=True)
    assert forced.steps == (ops.RmiStep(rec, rec.names, True),)


def test_rmi_in_use_and_unknown_exit_codes():
    rec = record(names=("localhost/a:1",))
    users = {rec.id: ["c1", "c2"]}
    plan = ops.plan_rmi([("a:1", rec), ("nope", None)], users)
    assert plan.exit_code == ops.EXIT_IN_USE
    assert plan.failures[0].message.startswith("image used by c1: image is in use")
    assert plan.failures[1] == ops.RmiFailure("nope", "nope: image not known", ops.EXIT_UNKNOWN)
    assert ops.plan_rmi([("nope", None)], {}).exit_code == ops.EXIT_UNKNOWN
    forced = ops.plan_rmi([("a:1", rec), (HEX, rec)], users, force=True)
    assert forced.containers == ("c1", "c2")
    assert len(forced.steps) == 1 and forced.steps[0].delete


def test_rmi_all_removes_multi_named_images_without_force():
    rec = record(names=("localhost/a:1", "localhost/b:1"))
    plan = ops.plan_rmi([(rec.id, rec)], {}, all_images=True)
    assert plan.steps == (ops.RmiStep(rec, rec.names, True),)


def test_plan_prune():
    dangling, named, used = record("01" * 32), record("02" * 32, ("x/y:1",)), record("03" * 32)
    users = {used.id: ["c"]}
    records = [dangling, named, used]
    assert ops.plan_prune(records, users, all_images=False) == [dangling]
    assert ops.plan_prune(records, users, all_images=True) == [dangling, named]


# -- names -------------------------------------------------------------------------------


def test_new_names_go_under_localhost():
    assert str(ops.new_name("mybb")) == "localhost/mybb:latest"
    assert str(ops.new_name("quay.io/a/b:2")) == "quay.io/a/b:2"
    with pytest.raises(ConfigError, match="takes a tag, not a digest"):
        ops.new_name("x@sha256:" + "0" * 64)


def test_push_destination():
    rec = record(names=("localhost:5000/a/b:1",))
    assert str(ops.push_destination(rec, HEX, None)) == "localhost:5000/a/b:1"
    assert str(ops.push_destination(rec, "x", "docker://quay.io/z/w")) == "quay.io/z/w:latest"
    with pytest.raises(ConfigError, match="only registries"):
        ops.push_destination(rec, "x", "oci-archive:/tmp/a.tar")
    with pytest.raises(ConfigError, match="no destination given"):
        ops.push_destination(record(), HEX, None)


# -- push manifests ------------------------------------------------------------------------


def test_layer_compression_plan():
    assert ops.plan_layer_compression(["gzip", "", "zstd"], fmt="oci", compression=None) == [
        "gzip",
        "gzip",
        "zstd",
    ]
    assert ops.plan_layer_compression(["gzip", ""], fmt="oci", compression="zstd") == [
        "zstd",
        "zstd",
    ]
    with pytest.raises(ConfigError, match="only gzip layers"):
        ops.plan_layer_compression(["zstd"], fmt="v2s2", compression=None)
    assert ops.plan_layer_compression(["zstd"], fmt="v2s2", compression="gzip") == ["gzip"]


def test_build_manifest_v2s2_uses_docker_types_and_drops_annotations():
    manifest = Manifest(
        mt.OCI_MANIFEST,
        Descriptor(mt.OCI_CONFIG, "sha256:" + "41" * 32, 10),
        (Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + "42" * 32, 20),),
        {"a": "b"},
    )
    layer = {"mediaType": mt.DOCKER_LAYER_GZIP, "digest": "sha256:" + "42" * 32, "size": 20}
    doc = json.loads(ops.build_manifest(manifest, "v2s2", [layer]))
    assert doc == {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "digest": "sha256:" + "41" * 32, "size": 10},
        "layers": [layer],
    }
    oci = json.loads(ops.build_manifest(manifest, "oci", [layer]))
    assert oci["config"]["mediaType"] == mt.OCI_CONFIG and oci["annotations"] == {"a": "b"}
    assert ops.layer_media_type("oci", "") == mt.OCI_LAYER
    assert ops.layer_media_type("oci", "zstd") == mt.OCI_LAYER_ZSTD
    assert ops.layer_media_type("v2s2", "gzip") == mt.DOCKER_LAYER_GZIP
