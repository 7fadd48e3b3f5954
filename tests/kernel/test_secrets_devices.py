"""Secrets and devices in real containers, as the unprivileged user."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import ok

VALUE = "s3cr3t-value-7f1c2a"


def _tree_mentions(root: Path, needle: bytes, skip: Path | None = None) -> list[Path]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if skip is not None and skip in path.parents:
                continue
            try:
                if needle in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


def test_secret_lifecycle_and_no_leaks(rootless, busybox_rootfs, tmp_path):
    src = tmp_path / "value"
    src.write_text(VALUE)
    sid = ok(rootless("secret", "create", "token", str(src))).strip()
    store = rootless.data_home / "rootless" / "secrets"
    assert store.stat().st_mode & 0o777 == 0o700
    assert (store / f"{sid}.data").stat().st_mode & 0o777 == 0o600

    listing = json.loads(ok(rootless("secret", "ls", "--format", "json")))
    assert [s["Name"] for s in listing] == ["token"]
    shown = ok(rootless("secret", "inspect", "token"))
    assert json.loads(shown)[0]["ID"] == sid
    assert VALUE not in shown

    out = ok(
        rootless(
            "run",
            "--name",
            "c1",
            "--secret",
            "token",
            "--secret",
            "token,target=/etc/app/key,mode=0400",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "cat /run/secrets/token; echo; cat /etc/app/key; echo; "
            "stat -c %a /etc/app/key; echo x > /run/secrets/token || echo refused",
        )
    )
    lines = out.split()
    assert lines[:3] == [VALUE, VALUE, "400"]
    assert lines[-1] == "refused"

    # Nowhere but the store's own value file: not the rootfs, the record, logs, inspect.
    assert _tree_mentions(busybox_rootfs, VALUE.encode()) == []
    data_hits = _tree_mentions(rootless.data_home, VALUE.encode())
    assert data_hits == [store / f"{sid}.data"]
    assert VALUE not in ok(rootless("inspect", "c1"))
    logs = rootless("logs", "c1")
    assert VALUE not in logs.stdout + logs.stderr
    cid = json.loads(ok(rootless("inspect", "c1")))[0]["Id"]
    copy_dir = rootless.runtime_dir / "rootless" / "secrets" / cid
    assert copy_dir.is_dir()
    ok(rootless("rm", "c1"))
    assert not copy_dir.exists()

    ok(rootless("secret", "rm", "token"))
    assert json.loads(ok(rootless("secret", "ls", "--format", "json"))) == []
    assert list(store.glob("*.data")) == []


def test_secret_with_image_layer_never_in_upper(rootless, busybox_image):
    """On an image container the secret is a mount, so the writable layer never holds it."""
    image = busybox_image
    ok(rootless("pull", "-q", "--tls-verify=false", image))
    rootless("secret", "create", "--env", "k", "SECRET_SRC", env={"SECRET_SRC": VALUE})
    out = ok(rootless("run", "--name", "c2", "--secret", "k", image, "cat", "/run/secrets/k"))
    assert out == VALUE
    cid = json.loads(ok(rootless("inspect", "c2")))[0]["Id"]
    upper = rootless.data_home / "rootless" / "containers" / cid / "upper"
    assert upper.is_dir()
    assert _tree_mentions(upper, VALUE.encode()) == []


def test_unknown_secret_fails_cleanly(rootless, busybox_rootfs):
    r = rootless("run", "--rm", "--secret", "nope", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 1
    assert "no such secret" in r.stderr
    assert json.loads(ok(rootless("ps", "-a", "--format", "json"))) == []


def test_device_bind(rootless, busybox_rootfs):
    out = ok(
        rootless(
            "run",
            "--rm",
            "--device",
            "/dev/null:/dev/mynull:rw",
            "--device",
            "/dev/zero:/dev/myzero:r",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/mynull /dev/myzero; echo hi > /dev/mynull && echo wrote; "
            "head -c 4 /dev/myzero | od -An -tx1",
        )
    )
    lines = out.strip().splitlines()
    assert lines[0] == "character special file 1:3"
    assert lines[1] == "character special file 1:5"
    assert lines[2] == "wrote"
    assert lines[3].split() == ["00", "00", "00", "00"]


def test_cdi_device_from_spec_file(rootless, busybox_rootfs, tmp_path):
    cdi = rootless.config_home / "cdi"
    cdi.mkdir()
    shared = tmp_path / "libs"
    shared.mkdir()
    (shared / "vendor.txt").write_text("driver-lib\n")
    (cdi / "test.json").write_text(
        json.dumps(
            {
                "cdiVersion": "0.6.0",
                "kind": "example.com/gpu",
                "devices": [
                    {
                        "name": "gpu0",
                        "containerEdits": {
                            "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/zero"}],
                            "env": ["GPU_ID=0"],
                        },
                    }
                ],
                "containerEdits": {
                    "env": ["GPU_VENDOR=example"],
                    "mounts": [
                        {
                            "hostPath": str(shared),
                            "containerPath": "/usr/lib/gpu",
                            "options": ["ro", "rbind"],
                        }
                    ],
                },
            }
        )
    )
    out = ok(
        rootless(
            "run",
            "--rm",
            "--device",
            "example.com/gpu=gpu0",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/gpu0; echo $GPU_ID $GPU_VENDOR; cat /usr/lib/gpu/vendor.txt",
        )
    )
    assert out.splitlines() == ["character special file 1:5", "0 example", "driver-lib"]

    r = rootless(
        "run", "--rm", "--device", "example.com/gpu=gpu9", "--rootfs", str(busybox_rootfs), "true"
    )
    assert r.returncode == 125
    assert 'unresolvable CDI device "example.com/gpu=gpu9"' in r.stderr
    assert str(cdi) in r.stderr and "/etc/cdi" in r.stderr
