"""Volumes, bind mounts, tmpfs and --userns=keep-id, for real as the unprivileged user."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ok

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def volume_image(image_registry, _busybox_template, tmp_path_factory):
    """busybox plus VOLUME /srv/data holding a file owned by 1000:1000."""
    from tests.testimages import push_layout, tar_rootfs, write_layout

    base = tmp_path_factory.mktemp("volume-image")
    top = base / "top"
    (top / "srv" / "data").mkdir(parents=True)
    (top / "srv" / "data" / "seed").write_text("seeded\n")
    layers = [
        tar_rootfs(_busybox_template),
        tar_rootfs(top, owners={"srv/data": (1000, 1000), "srv/data/seed": (1000, 1000)}),
    ]
    config = {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Volumes": {"/srv/data": {}}}
    ref = f"{image_registry}/library/volume-image:latest"
    push_layout(write_layout(base / "layout", layers, config), ref)
    return ref


def volumes(rootless) -> list[dict]:
    return json.loads(ok(rootless("volume", "ls", "--format", "json")))


def test_named_volume_outlives_its_container(rootless, busybox_rootfs):
    ok(rootless("run", "--name", "w", "-v", "keep:/data", "--rootfs", str(busybox_rootfs),
                "sh", "-c", "echo persisted > /data/f"))  # fmt: skip
    ok(rootless("rm", "w"))
    script = "cat /data/f; touch /data/g 2>/dev/null || echo read-only"
    out = ok(rootless("run", "--rm", "-v", "keep:/data:ro", "--rootfs", str(busybox_rootfs),
                      "sh", "-c", script))  # fmt: skip
    assert out.split() == ["persisted", "read-only"]
    [vol] = volumes(rootless)
    assert vol["Name"] == "keep" and not vol["Anonymous"]
    assert (Path(vol["Mountpoint"]) / "f").read_text() == "persisted\n"


def test_new_volume_gets_the_image_content_with_owners(rootless, image):
    script = "stat -c '%u:%g %a %n' /home/app /home/app/note; cat /home/app/note; rm /home/app/note"
    out = ok(rootless("run", "--rm", "-v", "appvol:/home/app", image, "sh", "-c", script))
    lines = out.splitlines()
    assert lines[0].startswith("1000:1000 ") and lines[0].endswith(" /home/app")
    assert lines[1].startswith("1000:1000 ") and lines[1].endswith(" /home/app/note")
    assert lines[2] == "app's file"
    # Copied once, on first use: the note deleted above does not come back.
    out = ok(rootless("run", "--rm", "-v", "appvol:/home/app", image, "ls", "-A", "/home/app"))
    assert out.strip() == ""
    [vol] = json.loads(ok(rootless("volume", "inspect", "appvol")))
    assert vol["NeedsCopyUp"] is False


def test_nocopy_and_existing_content_are_left_alone(rootless, image):
    out = ok(
        rootless("run", "--rm", "-v", "empty:/home/app:nocopy", image, "ls", "-A", "/home/app")
    )
    assert out.strip() == ""
    ok(rootless("volume", "create", "full"))
    ok(rootless("run", "--rm", "-v", "full:/x", image, "sh", "-c", "echo mine > /x/own"))
    out = ok(rootless("run", "--rm", "-v", "full:/home/app", image, "ls", "-A", "/home/app"))
    assert out.split() == ["own"]


def test_anonymous_volume_removed_by_rm_v(rootless, busybox_rootfs):
    ok(rootless("run", "--name", "anon", "-v", "/data", "--rootfs", str(busybox_rootfs),
                "sh", "-c", "echo x > /data/f"))  # fmt: skip
    [vol] = volumes(rootless)
    assert vol["Anonymous"] is True and len(vol["Name"]) == 64
    cid = json.loads(ok(rootless("inspect", "anon")))[0]["Id"]
    assert vol["Labels"]["io.rootless.volume.container"] == cid
    ok(rootless("run", "--name", "anon2", "-v", "/data", "--rootfs", str(busybox_rootfs), "true"))
    ok(rootless("rm", "anon2"))  # without -v its volume stays
    assert len(volumes(rootless)) == 2
    ok(rootless("rm", "-v", "anon"))
    left = volumes(rootless)
    assert [v["Name"] for v in left] != [vol["Name"]] and len(left) == 1
    assert not Path(vol["Mountpoint"]).exists()


def test_image_volume_gets_an_anonymous_volume_with_the_image_content(rootless, volume_image):
    out = ok(rootless("run", "--name", "iv", "--tls-verify=false", volume_image,
                      "sh", "-c", "stat -c %u:%g /srv/data/seed; cat /srv/data/seed; "
                      "grep ' /srv/data ' /proc/mounts | wc -l"))  # fmt: skip
    assert out.split() == ["1000:1000", "seeded", "1"]
    [vol] = volumes(rootless)
    assert vol["Anonymous"]
    # A volume the user names covers the image's VOLUME: no anonymous one then.
    ok(rootless("run", "--rm", "-v", "mine:/srv/data", volume_image, "true"))
    assert len(volumes(rootless)) == 2
    ok(rootless("rm", "-v", "iv"))
    assert [v["Name"] for v in volumes(rootless)] == ["mine"]


def test_tmpfs_flags(rootless, busybox_rootfs):
    script = "grep -E ' /(run|scratch) ' /proc/mounts; stat -c %a /run"
    out = ok(rootless("run", "--rm", "--tmpfs", "/run:size=64m,mode=1770",
                      "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
                      "--rootfs", str(busybox_rootfs), "sh", "-c", script))  # fmt: skip
    lines = out.splitlines()
    run = next(line for line in lines if " /run " in line).split()
    scratch = next(line for line in lines if " /scratch " in line).split()
    assert run[2] == "tmpfs" and scratch[2] == "tmpfs"
    run_opts, scratch_opts = set(run[3].split(",")), set(scratch[3].split(","))
    assert {"size=65536k", "mode=1770", "nosuid", "nodev", "noexec"} <= run_opts
    assert {"size=1024k", "nosuid", "nodev"} <= scratch_opts and "noexec" not in scratch_opts
    assert lines[-1] == "1770"


def test_mount_flag_bind_and_volume(rootless, busybox_rootfs, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    script = "cat /h/in; touch /h/x 2>/dev/null || echo ro; echo v > /v/f"
    out = ok(rootless("run", "--rm",
                      "--mount", f"type=bind,source={host},target=/h,readonly",
                      "--mount", "type=volume,source=mv,target=/v",
                      "--rootfs", str(busybox_rootfs), "sh", "-c", script))  # fmt: skip
    assert out.split() == ["from", "host", "ro"]
    assert not (host / "x").exists()
    [vol] = volumes(rootless)
    assert vol["Name"] == "mv" and (Path(vol["Mountpoint"]) / "f").read_text() == "v\n"
    r = rootless("run", "--rm", "--mount", f"type=bind,source={tmp_path}/missing,target=/m",
                 "--rootfs", str(busybox_rootfs), "true")  # fmt: skip
    assert r.returncode == 125 and "no such file or directory" in r.stderr


def test_volume_verbs(rootless, busybox_rootfs):
    assert ok(rootless("volume", "create", "--label", "team=a", "one")).strip() == "one"
    ok(rootless("volume", "create", "two"))
    r = rootless("volume", "create", "one")
    assert r.returncode == 125 and "already exists" in r.stderr
    assert ok(rootless("volume", "ls", "-q")).split() == ["one", "two"]
    table = ok(rootless("volume", "ls")).splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and table[1].split() == ["local", "one"]
    assert ok(rootless("volume", "ls", "-q", "--filter", "label=team=a")).split() == ["one"]
    assert ok(rootless("volume", "ls", "--format", "{{.Name}}={{.Driver}}")).split() == [
        "one=local",
        "two=local",
    ]
    [info] = json.loads(ok(rootless("volume", "inspect", "one")))
    assert info["Labels"] == {"team": "a"} and info["Driver"] == "local"
    assert Path(info["Mountpoint"]).is_dir()
    r = rootless("volume", "inspect", "nope")
    assert r.returncode == 1 and "no volume with name 'nope'" in r.stderr

    ok(
        rootless(
            "create", "--name", "user1", "-v", "one:/d", "--rootfs", str(busybox_rootfs), "true"
        )
    )
    r = rootless("volume", "rm", "one")
    assert r.returncode == 2 and "user1" in r.stderr
    assert ok(rootless("volume", "ls", "-q", "--filter", "dangling=true")).split() == ["two"]
    assert ok(rootless("volume", "prune", "-f")).split() == ["two"]
    assert ok(rootless("volume", "ls", "-q")).split() == ["one"]
    assert ok(rootless("volume", "rm", "-f", "one")).split() == ["one"]
    assert ok(rootless("volume", "ls", "-q")).strip() == ""
    assert rootless("inspect", "user1").returncode != 0  # -f removed the container too
    assert rootless("volume", "exists", "one").returncode == 1


def test_volume_create_with_owner(rootless, busybox_rootfs):
    ok(rootless("volume", "create", "--opt", "o=uid=1000,gid=1000", "owned"))
    out = ok(rootless("run", "--rm", "-v", "owned:/o", "--rootfs", str(busybox_rootfs),
                      "stat", "-c", "%u:%g", "/o"))  # fmt: skip
    assert out.strip() == "1000:1000"
    ok(rootless("volume", "rm", "owned"))  # files of subordinate IDs are removable


def test_keep_id(rootless, busybox_rootfs, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    script = "id -u; id -g; echo hi > /shared/made; stat -c %u /shared"
    out = ok(rootless("run", "--rm", "--userns=keep-id", "-v", f"{shared}:/shared",
                      "--rootfs", str(busybox_rootfs), "sh", "-c", script))  # fmt: skip
    assert out.split() == [str(os.getuid()), str(os.getgid()), str(os.getuid())]
    st = (shared / "made").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    # keep-id:uid=N puts the user's own ID at container UID N.
    out = ok(rootless("run", "--rm", "--userns=keep-id:uid=1000,gid=1000",
                      "-v", f"{shared}:/shared", "--rootfs", str(busybox_rootfs),
                      "sh", "-c", "id -u; echo x > /shared/by1000"))  # fmt: skip
    assert out.strip() == "1000"
    assert (shared / "by1000").stat().st_uid == os.getuid()


def test_parallel_first_use_makes_one_volume(rootless, busybox_rootfs):
    procs = [
        subprocess.Popen(
            rootless.command(
                "run",
                "--rm",
                "-v",
                "shared:/s",
                "--rootfs",
                str(busybox_rootfs),
                "sh",
                "-c",
                f"echo {i} > /s/{i}",
            ),
            env=rootless.env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    [vol] = volumes(rootless)
    assert sorted(os.listdir(vol["Mountpoint"])) == [str(i) for i in range(6)]


def test_run_rm_removes_anonymous_volumes(rootless, busybox_rootfs):
    r = rootless("run", "--rm", "-v", "/data", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 0, r.stderr
    assert rootless("volume", "ls", "-q").stdout.strip() == ""
