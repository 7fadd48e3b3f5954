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


def test_sdnotify_healthy_refused(rootless, busybox_rootfs):
    r = rootless("run", "--rm", "--sdnotify=healthy", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125
    assert "--sdnotify=healthy" in r.stderr


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
