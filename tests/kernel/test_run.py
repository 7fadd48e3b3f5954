"""`rootless run --rootfs` for real, as the unprivileged user (issue 2)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import run_in_pty

DEFAULT_CAPS_HEX = "00000000800405fb"  # Podman's default set


def run(rootless, rootfs: Path, *cmd: str, opts: tuple[str, ...] = (), **kw):  # type: ignore[no-untyped-def]
    return rootless("run", "--rm", *opts, "--rootfs", str(rootfs), *cmd, **kw)


def subuid_start() -> int:
    user = pwd.getpwuid(os.getuid()).pw_name
    for line in Path("/etc/subuid").read_text().splitlines():
        name, start, _ = line.split(":")
        if name in (user, str(os.getuid())):
            return int(start)
    raise AssertionError("the test user has no subordinate range")


def test_root_inside_with_subordinate_map(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0" and lines[1] == "0"
    maps = [line.split() for line in lines[2:] if line.strip()]
    assert maps[0] == ["0", str(os.getuid()), "1"]
    assert maps[1] == ["1", str(subuid_start()), "65536"]
    assert "WARN" not in r.stderr


def test_pid_namespace_only_own_processes(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$'")
    assert r.returncode == 0, r.stderr
    pid, *visible = r.stdout.split()
    assert pid == "1"
    # sh (1) and ls/grep: nothing from the host.
    assert all(int(p) < 10 for p in visible), visible


def test_hostname_env_cwd_user(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "hostname; echo $FOO $BAR; pwd; id -u; id -g; id -G",
        opts=("--hostname", "box", "-e", "FOO=foo", "-e", "BAR", "-w", "/work/dir", "-u", "app"),
        env={"BAR": "from-host"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:6] == [
        "box",
        "foo from-host",
        "/work/dir",
        "1000",
        "1000",
        "1000 2000",
    ]


def test_env_file_and_numeric_user(rootless, busybox_rootfs, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\nB=two words\n")
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        'echo "$A|$B"; id -u; id -g',
        opts=("--env-file", str(env_file), "-u", "1234:4321"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1|two", "words", "1234", "4321"]


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_codes(rootless, busybox_rootfs, code):
    assert run(rootless, busybox_rootfs, "sh", "-c", f"exit {code}").returncode == code


def test_command_not_found_is_127(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "no-such-command")
    assert r.returncode == 127
    assert "no-such-command" in r.stderr and "not found" in r.stderr


def test_not_executable_is_126(rootless, busybox_rootfs):
    (busybox_rootfs / "notexec").write_text("#!/bin/sh\n")
    r = run(rootless, busybox_rootfs, "/notexec")
    assert r.returncode == 126
    assert "permission denied" in r.stderr


def test_missing_rootfs_is_125(rootless, tmp_path):
    r = rootless("run", "--rm", "--rootfs", str(tmp_path / "nope"), "true")
    assert r.returncode == 125
    assert "does not exist" in r.stderr and "nope" in r.stderr


def test_missing_command_is_125(rootless, busybox_rootfs):
    r = rootless("run", "--rm", "--rootfs", str(busybox_rootfs))
    assert r.returncode == 125
    assert "no command given" in r.stderr


def test_sigkilled_command_is_137(rootless, busybox_rootfs, find_processes_with_token):
    token = f"tok-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        rootless.command(
            "run", "--rm", "--rootfs", str(busybox_rootfs), "sh", "-c", f"sleep 1000; : {token}"
        ),
        env=rootless.env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sleeper = _wait_for_container_pid(find_processes_with_token, token, proc)
        os.kill(sleeper, signal.SIGKILL)
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.wait()


def _wait_for_container_pid(find, token: str, proc: subprocess.Popen) -> int:  # type: ignore[type-arg]
    """The PID of the container's process (whose argv holds token) once it exec'd."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in find(token):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if "busybox" in exe:
                return pid
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    raise AssertionError("the container never started")


