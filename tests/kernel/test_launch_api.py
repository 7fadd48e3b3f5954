"""The runtime's Python API: launch.start with a hook that runs before the command."""

from __future__ import annotations

import os

from rootless.runtime.idmap import current_user_plan
from rootless.runtime.launch import LaunchOptions, exit_code, start
from rootless.runtime.plan import RunRequest, plan_spec


def test_before_exec_runs_before_the_command_starts(busybox_rootfs, tmp_path):
    marker = busybox_rootfs / "tmp" / "marker"
    seen: list[int] = []

    def hook(pid: int) -> None:
        # PID 1 exists (its namespaces can be joined) but its command has not run yet.
        seen.append(pid)
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        marker.write_text("network ready\n")

    idmap = current_user_plan()
    spec = plan_spec(
        RunRequest(rootfs=str(busybox_rootfs), args=("cat", "/tmp/marker"), seccomp=None),
        idmap,
        container_id="ab" * 32,
    )
    out_r, out_w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY)
    started = start(spec, LaunchOptions(idmap, stdio=(null, out_w, out_w), before_exec=hook))
    os.close(out_w)
    os.close(null)
    with os.fdopen(out_r, "rb") as f:
        output = f.read()
    assert exit_code(os.waitpid(started.stage1_pid, 0)[1]) == 0
    assert seen == [started.init_pid]
    assert output == b"network ready\n"
