"""`rootless run IMAGE` from a real registry, as the unprivileged user."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.kernel


@pytest.fixture
def pulled(rootless, busybox_image):
    r = rootless("pull", "-q", "--tls-verify=false", busybox_image)
    assert r.returncode == 0, r.stderr
    return busybox_image


def test_run_pulls_when_missing_and_applies_image_config(rootless, busybox_image):
    r = rootless(
        "run",
        "--rm",
        "--tls-verify=false",
        busybox_image,
        "sh",
        "-c",
        "echo $IMAGE_VAR; pwd; cat /etc/motd || echo no-motd",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["from-image", "/home", "no-motd"]


def test_default_cmd_from_image(rootless, pulled):
    r = rootless("run", "--rm", "-i", pulled, input="echo via-default-cmd\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "via-default-cmd"


def test_entrypoint_override_and_user_by_name(rootless, pulled):
    r = rootless(
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        "-u",
        "app",
        pulled,
        "-c",
        "id -u; id -G; echo $HOME; cat /home/app/note; touch /home/app/x && echo w",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1000", "1000 2000", "/home/app", "app's file", "w"]


def test_writes_stay_in_the_container(rootless, pulled):
    r = rootless("run", "--rm", pulled, "sh", "-c", "echo changed > /etc/hostname.new; rm /bin/ls")
    assert r.returncode == 0, r.stderr
    r = rootless("run", "--rm", pulled, "sh", "-c", "ls /etc/hostname.new 2>&1; ls /bin/ls")
    assert "No such file" in r.stdout and "/bin/ls" in r.stdout


def test_rm_leaves_no_container_dir(rootless, pulled):
    r = rootless("run", "--rm", pulled, "true")
    assert r.returncode == 0, r.stderr
    cdir = rootless.data_home / "rootless" / "containers"
    assert [p.name for p in cdir.iterdir() if p.is_dir()] == []


def test_run_without_rm_records_the_exit(rootless, pulled):
    r = rootless("run", "--name", "keeper", pulled, "sh", "-c", "exit 3")
    assert r.returncode == 3
    cdir = rootless.data_home / "rootless" / "containers"
    dirs = [p for p in cdir.iterdir() if p.is_dir()]
    assert len(dirs) == 1
    config = json.loads((dirs[0] / "config.json").read_text())
    assert config["process"]["args"] == ["sh", "-c", "exit 3"]
    r = rootless("run", "--name", "keeper", pulled, "true")
    assert r.returncode == 125
    assert 'the container name "keeper" is already in use' in r.stderr


def test_pull_never_without_image(rootless, image_registry):
    r = rootless("run", "--rm", "--pull", "never", f"{image_registry}/library/busybox", "true")
    assert r.returncode == 125
    assert "image not known" in r.stderr and "rootless pull" in r.stderr


def test_unknown_image_fails_cleanly(rootless, image_registry):
    r = rootless("run", "--rm", "--tls-verify=false", f"{image_registry}/nothing/here", "true")
    assert r.returncode == 125
    assert "nothing/here" in r.stderr
    assert os.listdir(rootless.data_home / "rootless") is not None


def test_copy_driver_gives_the_same_view(rootless, pulled):
    env = {"ROOTLESS_STORAGE_DRIVER": "copy"}
    r = rootless(
        "run",
        "--rm",
        "-u",
        "app",
        pulled,
        "sh",
        "-c",
        "cat /etc/motd || echo no-motd; stat -c %u /home/app/note; echo x > /tmp/y",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["no-motd", "1000"]
    cdir = rootless.data_home / "rootless" / "containers"
    assert [p for p in cdir.iterdir() if p.is_dir()] == []


def test_run_finds_local_short_names(rootless, pulled):
    assert rootless("tag", pulled, "mybox:1").returncode == 0
    r = rootless("run", "--rm", "--pull", "never", "mybox:1", "echo", "local")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "local"
