"""`rootless pull` against a real registry, as the unprivileged user."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.kernel


def test_pull_records_the_image_and_keeps_owners(rootless, busybox_image):
    r = rootless("pull", "--tls-verify=false", busybox_image)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip().splitlines()[-1]
    assert len(image_id) == 64
    layers = list((rootless.data_home / "rootless" / "storage" / "layers").iterdir())
    assert len(layers) == 2
    # /home/app belongs to container uid 1000: on the host, a subordinate ID.
    owners = {
        (p / "diff" / "home" / "app").stat().st_uid
        for p in layers
        if (p / "diff" / "home" / "app").exists()
    }
    assert len(owners) == 1 and owners.pop() >= 100000
    # Files of container root belong to the user.
    bins = [p / "diff" / "bin" / "busybox" for p in layers if (p / "diff" / "bin").exists()]
    assert bins[0].stat().st_uid == os.getuid()


def test_pull_twice_is_idempotent(rootless, busybox_image):
    first = rootless("pull", "-q", "--tls-verify=false", busybox_image)
    second = rootless("pull", "-q", "--tls-verify=false", busybox_image)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout


def test_pull_unknown_tag_is_a_clear_error(rootless, image_registry):
    r = rootless("pull", "--tls-verify=false", f"{image_registry}/library/busybox:nope")
    assert r.returncode == 125
    assert "nope" in r.stderr and "Error:" in r.stderr


def test_pull_registry_down(rootless):
    r = rootless("pull", "--tls-verify=false", "127.0.0.1:1/x/y:z")
    assert r.returncode == 125
    assert "127.0.0.1:1" in r.stderr


def test_pull_uses_registries_conf_insecure(rootless, busybox_image, image_registry):
    conf = rootless.config_home / "containers" / "registries.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f'[[registry]]\nlocation = "{image_registry}"\ninsecure = true\n')
    r = rootless("pull", "-q", busybox_image)
    assert r.returncode == 0, r.stderr
