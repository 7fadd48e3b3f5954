"""More of `rootless run`'s networking through the CLI: --mac-address, -P with an image's
EXPOSE ports, UDP and range publishing, and pasta serving the host."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import fetch_until_up, ok

MAC = "92:d0:c6:0a:29:33"


@pytest.fixture
def cleanup(rootless):  # type: ignore[no-untyped-def]
    yield
    rootless("rm", "-af")
    rootless("network", "rm", "-f", "macnet")


def _host_address() -> str | None:
    """A global IPv4 address of the host, or None."""
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "scope", "global"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", ()):
            return str(addr["local"])
    return None


def _host_ports(rootless, name: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """``rootless port NAME`` as {"80/tcp": host port}."""
    ports = {}
    for line in ok(rootless("port", name)).splitlines():
        ctr, _, host = line.partition(" -> ")
        ports[ctr] = int(host.rpartition(":")[2])
    return ports


# -- --mac-address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "device"), [("slirp4netns", "tap0"), ("pasta", None), ("macnet", "eth0")]
)
def test_mac_address_is_set_on_the_interface(rootless, busybox_rootfs, cleanup, network, device):
    if network == "macnet":
        ok(rootless("network", "create", "macnet"))
    # pasta names the interface after the host's one with the default route.
    show = (
        f"cat /sys/class/net/{device}/address"
        if device
        else ("for d in /sys/class/net/*; do [ $d = /sys/class/net/lo ] || cat $d/address; done")
    )
    r = rootless(
        "run", "--rm", "--network", network, "--mac-address", MAC.upper(),
        "--rootfs", str(busybox_rootfs), "sh", "-c", show,
    )  # fmt: skip
    assert ok(r).split() == [MAC]


def test_mac_address_with_create(rootless, busybox_rootfs, cleanup):
    r = rootless(
        "create", "--name", "m", "--mac-address", MAC,
        "--rootfs", str(busybox_rootfs), "cat", "/sys/class/net/tap0/address",
    )  # fmt: skip
    ok(r)
    assert ok(rootless("start", "-a", "m")).strip() == MAC


@pytest.mark.parametrize("network", ["none", "host"])
def test_mac_address_refused_where_there_is_no_own_interface(rootless, busybox_rootfs, network):
    r = rootless(
        "run", "--rm", "--network", network, "--mac-address", MAC,
        "--rootfs", str(busybox_rootfs), "true",
    )  # fmt: skip
    assert r.returncode == 125
    assert f"cannot set --mac-address with --network {network}" in r.stderr
    assert "slirp4netns, pasta or a user network" in r.stderr
    assert ok(rootless("ps", "-a", "-q")) == ""


@pytest.mark.parametrize("mac", ["92:d0:c6:0a:29", "93:d0:c6:0a:29:33", "zz:d0:c6:0a:29:33"])
def test_bad_mac_address_is_refused(rootless, busybox_rootfs, mac):
    r = rootless("run", "--rm", "--mac-address", mac, "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125
    assert f'invalid --mac-address "{mac}"' in r.stderr


# -- publishing ---------------------------------------------------------------------------


@pytest.fixture
def exposing_image(rootless, busybox_rootfs: Path, tmp_path: Path) -> str:
    """The busybox rootfs imported with EXPOSE 80 and 8080/udp, serving /www on 80."""
    (busybox_rootfs / "www").mkdir()
    (busybox_rootfs / "www" / "index.html").write_text("exposed\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(
        ["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", str(busybox_rootfs),
         "-cf", str(tar), "."],
        check=True,
    )  # fmt: skip
    ok(
        rootless(
            "import", "-c", "EXPOSE 80 8080/udp",
            "-c", 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]', str(tar), "exposer:1",
        )
    )  # fmt: skip
    return "localhost/exposer:1"


def test_publish_all_maps_exposed_ports_to_random_host_ports(rootless, exposing_image, cleanup):
    ok(rootless("run", "-d", "--name", "pub", "-P", exposing_image))
    ports = _host_ports(rootless, "pub")
    assert sorted(ports) == ["80/tcp", "8080/udp"]
    assert len(set(ports.values())) == 2 and all(p >= 1024 for p in ports.values())
    assert fetch_until_up(f"http://127.0.0.1:{ports['80/tcp']}/") == b"exposed\n"
    assert ok(rootless("port", "pub", "80")).strip().endswith(f":{ports['80/tcp']}")


def _udp_exchange(address: str, port: int, timeout: float = 15.0) -> bytes:
    """Send datagrams until one is answered; the reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        deadline = time.monotonic() + timeout
        while True:
            s.sendto(b"ping\n", (address, port))
            try:
                return s.recv(1024)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    raise AssertionError("unreachable")


