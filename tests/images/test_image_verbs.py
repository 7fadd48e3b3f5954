"""The image verbs (images, tag, untag, rmi, image prune, history, inspect, push) for real,
as the unprivileged user, against the session's docker-registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import podman_env, stop_podman

pytestmark = pytest.mark.kernel

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def pulled(rootless, busybox_image):
    """(reference, full image ID) of busybox pulled into this test's store."""
    r = rootless("pull", "-q", "--tls-verify=false", busybox_image)
    assert r.returncode == 0, r.stderr
    return busybox_image, r.stdout.split()[-1]


def storage(rootless) -> Path:
    return rootless.data_home / "rootless" / "storage"


def names_of(rootless) -> list[list[str]]:
    r = rootless("images", "--format", "json")
    assert r.returncode == 0, r.stderr
    return [img["RepoTags"] or [] for img in json.loads(r.stdout)]


def skopeo_raw(ref: str) -> dict:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


# -- images ------------------------------------------------------------------------------


def test_images_table_quiet_digests_and_json(rootless, pulled):
    ref, image_id = pulled
    repo, _, tag = ref.rpartition(":")
    r = rootless("images")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert row.split()[:3] == [repo, tag, image_id[:12]]

    r = rootless("images", "-q")
    assert r.stdout.split() == [image_id[:12]]
    r = rootless("images", "-q", "--no-trunc")
    assert r.stdout.split() == [f"sha256:{image_id}"]

    (summary,) = json.loads(rootless("images", "--format", "json").stdout)
    assert summary["Id"] == image_id
    assert summary["RepoTags"] == [ref]
    assert summary["Names"] == [ref]
    digest = summary["Digest"]
    assert summary["RepoDigests"] == [f"{repo}@{digest}"]
    assert summary["Size"] > 500_000  # the static busybox binary
    assert summary["Created"] == 0  # the test image's config has no "created"
    assert summary["Containers"] == 0

    r = rootless("images", "--digests")
    header, row = r.stdout.splitlines()
    assert "DIGEST" in header.split()
    assert digest in row.split()

    r = rootless("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert r.stdout == f"{ref} {image_id[:12]}\n"


def test_images_with_no_images_prints_the_header(rootless):
    r = rootless("images")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert rootless("images", "--format", "json").stdout.strip() == "[]"


# -- tag, untag --------------------------------------------------------------------------


def test_tag_untag_and_dangling(rootless, pulled):
    ref, image_id = pulled
    r = rootless("tag", ref, "mybb:1", "other.example:5000/x/y")
    assert r.returncode == 0, r.stderr
    assert sorted(names_of(rootless)[0]) == sorted(
        [ref, "localhost/mybb:1", "other.example:5000/x/y:latest"]
    )
    # A short name finds the localhost/ name, as in Podman.
    r = rootless("images", "-q")
    assert r.stdout.split() == [image_id[:12]]
    assert json.loads(rootless("image", "inspect", "mybb:1").stdout)[0]["Id"] == image_id

    r = rootless("untag", image_id[:12], "mybb:1")
    assert r.returncode == 0, r.stderr
    assert sorted(names_of(rootless)[0]) == sorted([ref, "other.example:5000/x/y:latest"])

    r = rootless("untag", ref)  # no names: all of them
    assert r.returncode == 0, r.stderr
    assert names_of(rootless) == [[]]
    _header, row = rootless("images").stdout.splitlines()
    assert row.split()[:3] == ["<none>", "<none>", image_id[:12]]

    r = rootless("untag", image_id, "nosuch:1")
    assert r.returncode == 125
    assert "has no name localhost/nosuch:1" in r.stderr


def test_tag_unknown_image(rootless):
    r = rootless("tag", "localhost/nothing:1", "x")
    assert r.returncode == 125
    assert "Error: localhost/nothing:1: image not known" in r.stderr


# -- rmi, prune ---------------------------------------------------------------------------


def test_rmi_name_of_a_multi_named_image_only_untags(rootless, pulled):
    ref, image_id = pulled
    assert rootless("tag", ref, "localhost/second:1").returncode == 0
    r = rootless("rmi", "localhost/second:1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Untagged: localhost/second:1\n"
    assert names_of(rootless) == [[ref]]

    assert rootless("tag", ref, "localhost/second:1").returncode == 0
    r = rootless("rmi", image_id[:12])
    assert r.returncode == 125
    assert "by ID with more than one tag" in r.stderr and "please force removal" in r.stderr
    r = rootless("rmi", "-f", image_id[:12])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"Deleted: {image_id}"
    assert set(r.stdout.splitlines()[:-1]) == {
        f"Untagged: {ref}",
        "Untagged: localhost/second:1",
    }


def test_rmi_removes_layers_and_blobs(rootless, pulled):
    ref, image_id = pulled
    layers = storage(rootless) / "layers"
    assert len(list(layers.iterdir())) == 2
    r = rootless("rmi", ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Untagged: {ref}\nDeleted: {image_id}\n"
    # The layer trees hold subordinate-ID files (/home/app is uid 1000 inside).
    assert list(layers.iterdir()) == []
    assert list((storage(rootless) / "blobs" / "sha256").iterdir()) == []
    assert rootless("images", "-q").stdout == ""

    r = rootless("rmi", ref)
    assert r.returncode == 1
    assert f"Error: {ref}: image not known" in r.stderr


def test_rmi_refuses_an_image_a_container_uses_unless_forced(rootless, pulled):
    ref, image_id = pulled
    r = rootless("create", "--name", "user-of-image", ref, "true")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]

    r = rootless("rmi", ref)
    assert r.returncode == 2
    assert f"image used by {cid}: image is in use by a container" in r.stderr
    assert names_of(rootless) == [[ref]]
    assert len(list((storage(rootless) / "layers").iterdir())) == 2

    # image prune -a keeps images that containers use.
    r = rootless("image", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert names_of(rootless) == [[ref]]

    r = rootless("rmi", "-f", ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Untagged: {ref}\nDeleted: {image_id}\n"
    assert rootless("ps", "-a", "-q").stdout == ""  # Podman's rmi -f removes the container
    assert list((storage(rootless) / "layers").iterdir()) == []


def test_rmi_all(rootless, pulled):
    ref, image_id = pulled
    assert rootless("tag", ref, "localhost/again:2").returncode == 0
    r = rootless("rmi", "-a")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"Deleted: {image_id}"
    assert rootless("images", "-q").stdout == ""


def test_image_prune_removes_dangling_images_only(rootless, pulled):
    ref, image_id = pulled
    r = rootless("image", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # the image is named: not dangling
    assert rootless("untag", ref).returncode == 0
    r = rootless("image", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{image_id}\n"
    assert rootless("images", "-q").stdout == ""
    assert list((storage(rootless) / "layers").iterdir()) == []


def test_image_prune_asks_first(rootless, pulled):
    ref, _ = pulled
    assert rootless("untag", ref).returncode == 0
    r = rootless("image", "prune", input="n\n")
    assert r.returncode == 0
    assert "Are you sure you want to continue? [y/N]" in r.stderr
    assert len(names_of(rootless)) == 1


# -- history, inspect ----------------------------------------------------------------------


def test_history(rootless, pulled):
    ref, image_id = pulled
    r = rootless("history", ref)
    assert r.returncode == 0, r.stderr
    header, top, base = r.stdout.splitlines()
    assert header.split() == ["ID", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert top.split()[0] == image_id[:12] and "layer 1" in top
    assert base.split()[0] == "<missing>" and "layer 0" in base
    # The base layer holds busybox (about a megabyte); the top one a note of 11 bytes.
    assert base.split()[-1] == "MB" and top.split()[-2:] == ["11", "B"]

    assert rootless("history", "-q", ref).stdout.split() == [image_id[:12], "<missing>"]
    assert rootless("history", "-q", "--no-trunc", ref).stdout.split() == [image_id, "<missing>"]
    entries = json.loads(rootless("history", "--format", "json", ref).stdout)
    assert (entries[0]["id"], entries[0]["CreatedBy"], entries[0]["size"]) == (
        image_id,
        "layer 1",
        11,
    )
    assert entries[1]["id"] == "<missing>" and entries[1]["size"] > 500_000
    r = rootless("history", "--format", "{{.CreatedBy}}|{{.Size}}", ref)
    assert r.stdout.splitlines()[0] == "layer 1|11 B"


def test_image_inspect_fields(rootless, pulled, image_registry):
    ref, image_id = pulled
    r = rootless("image", "inspect", ref)
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(r.stdout)
    raw = skopeo_raw(ref)
    assert info["Id"] == image_id
    assert info["Digest"].startswith("sha256:")
    assert info["RepoTags"] == [ref]
    assert info["RepoDigests"] == [f"{ref.rpartition(':')[0]}@{info['Digest']}"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Config"]["WorkingDir"] == "/home"
    assert "IMAGE_VAR=from-image" in info["Config"]["Env"]
    assert info["RootFS"]["Type"] == "layers"
    assert len(info["RootFS"]["Layers"]) == len(raw["layers"]) == 2
    assert [h["created_by"] for h in info["History"]] == ["layer 0", "layer 1"]
    assert info["ManifestType"] == raw["mediaType"] == OCI_MANIFEST
    assert info["Size"] > 500_000

    # `inspect` finds images too (no container has that name), and takes a template.
    r = rootless("inspect", "--format", "{{.Config.WorkingDir}} {{.Os}}", image_id[:12])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/home linux\n"

    r = rootless("image", "inspect", ref, "localhost/nothing:1")
    assert r.returncode == 125
    assert len(json.loads(r.stdout)) == 1
    assert "Error: localhost/nothing:1: image not known" in r.stderr
    r = rootless("inspect", "nothing-here")
    assert r.returncode == 125 and json.loads(r.stdout) == []
    assert 'no such object: "nothing-here"' in r.stderr


def test_inspect_prefers_a_container(rootless, pulled):
    ref, image_id = pulled
    r = rootless("create", "--name", "inspected", ref, "true")
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(rootless("inspect", "inspected").stdout)
    assert info["Name"] == "inspected" and info["Image"] == f"sha256:{image_id}"
    r = rootless("inspect", "--type", "image", "inspected")
    assert r.returncode == 125


# -- push -----------------------------------------------------------------------------------


def test_push_then_skopeo_and_a_repull_see_it(rootless, pulled, image_registry):
    ref, image_id = pulled
    dest = f"{image_registry}/pushed/verbs:1"
    r = rootless("push", "--tls-verify=false", ref, f"docker://{dest}")
    assert r.returncode == 0, r.stderr
    assert "Writing manifest to image destination" in r.stderr
    raw = skopeo_raw(dest)
    assert raw["mediaType"] == OCI_MANIFEST
    assert raw["config"]["digest"] == f"sha256:{image_id}"
    # Unchanged format and compression: the same manifest, byte for byte.
    (info,) = json.loads(rootless("image", "inspect", ref).stdout)
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(inspected.stdout)["Digest"] == info["Digest"]

    # Push by the image's own name, after tagging it for the registry.
    assert rootless("tag", ref, f"{image_registry}/pushed/byname:2").returncode == 0
    r = rootless("push", "-q", "--tls-verify=false", f"{image_registry}/pushed/byname:2")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert skopeo_raw(f"{image_registry}/pushed/byname:2")["config"]["digest"].endswith(image_id)


def test_push_v2s2_gives_a_docker_manifest(rootless, pulled, image_registry, tmp_path):
    ref, image_id = pulled
    dest = f"{image_registry}/pushed/docker:1"
    digest_file = tmp_path / "digest"
    r = rootless(
        "push", "--tls-verify=false", "--format", "v2s2", "--digestfile", str(digest_file),
        ref, dest,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    raw = skopeo_raw(dest)
    assert raw["mediaType"] == DOCKER_MANIFEST
    assert raw["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in raw["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
    assert digest_file.read_text().startswith("sha256:")
    # rootless pulls it back: same config, so the same image.
    other = rootless("pull", "-q", "--tls-verify=false", dest)
    assert other.returncode == 0, other.stderr
    assert other.stdout.split()[-1] == image_id


def test_push_zstd_recompresses_layers(rootless, pulled, image_registry):
    ref, _ = pulled
    dest = f"{image_registry}/pushed/zstd:1"
    r = rootless("push", "--tls-verify=false", "--compression-format", "zstd", ref, dest)
    assert r.returncode == 0, r.stderr
    raw = skopeo_raw(dest)
    assert {layer["mediaType"] for layer in raw["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    blob = subprocess.run(
        ["curl", "-sf", f"http://{dest.split('/')[0]}/v2/pushed/zstd/blobs/"
         + raw["layers"][1]["digest"]],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert blob[:4] == b"\x28\xb5\x2f\xfd"
    # The zstd image runs after a pull into a fresh store.
    assert rootless("rmi", "-a").returncode == 0
    r = rootless("run", "--rm", "--tls-verify=false", dest, "cat", "/home/app/note")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "app's file\n"

    r = rootless(
        "push", "--tls-verify=false", "--format", "v2s2", "--compression-format", "zstd",
        dest, f"{image_registry}/pushed/nope:1",
    )  # fmt: skip
    assert r.returncode == 125
    assert "Docker schema 2 format (v2s2): it has only gzip layers" in r.stderr


def test_push_errors(rootless, pulled):
    ref, _ = pulled
    r = rootless("push", "--tls-verify=false", "localhost/nothing:1", "127.0.0.1:1/x/y:1")
    assert r.returncode == 125 and "localhost/nothing:1: image not known" in r.stderr
    r = rootless("push", "--tls-verify=false", ref, "127.0.0.1:1/x/y:1")
    assert r.returncode == 125 and "127.0.0.1:1" in r.stderr
    r = rootless("push", ref, "oci:/tmp/x")
    assert r.returncode == 125 and "only registries" in r.stderr


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_podman_pulls_what_rootless_pushed(rootless, pulled, image_registry, tmp_path, fmt):
    ref, image_id = pulled
    dest = f"{image_registry}/pushed/forpodman-{fmt}:1"
    r = rootless("push", "-q", "--tls-verify=false", "--format", fmt, ref, dest)
    assert r.returncode == 0, r.stderr
    env, short = podman_env(tmp_path)
    try:
        pulled_by_podman = subprocess.run(
            ["podman", "pull", "-q", "--tls-verify=false", dest],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert pulled_by_podman.returncode == 0, pulled_by_podman.stderr
        assert pulled_by_podman.stdout.strip() == image_id
        ran = subprocess.run(
            ["podman", "run", "--rm", "--network", "none", dest, "cat", "/home/app/note"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "app's file\n"
    finally:
        stop_podman(env, short)
