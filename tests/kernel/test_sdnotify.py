"""sd_notify and SIGTERM handling of a foreground `rootless run`, for real (issue 8)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    return sock


def _messages(sock: socket.socket, until: str) -> list[dict[str, str]]:
    """Datagrams as dicts, up to and including the first that has the key ``until``."""
    received = []
    while True:
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines() if line)
        received.append(fields)
        if until in fields:
            return received


def test_sdnotify_conmon_ready_and_mainpid(rootless, busybox_rootfs, tmp_path):
    sock = _listen(tmp_path / "notify.sock")
    marker = tmp_path / "rootfs-started"
    with sock:
        proc = subprocess.Popen(
            rootless.command(
                "run",
                "--rm",
                "--sdnotify=conmon",
                "--network",
                "none",
                "-v",
                f"{tmp_path}:/out",
                "--rootfs",
                str(busybox_rootfs),
                "sh",
                "-c",
                "touch /out/rootfs-started; sleep 2",
            ),
            env={**rootless.env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            fields = _messages(sock, "READY")[-1]
            # READY comes once the command runs: its first action is visible soon after.
            deadline = time.monotonic() + 5
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert marker.exists()
            assert fields["READY"] == "1"
            assert fields["MAINPID"] == str(proc.pid)
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.kill()
            proc.wait()


def test_no_notify_without_socket_or_with_ignore(rootless, busybox_rootfs, tmp_path):
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        r = rootless(
            "run",
            "--rm",
            "--sdnotify=ignore",
            "--network",
            "none",
            "--rootfs",
            str(busybox_rootfs),
            "true",
            env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        )
        assert r.returncode == 0, r.stderr
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)


def test_sdnotify_container_passes_the_socket(rootless, busybox_rootfs, tmp_path):
    sockdir = tmp_path / "sd"
    sockdir.mkdir()
    sock = _listen(sockdir / "notify")
    with sock:
        proc = subprocess.Popen(
            rootless.command(
                "run",
                "--rm",
                "--sdnotify=container",
                "--network",
                "none",
                "--rootfs",
                str(busybox_rootfs),
                # The container sees the variable and the host's socket behind it.
                "sh",
                "-c",
                'echo "$NOTIFY_SOCKET"; ls -l "$NOTIFY_SOCKET"',
            ),
            env={**rootless.env, "NOTIFY_SOCKET": str(sockdir / "notify")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        path, listing = out.splitlines()[:2]
        assert path == "/run/rootless-notify/notify"
        assert listing.startswith("s")  # the host's socket, seen inside
        fields = _messages(sock, "MAINPID")[-1]
        assert fields["MAINPID"] == str(proc.pid)
        assert "READY" not in fields  # the container's to send


def _healthy_run(rootless, rootfs, sock_path, *flags, script="sleep 60"):
    """A foreground run whose healthcheck passes once /tmp/ok exists."""
    return subprocess.Popen(
        rootless.command(
            "run",
            "--rm",
            "--sdnotify=healthy",
            "--network",
            "none",
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "0.2s",
            "--stop-timeout",
            "1",
            *flags,
            "--rootfs",
            str(rootfs),
            "sh",
            "-c",
            script,
        ),
        env={**rootless.env, "NOTIFY_SOCKET": str(sock_path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.wait()


def test_sdnotify_healthy_ready_once_the_check_passes(rootless, busybox_rootfs, tmp_path):
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        proc = _healthy_run(
            rootless, busybox_rootfs, tmp_path / "notify.sock",
            script="sleep 1.5; touch /tmp/ok; sleep 60",
        )  # fmt: skip
        try:
            first = _messages(sock, "MAINPID")[-1]
            started = time.monotonic()
            assert first["MAINPID"] == str(proc.pid) and "READY" not in first
            ready = _messages(sock, "READY")[-1]
            # Checks fail (and are not READY) until the command has made /tmp/ok.
            assert time.monotonic() - started >= 1.2
            assert ready["READY"] == "1"
            assert ready["MAINPID"] == str(proc.pid)  # the run, not the checking process
            inspect = rootless(
                "inspect", "--format", "{{.State.Health.Status}}", proc_name(rootless)
            )
            assert inspect.stdout.strip() == "healthy"
            sock.settimeout(1)
            with pytest.raises(TimeoutError):
                sock.recv(4096)  # READY is sent once, although later checks pass too
        finally:
            _stop(proc)
    assert proc.returncode == 137  # sh as PID 1 ignores SIGTERM: killed after 1 s
    assert rootless("ps", "-a", "-q").stdout.strip() == ""


def proc_name(rootless) -> str:
    return rootless("ps", "-q").stdout.split()[0]


def test_sdnotify_healthy_keeps_waiting_while_unhealthy(rootless, busybox_rootfs, tmp_path):
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        proc = _healthy_run(rootless, busybox_rootfs, tmp_path / "notify.sock",
                            "--health-retries", "1")  # fmt: skip
        try:
            assert "READY" not in _messages(sock, "MAINPID")[-1]
            deadline = time.monotonic() + 10
            status = ""
            while status != "unhealthy" and time.monotonic() < deadline:
                time.sleep(0.1)
                status = rootless(
                    "inspect", "--format", "{{.State.Health.Status}}", proc_name(rootless)
                ).stdout.strip()
            assert status == "unhealthy"
            # Unhealthy is not the end: as Podman, the run waits (the unit's start
            # timeout decides), and READY follows a later passing check.
            assert proc.poll() is None
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(4096)
            cid = proc_name(rootless)
            assert rootless("exec", cid, "touch", "/tmp/ok").returncode == 0
            sock.settimeout(10)
            assert _messages(sock, "READY")[-1]["READY"] == "1"
        finally:
            _stop(proc)


def test_sdnotify_healthy_needs_a_healthcheck(rootless, busybox_rootfs):
    r = rootless("run", "--rm", "--sdnotify=healthy", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125
    assert "--sdnotify=healthy needs a healthcheck" in r.stderr
    assert rootless("ps", "-a", "-q").stdout.strip() == ""


def _is_monitor_of(pid: str, cid: str) -> bool:
    # Once the container runs, the monitor execs rootless-logpump (whose argv names the
    # monitor and the container too); in the middle of that exec its cmdline reads empty.
    deadline = time.monotonic() + 2
    while not (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    argv = cmdline.split(b"\0")
    return b"rootless.supervise.monitor" in argv and cid.encode() in argv


@pytest.mark.parametrize("mode", ["conmon", "healthy"])
def test_sdnotify_detached_run_notifies_from_the_monitor(rootless, busybox_rootfs, tmp_path, mode):
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        r = rootless(
            "run", "-d", f"--sdnotify={mode}", "--network", "none",
            "--health-cmd", "true", "--health-interval", "0.2s",
            "--rootfs", str(busybox_rootfs), "sleep", "60",
            env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        try:
            first = _messages(sock, "MAINPID")[0]
            # The monitor outlives `run -d`: it is the unit's main process (as conmon).
            assert _is_monitor_of(first["MAINPID"], cid)
            assert ("READY" in first) == (mode == "conmon")
            ready = _messages(sock, "READY")[-1] if mode == "healthy" else first
            assert ready["READY"] == "1" and ready["MAINPID"] == first["MAINPID"]
        finally:
            assert rootless("rm", "-f", cid).returncode == 0


def test_sdnotify_created_container_notifies_on_start(rootless, busybox_rootfs, tmp_path):
    r = rootless("create", "--sdnotify=conmon", "--network", "none",
                 "--rootfs", str(busybox_rootfs), "sleep", "60")  # fmt: skip
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        try:
            r = rootless("start", cid, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
            assert r.returncode == 0, r.stderr
            fields = _messages(sock, "READY")[-1]
            assert fields["READY"] == "1" and _is_monitor_of(fields["MAINPID"], cid)
        finally:
            assert rootless("rm", "-f", cid).returncode == 0


def test_sigterm_ends_a_shell_without_handler_within_stop_timeout(rootless, busybox_rootfs):
    proc = subprocess.Popen(
        rootless.command(
            "run",
            "--rm",
            "--stop-timeout",
            "2",
            "--network",
            "none",
            "--rootfs",
            str(busybox_rootfs),
            "sh",
            "-c",
            "echo up; sleep 60",
        ),
        env=rootless.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        time.sleep(0.5)  # the supervisor relays signals once the record says running
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        elapsed = time.monotonic() - sent
        # PID 1 (sh) has no TERM handler, so only the SIGKILL after 2 s ends it.
        assert code == 137
        assert 1.5 <= elapsed < 5, elapsed
    finally:
        proc.kill()
        proc.wait()
    r = rootless("ps", "-a", "-q")
    assert r.stdout.strip() == ""  # the supervisor lived on to honour --rm


def test_generate_new_unit_recreates_the_container(rootless, busybox_rootfs, tmp_path):
    import shlex

    r = rootless("create", "--name", "web", "--network", "none", "--stop-timeout", "3",
                 "-e", "GREETING=hello world", "--rootfs", str(busybox_rootfs),
                 "sh", "-c", 'echo "$GREETING"')  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = rootless("generate", "systemd", "--new", "--restart-policy", "always", "web")
    assert r.returncode == 0, r.stderr
    service = dict(
        line.split("=", 1) for line in r.stdout.splitlines() if "=" in line and line[0] != "#"
    )
    assert service["Restart"] == "always" and service["Type"] == "notify"
    unit = tmp_path / "container-web.service"
    unit.write_text(r.stdout)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", unit.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    # What systemd would do on start: remove the old container, run the new one.
    pre = shlex.split(service["ExecStartPre"].lstrip("-"))
    start = shlex.split(service["ExecStart"].replace("$$", "$"))
    assert subprocess.run(pre, env=rootless.env, check=False).returncode == 0
    sock = _listen(tmp_path / "notify.sock")
    with sock:
        done = subprocess.run(
            start,
            env={**rootless.env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello world\n"
        assert _messages(sock, "READY")[-1]["READY"] == "1"
    assert rootless("ps", "-a", "-q").stdout.strip() == ""  # run --rm removed it
