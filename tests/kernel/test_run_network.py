"""Networking through `rootless run`: slirp4netns by default, published ports, /etc files."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from conftest import fetch_until_up, serve_on_host

from tests.docker_registry import free_port


def test_default_network_is_slirp4netns_with_etc_files(rootless, busybox_rootfs):
    r = rootless(
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "--rootfs",
        str(busybox_rootfs),
        "sh",
        "-c",
        "ip -o -4 addr show tap0; cat /etc/resolv.conf; cat /etc/hosts; cat /etc/hostname",
    )
    assert r.returncode == 0, r.stderr
    assert "10.0.2.100/24" in r.stdout
    assert "nameserver 9.9.9.9" in r.stdout
    assert "10.1.2.3\tdb" in r.stdout
    assert "10.0.2.100\tbox" in r.stdout
    assert r.stdout.strip().endswith("box")


def test_host_network_keeps_add_host_and_dns(rootless, busybox_rootfs):
    r = rootless(
        "run", "--rm", "--network", "host",
        "--add-host", "db:10.1.2.3", "--add-host", "gw:host-gateway", "--dns", "9.9.9.9",
        "--rootfs", str(busybox_rootfs),
        "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    hosts, _, resolv = r.stdout.partition("---\n")
    lines = hosts.splitlines()
    assert lines[:2] == ["10.1.2.3\tdb", "127.0.0.1\tgw"]  # first: they win
    with open("/etc/hosts") as f:  # then the host's own entries
        host_lines = [line for line in f.read().splitlines() if line.strip()]
    assert all(line in lines for line in host_lines)
    assert "nameserver 9.9.9.9" in resolv.splitlines()


def test_host_loopback_only_when_allowed(rootless, busybox_rootfs):
    server, port = serve_on_host(b"from-host")
    try:
        # busybox's static wget crashes here; nc speaks enough HTTP.
        fetch = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.0.2.2 {port}"
        cmd = ("sh", "-c", f"{fetch} | tail -n 1 | grep . || echo unreachable")
        r = rootless("run", "--rm", "--rootfs", str(busybox_rootfs), *cmd)
        assert r.stdout.strip() == "unreachable", r.stderr
        r = rootless(
            "run",
            "--rm",
            "--network",
            "slirp4netns:allow_host_loopback=true",
            "--rootfs",
            str(busybox_rootfs),
            *cmd,
        )
        assert r.stdout.strip() == "from-host", r.stderr
    finally:
        server.shutdown()


@pytest.fixture
def cleanup(rootless):  # type: ignore[no-untyped-def]
    yield
    rootless("rm", "-af")


def test_published_port_of_a_detached_httpd(rootless, busybox_rootfs, cleanup):
    (busybox_rootfs / "www").mkdir()
    (busybox_rootfs / "www" / "index.html").write_text("hello from the container\n")
    port = free_port()
    r = rootless(
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        f"127.0.0.1:{port}:80",
        "--rootfs",
        str(busybox_rootfs),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )
    assert r.returncode == 0, r.stderr
    assert fetch_until_up(f"http://127.0.0.1:{port}/") == b"hello from the container\n"
    r = rootless("port", "web")
    assert r.stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert rootless("port", "web", "80").stdout.strip() == f"127.0.0.1:{port}"


def test_port_in_use_is_refused_before_start(rootless, busybox_rootfs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = rootless(
            "run", "--rm", "-p", f"127.0.0.1:{port}:80", "--rootfs", str(busybox_rootfs), "true"
        )
    assert r.returncode == 125
    assert "already in use" in r.stderr
    assert rootless("ps", "-a", "-q").stdout == ""


def test_network_none_cannot_publish(rootless, busybox_rootfs):
    r = rootless(
        "run", "--rm", "--network", "none", "-p", "8080:80", "--rootfs", str(busybox_rootfs), "true"
    )
    assert r.returncode == 125 and "cannot publish ports with --network none" in r.stderr


@pytest.mark.parametrize("network", ["slirp4netns", "pasta"])
def test_a_setup_failure_is_reported_not_the_network_helper(rootless, busybox_rootfs, network):
    # The mount target's parent is a file: the container's setup fails before the
    # network helper attaches, which then fails too; the cause is the one to show.
    r = rootless("run", "--rm", "--network", network, "-v", f"{busybox_rootfs}:/bin/busybox/x",
                 "--rootfs", str(busybox_rootfs), "true")  # fmt: skip
    assert r.returncode == 125
    assert "cannot make the mount point /bin/busybox/x" in r.stderr, r.stderr
    assert network not in r.stderr


def test_no_helper_outlives_the_container(rootless, busybox_rootfs, cleanup):
    import os
    from pathlib import Path

    def slirps(pids: list[str]) -> list[str]:
        alive = []
        for p in pids:
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == "slirp4netns":
                    alive.append(p)
            except OSError:
                continue
        return alive

    r = rootless("run", "-d", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    cid = r.stdout.strip()
    found = subprocess.run(
        ["pgrep", "-u", str(os.getuid()), "-x", "slirp4netns"], capture_output=True, text=True
    )
    before = found.stdout.split()
    assert before, "no slirp4netns for the detached container"
    assert rootless("rm", "-f", cid).returncode == 0
    deadline = time.monotonic() + 5
    while slirps(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slirps(before) == []
