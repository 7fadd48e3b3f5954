"""-p on user networks for real: the holder's slirp4netns forwards host ports to the
containers' addresses on the bridge; forwards go with their container."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _usernet import holders_left, network_state, slirp_pids, wait_gone
from conftest import ok as _ok

from tests.docker_registry import free_port


def _get(port: int) -> str:
    """What httpd in the container serves as /etc/hostname."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=5) as r:
        return str(r.read().decode()).strip()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _httpd(rootless: Any, rootfs: Path, name: str, *publish: str) -> None:
    flags = [a for p in publish for a in ("-p", p)]
    argv = ["httpd", "-f", "-p", "80", "-h", "/etc"]
    _ok(rootless("run", "-d", "--name", name, "--hostname", f"{name}-host", "--network", "pub",
                 *flags, "--rootfs", str(rootfs), *argv))  # fmt: skip


def test_published_ports_reach_containers_and_go_with_them(rootless, busybox_rootfs):
    _ok(rootless("network", "create", "pub"))
    p1, in_use = free_port(), free_port()
    holder: dict[str, Any] = {}
    try:
        # Two containers publish the same container port on different host ports, one
        # of them on a random port of the host's loopback.
        _httpd(rootless, busybox_rootfs, "web1", f"{p1}:80")
        _httpd(rootless, busybox_rootfs, "web2", "127.0.0.1::80")
        line = _ok(rootless("port", "web2")).strip()
        assert line.startswith("80/tcp -> 127.0.0.1:"), line
        p2 = int(line.rsplit(":", 1)[1])
        assert _get(p1) == "web1-host"
        assert _get(p2) == "web2-host"
        assert _ok(rootless("port", "web1")).strip() == f"80/tcp -> 0.0.0.0:{p1}"
        holder = network_state(rootless, "pub")["holder"]
        slirp = slirp_pids(holder["inner"])
        assert len(slirp) == 1

        # A host port in use is a clear error before anything starts.
        r = rootless("run", "-d", "--name", "web3", "--network", "pub", "-p", f"{p1}:80",
                     "--rootfs", str(busybox_rootfs), "true")  # fmt: skip
        assert r.returncode == 125 and f"host port 0.0.0.0:{p1}/tcp is already in use" in r.stderr
        # ... and at start, when it was taken after the create.
        _ok(rootless("create", "--name", "late", "--hostname", "late-host", "--network", "pub",
                     "-p", f"{in_use}:80", "--rootfs", str(busybox_rootfs),
                     "httpd", "-f", "-p", "80", "-h", "/etc"))  # fmt: skip
        with socket.socket() as taken:
            taken.bind(("0.0.0.0", in_use))
            taken.listen()
            r = rootless("start", "late")
        assert r.returncode != 0 and f"{in_use}/tcp is already in use" in r.stderr, r.stderr
        # Once free again, it starts and is reached.
        _ok(rootless("start", "late"))
        assert _get(in_use) == "late-host"

        # Removing a container removes its forward; the others keep theirs.
        _ok(rootless("rm", "-f", "web1"))
        assert _refused(p1)
        assert _get(p2) == "web2-host"
        # The freed host port can be published again at once.
        _httpd(rootless, busybox_rootfs, "web4", f"{p1}:80")
        assert _get(p1) == "web4-host"
    finally:
        rootless("rm", "-f", "web1", "web2", "web4", "late")
    assert holder and wait_gone([holder["pid"], holder["inner"], *slirp]) == []
    assert _refused(p2) and _refused(p1)
    assert not (Path(rootless.runtime_dir) / "rootless" / "networks" / "pub").exists()


def test_internal_networks_and_ipv6_host_addresses_are_refused(rootless, busybox_rootfs):
    _ok(rootless("network", "create", "--internal", "closed"))
    r = rootless("run", "--rm", "--network", "closed", "-p", "8080:80", "--rootfs",
                 str(busybox_rootfs), "true")  # fmt: skip
    assert r.returncode == 125 and "it is --internal" in r.stderr
    _ok(rootless("network", "create", "pub"))
    r = rootless("run", "--rm", "--network", "pub", "-p", "[::1]:8080:80", "--rootfs",
                 str(busybox_rootfs), "true")  # fmt: skip
    assert r.returncode == 125 and "IPv6" in r.stderr
    assert rootless("ps", "-aq").stdout.strip() == ""


@pytest.fixture(autouse=True)
def _no_holder_left(rootless):
    yield
    assert holders_left(rootless) == []


def test_network_rm_right_after_the_last_container_ends_the_holder(rootless, busybox_rootfs):
    _ok(rootless("network", "create", "brief"))
    _ok(rootless("run", "-d", "--name", "one", "--network", "brief", "--rootfs",
                 str(busybox_rootfs), "sleep", "300"))  # fmt: skip
    holder = network_state(rootless, "brief")["holder"]
    _ok(rootless("rm", "-f", "one"))
    started = time.monotonic()
    # The holder would linger 2 s for a next container; rm tells it to go now.
    _ok(rootless("network", "rm", "brief"))
    assert time.monotonic() - started < 1.5
    assert wait_gone([holder["pid"], holder["inner"]], timeout=1.0) == []