# Debian's busybox has no UDP server (its nc lacks -u, no udpsvd): a static echo instead.
UDP_ECHO_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(5353)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    for (;;) {
        char buf[512], out[600];
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) return 1;
        buf[n] = 0;
        int m = snprintf(out, sizeof out, "pong-%s", buf);
        sendto(s, out, m, 0, (struct sockaddr *)&peer, len);
    }
}
"""


@pytest.fixture
def udp_echo_rootfs(busybox_rootfs: Path, tmp_path: Path) -> Path:
    """The busybox rootfs with /udpecho, which answers "ping" on UDP port 5353."""
    source = tmp_path / "udpecho.c"
    source.write_text(UDP_ECHO_C)
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(busybox_rootfs / "udpecho"), str(source)], check=True
    )
    return busybox_rootfs


@pytest.mark.parametrize("loopback", [False, True])
def test_udp_published_port_is_answered(rootless, udp_echo_rootfs, cleanup, loopback):
    if loopback:
        # slirp4netns 1.2.0 sends replies to loopback clients to 127.0.0.1, which
        # --disable-host-loopback drops (docs/networking.md, known limits).
        network, address = "slirp4netns:allow_host_loopback=true", "127.0.0.1"
    else:
        host = _host_address()
        if host is None:
            pytest.skip("the host has no global IPv4 address")
        network, address = "slirp4netns", host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    ok(
        rootless(
            "run", "-d", "--name", "udp", "--network", network, "-p", f"{address}:{port}:5353/udp",
            "--rootfs", str(udp_echo_rootfs), "/udpecho",
        )
    )  # fmt: skip
    assert ok(rootless("port", "udp")).strip() == f"5353/udp -> {address}:{port}"
    assert _udp_exchange(address, port) == b"pong-ping\n"


def test_port_range_maps_one_to_one(rootless, busybox_rootfs, cleanup):
    base = _free_range(3)
    ranges = f"127.0.0.1:{base}-{base + 2}:80-82"
    serve = "; ".join(
        f"mkdir /w{p}; echo r{p} > /w{p}/index.html; httpd -p {p} -h /w{p}" for p in (80, 81, 82)
    )
    ok(
        rootless(
            "run", "-d", "--name", "rng", "-p", ranges, "--rootfs", str(busybox_rootfs),
            "sh", "-c", f"{serve}; exec sleep 1000",
        )
    )  # fmt: skip
    assert ok(rootless("port", "rng")).splitlines() == [
        f"{80 + i}/tcp -> 127.0.0.1:{base + i}" for i in range(3)
    ]
    for i in range(3):
        assert fetch_until_up(f"http://127.0.0.1:{base + i}/") == f"r{80 + i}\n".encode()


def _free_range(n: int) -> int:
    """The first of ``n`` consecutive free TCP ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise AssertionError("no free port range")


def test_pasta_publishes_httpd_to_the_host(rootless, busybox_rootfs, cleanup):
    (busybox_rootfs / "www").mkdir()
    (busybox_rootfs / "www" / "index.html").write_text("through pasta\n")
    port = _free_range(1)
    ok(
        rootless(
            "run", "-d", "--name", "pst", "--network", "pasta", "-p", f"127.0.0.1:{port}:80",
            "--rootfs", str(busybox_rootfs), "httpd", "-f", "-p", "80", "-h", "/www",
        )
    )  # fmt: skip
    assert ok(rootless("port", "pst")).strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert fetch_until_up(f"http://127.0.0.1:{port}/") == b"through pasta\n"
