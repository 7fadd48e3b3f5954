"""rootless inside a rootless container (issue 8: CI runners that run containers).

The outer container gets the host's /usr, this checkout and the venv read-only, a
writable storage directory and the busybox rootfs; inside it, as root of the outer
user namespace (no newuidmap, no /etc/subuid), `rootless run` starts the inner one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# What the kernel needs to let a container start containers (docs/ci.md).
NESTING = ("seccomp=unconfined", "unmask=ALL")


def _outer_rootfs(root: Path) -> Path:
    """An empty root whose programs come from the host's /usr (mounted at run time)."""
    for name in ("usr", "etc", "proc", "sys", "dev", "tmp", "storage", "rootfs"):
        (root / name).mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    for name in ("bin", "sbin", "lib", "lib64"):
        host = Path("/") / name
        if host.is_symlink():  # merged /usr: /bin -> usr/bin
            (root / name).symlink_to(os.readlink(host))
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/storage:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def _nested(rootless, busybox_rootfs, tmp_path, security_opts, *inner):
    outer = _outer_rootfs(tmp_path / "outer")
    outer_flags = [flag for opt in security_opts for flag in ("--security-opt", opt)]
    storage = tmp_path / "storage"
    storage.mkdir()
    return rootless(
        "run", "--rm", "--network", "none", *outer_flags,
        "-v", "/usr:/usr:ro",
        "-v", f"{REPO_ROOT}:{REPO_ROOT}:ro",
        "-v", f"{sys.prefix}:{sys.prefix}:ro",  # the venv with trio, attrs, ...
        "-v", f"{storage}:/storage",
        "-v", f"{busybox_rootfs}:/rootfs",
        "-e", "HOME=/storage", "-e", "XDG_RUNTIME_DIR=/storage/run",
        "-e", f"PYTHONPATH={REPO_ROOT}",
        "--rootfs", str(outer),
        sys.executable, "-m", "rootless", "run", "--rm", "--network", "none",
        "--rootfs", "/rootfs", *inner,
    )  # fmt: skip


def test_rootless_runs_nested_in_a_rootless_container(rootless, busybox_rootfs, tmp_path):
    r = _nested(
        rootless, busybox_rootfs, tmp_path, NESTING,
        "sh", "-c", "echo nested; cat /proc/self/uid_map; id -u",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "nested"
    # Every ID of the outer container, one to one: root and the 65536 others, so
    # images with other users work nested too; no warning about /etc/subuid.
    assert [line.split() for line in lines[1:3]] == [["0", "0", "1"], ["1", "1", "65536"]]
    assert lines[3] == "0"
    assert "subordinate" not in r.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("unmask=ALL", "proc is partly masked here (in a container?); run the outer container "
                       "with --security-opt unmask=ALL"),
        ("seccomp=unconfined", "cannot create a user namespace; inside a container, its "
                               "seccomp filter forbids nested user namespaces"),
    ],
    ids=["masked-proc", "seccomp"],
)  # fmt: skip
def test_what_stops_nesting_is_named(rootless, busybox_rootfs, tmp_path, missing, message):
    opts = [opt for opt in NESTING if opt != missing]
    r = _nested(rootless, busybox_rootfs, tmp_path, opts, "echo", "nested")
    assert r.returncode == 125  # the inner rootless's code, passed through
    assert message in r.stderr
    assert "nested" not in r.stdout
