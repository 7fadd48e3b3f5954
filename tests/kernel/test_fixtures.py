"""The shared fixtures do what the other tests rely on."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import RootlessCLI


def run(*cmd: str | Path) -> str:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL
    ).stdout


def test_rootfs_has_executable_busybox_and_applets(busybox_rootfs: Path) -> None:
    busybox = busybox_rootfs / "bin/busybox"
    assert os.access(busybox, os.X_OK)
    assert not busybox.is_symlink()
    for applet in ("bin/sh", "bin/true", "bin/sleep", "usr/bin/env", "bin/id"):
        assert (busybox_rootfs / applet).resolve() == busybox.resolve(), applet
    assert run(busybox_rootfs / "bin/sh", "-c", "echo hello") == "hello\n"


def test_rootfs_layout(busybox_rootfs: Path) -> None:
    passwd = (busybox_rootfs / "etc/passwd").read_text().splitlines()
    assert [line.split(":")[:4] for line in passwd] == [
        ["root", "x", "0", "0"],
        ["nobody", "x", "65534", "65534"],
        ["app", "x", "1000", "1000"],
    ]
    assert "extra:x:2000:app" in (busybox_rootfs / "etc/group").read_text().splitlines()
    assert stat.S_IMODE((busybox_rootfs / "tmp").stat().st_mode) == 0o1777
    for empty in ("proc", "sys", "dev"):
        assert list((busybox_rootfs / empty).iterdir()) == []
    assert os.access(busybox_rootfs / "probe", os.X_OK)


def test_each_rootfs_is_fresh(busybox_rootfs: Path, _busybox_template: Path) -> None:
    (busybox_rootfs / "tmp/scratch").write_text("x")
    assert not (_busybox_template / "tmp/scratch").exists()


def test_probe_fds_lists_only_inherited_fds(probe_binary: Path) -> None:
    assert run(probe_binary, "fds") == "0 1 2\n"
    read_end, write_end = os.pipe()
    try:
        out = subprocess.run(
            [probe_binary, "fds"], capture_output=True, text=True, check=True, pass_fds=[write_end]
        ).stdout
    finally:
        os.close(read_end)
        os.close(write_end)
    assert out.split() == ["0", "1", "2", str(write_end)]


def test_probe_ids_match_the_caller(probe_binary: Path) -> None:
    fields = dict(kv.split("=", 1) for kv in run(probe_binary, "ids").split())
    assert fields["uid"] == fields["euid"] == str(os.getuid())
    assert fields["gid"] == fields["egid"] == str(os.getgid())
    groups = {int(g) for g in fields["groups"].split(",") if g}
    assert groups == set(os.getgroups())


def test_probe_other_commands(probe_binary: Path, tmp_path: Path) -> None:
    assert run(probe_binary, "pid").startswith("pid=")
    caps = dict(kv.split("=", 1) for kv in run(probe_binary, "caps").split())
    # An unprivileged caller holds no capabilities.
    assert caps == {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapInh": "0" * 16}
    cwd = subprocess.run(
        [probe_binary, "cwd"], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert cwd == f"{tmp_path}\n"
    assert run(probe_binary, "tty").startswith("isatty0=0 isatty1=0 isatty2=0 ttyname=- ")
    names = [line.split("=")[0] for line in run(probe_binary, "syscalls").splitlines()]
    assert "keyctl" in names and "clone3" in names and len(names) == 12
    bad = subprocess.run([probe_binary, "nope"], capture_output=True, check=False)
    assert bad.returncode == 2


def test_rootless_fixture_isolates_xdg_dirs(rootless: RootlessCLI, tmp_path: Path) -> None:
    assert stat.S_IMODE(rootless.runtime_dir.stat().st_mode) == 0o700
    for key in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        assert Path(rootless.env[key]).is_relative_to(tmp_path)
    result = rootless("--help")
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout


def test_find_processes_with_token(find_processes_with_token: Callable[..., list[int]]) -> None:
    token = f"token-{uuid.uuid4().hex}"
    proc = subprocess.Popen(["sleep", "60"], env={**os.environ, "PROBE_TOKEN": token})
    try:
        assert find_processes_with_token(token) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert find_processes_with_token(token, wait=2.0) == []
