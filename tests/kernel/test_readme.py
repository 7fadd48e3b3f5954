"""The README's quick start works as written (the main job, after the set-up)."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO_ROOT


def _quick_start_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    # The block that makes a rootfs and runs a container in it.
    block = next(b for b in blocks if "mkrootfs-busybox" in b)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_quick_start_runs(rootless, tmp_path):
    commands = _quick_start_commands()
    assert any(c.startswith("rootless run") for c in commands)
    rootfs = tmp_path / "readme-rootfs"
    out = []
    for command in commands:
        command = command.replace("/tmp/rootfs", str(rootfs))
        if command.startswith("helpers/"):
            subprocess.run(command, shell=True, check=True, cwd=REPO_ROOT)
        else:
            assert command.startswith("rootless ")
            r = rootless(*__import__("shlex").split(command)[1:])
            assert r.returncode == 0, (command, r.stderr)
            out.append(r.stdout)
    assert "hello" in "".join(out)