def test_security_status(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "grep -E '^(NoNewPrivs|Seccomp|Cap...):' /proc/self/status",
    )
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":\t") for line in r.stdout.strip().split("\n"))
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert status["CapInh"] == "0000000000000000"
    assert status["CapAmb"] == "0000000000000000"
    assert status["CapEff"] == DEFAULT_CAPS_HEX
    assert status["CapBnd"] == DEFAULT_CAPS_HEX


def test_blocked_syscalls_fail_with_eperm(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "/probe", "syscalls")
    assert r.returncode == 0, r.stderr
    result = dict(line.split("=") for line in r.stdout.split())
    for name in (
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "kexec_load",
        "open_by_handle_at",
        "init_module",
        "reboot",
    ):
        assert result[name] == "EPERM", (name, result)
    assert result["clone3"] == "ENOSYS"


def test_seccomp_unconfined(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
        opts=("--security-opt", "seccomp=unconfined"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Seccomp:", "0"]


def test_cap_add_and_drop(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "/probe",
        "caps",
        opts=("--cap-drop", "all", "--cap-add", "NET_ADMIN"),
    )
    assert r.returncode == 0, r.stderr
    assert f"CapEff={1 << 12:016x}" in r.stdout


def test_non_root_user_has_no_capabilities(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "/probe", "caps", opts=("-u", "1000"))
    assert "CapEff=0000000000000000" in r.stdout, r.stdout + r.stderr


def test_masked_paths(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "wc -c < /proc/keys; wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "0"]


def test_readonly_paths_refuse_writes(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "sh", "-c", "echo x > /proc/sys/kernel/hostname")
    assert r.returncode != 0
    assert "Read-only file system" in r.stderr, r.stderr
    r = run(rootless, busybox_rootfs, "cat", "/proc/mounts")
    options = {f[1]: f[3].split(",") for f in (line.split() for line in r.stdout.splitlines())}
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
        if os.path.exists(path):
            assert "ro" in options[path], (path, options.get(path))


def test_sys_is_readonly(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "sh", "-c", "touch /sys/x")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_devices(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "ls /dev; head -c 4 /dev/zero | wc -c; echo hi > /dev/null; "
        "grep -E ' /dev/(pts|shm|mqueue) ' /proc/mounts | cut -d' ' -f3",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    for dev in (
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "pts",
        "shm",
        "mqueue",
        "ptmx",
        "fd",
        "stdin",
    ):
        assert dev in out, dev
    assert "4" in out
    assert out[-3:] == ["devpts", "tmpfs", "mqueue"]


def test_only_standard_fds_are_open(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "/probe", "fds")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "1", "2"]


def test_workdir_through_proc_fd_is_refused(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "true", opts=("-w", "/proc/self/fd/3"))
    assert r.returncode == 125
    assert "working directory /proc/self/fd/3" in r.stderr


def test_workdir_symlink_cannot_escape(rootless, busybox_rootfs):
    (busybox_rootfs / "escape").symlink_to("../../../../..")
    r = run(rootless, busybox_rootfs, "/probe", "cwd", opts=("-w", "/escape/tmp"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/tmp"


def test_network_none_has_only_lo_up(rootless, busybox_rootfs):
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "ls /sys/class/net; cat /sys/class/net/lo/flags",
        opts=("--network", "none"),
    )
    assert r.returncode == 0, r.stderr
    names, flags = r.stdout.split()
    assert names == "lo"
    assert int(flags, 16) & 0x1, "lo is not up"


def test_network_host_sees_host_interfaces(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "ls", "/sys/class/net", opts=("--network", "host"))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(os.listdir("/sys/class/net"))


def test_read_only_rootfs_and_volume(rootless, busybox_rootfs, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    r = run(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "cat /data/in.txt; echo out > /data/out.txt; touch /x || echo ro-root;"
        " echo no > /ro/f || echo ro-vol",
        opts=("--read-only", "-v", f"{shared}:/data", "-v", f"{shared}:/ro:ro"),
    )
    assert r.stdout.split() == ["from", "host", "ro-root", "ro-vol"], r.stderr
    assert (shared / "out.txt").read_text() == "out\n"
    assert (shared / "out.txt").stat().st_uid == os.getuid()


def test_ulimit(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "sh", "-c", "ulimit -n", opts=("--ulimit", "nofile=512:512"))
    assert r.stdout.strip() == "512", r.stderr


def test_shm_size(rootless, busybox_rootfs):
    size = "df -k /dev/shm | tail -1 | awk '{print $2}'"
    assert run(rootless, busybox_rootfs, "sh", "-c", size).stdout.strip() == "65536"
    r = run(rootless, busybox_rootfs, "sh", "-c", size, opts=("--shm-size", "96m"))
    assert r.stdout.strip() == "98304", r.stderr


def test_stdin_only_with_interactive(rootless, busybox_rootfs):
    assert run(rootless, busybox_rootfs, "cat", opts=("-i",), input="hello").stdout == "hello"
    assert run(rootless, busybox_rootfs, "cat", input="hello").stdout == ""


def test_kill_9_of_supervisor_leaves_nothing(rootless, busybox_rootfs, find_processes_with_token):
    token = f"tok-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        rootless.command(
            "run",
            "--rm",
            "-e",
            f"TOKEN={token}",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "sleep 1000 & sleep 1001; :",
        ),
        env=rootless.env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_container_pid(find_processes_with_token, token, proc)
        deadline = time.monotonic() + 10
        while len(find_processes_with_token(token)) < 3:  # sh and both sleeps
            assert time.monotonic() < deadline, "the container's processes did not start"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        assert find_processes_with_token(token, wait=5) == []
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_is_forwarded(rootless, busybox_rootfs, find_processes_with_token):
    token = f"tok-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        rootless.command(
            "run",
            "--rm",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            f"trap 'echo got-term; exit 3' TERM; echo trapped; : {token}; "
            "while :; do sleep 0.1; done",
        ),
        env=rootless.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_container_pid(find_processes_with_token, token, proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "trapped\n"  # before, PID 1 would ignore it
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 3
        assert "got-term" in out
    finally:
        proc.kill()
        proc.wait()


def test_missing_subordinate_range_falls_back_to_single_map(rootless, busybox_rootfs, tmp_path):
    empty = tmp_path / "empty-subid"
    empty.write_text("")
    r = run(
        rootless,
        busybox_rootfs,
        "cat",
        "/proc/self/uid_map",
        env={"ROOTLESS_SUBUID_FILE": str(empty), "ROOTLESS_SUBGID_FILE": str(empty)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", str(os.getuid()), "1"]
    assert "no subordinate ID range" in r.stderr and "usermod --add-subuids" in r.stderr


def test_missing_newuidmap_is_a_clear_error(rootless, busybox_rootfs, tmp_path):
    r = run(rootless, busybox_rootfs, "true", env={"PATH": str(tmp_path)})
    assert r.returncode == 125
    assert "newuidmap not found" in r.stderr and "apt-get install uidmap" in r.stderr


def test_tty(rootless, busybox_rootfs):
    code, out = run_in_pty(
        rootless.command("run", "--rm", "-t", "--rootfs", str(busybox_rootfs), "/probe", "tty"),
        rootless.env,
    )
    text = out.decode()
    assert code == 0, text
    assert "isatty0=1" in text and "isatty1=1" in text
    assert "ttyname=/dev/pts/0" in text


def test_seccomp_profile_file(rootless, busybox_rootfs, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW",'
        ' "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}'
    )
    opts = ("--security-opt", f"seccomp={profile}")
    r = run(rootless, busybox_rootfs, "mkdir", "/tmp/x", opts=opts)
    assert r.returncode == 1
    assert "Operation not permitted" in r.stderr
    r = run(rootless, busybox_rootfs, "touch", "/tmp/x", opts=opts)
    assert r.returncode == 0, r.stderr


def test_bad_seccomp_profile_file_is_125(rootless, busybox_rootfs, tmp_path):
    profile = tmp_path / "bad.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_DENY"}')
    r = run(rootless, busybox_rootfs, "true", opts=("--security-opt", f"seccomp={profile}"))
    assert r.returncode == 125
    assert str(profile) in r.stderr and "SCMP_ACT_DENY" in r.stderr


def test_signals_start_at_their_defaults(rootless, busybox_rootfs):
    r = run(rootless, busybox_rootfs, "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]
