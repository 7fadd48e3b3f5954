"""User networks for real, as the unprivileged user: names, aliases, egress, cleanup, verbs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _usernet import alive, holders_left, network_state, slirp_pids, wait_gone
from conftest import ok as _ok
from conftest import serve_on_host

FETCH = "printf 'GET /{path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1"


def test_names_aliases_later_containers_and_cleanup(rootless, busybox_rootfs):
    rootfs = str(busybox_rootfs)
    _ok(rootless("network", "create", "n1"))
    try:
        # httpd serves /etc: GET /hostname tells which container answered.
        _ok(rootless("run", "-d", "--name", "web", "--hostname", "web-host",
                     "--network", "n1:alias=www", "--rootfs", rootfs,
                     "httpd", "-f", "-p", "80", "-h", "/etc"))  # fmt: skip
        _ok(rootless("run", "-d", "--name", "first", "--network", "n1", "--rootfs", rootfs,
                     "sleep", "300"))  # fmt: skip
        state = network_state(rootless, "n1")
        holder = state["holder"]
        outer, inner = holder["pid"], holder["inner"]
        slirp = slirp_pids(inner)
        assert len(slirp) == 1 and alive(outer) and alive(inner)

        script = "; ".join(
            [
                FETCH.format(path="hostname", host="web", port=80),
                FETCH.format(path="hostname", host="www", port=80),
                "ip route | grep default",
                "cat /etc/resolv.conf",
            ]
        )
        out = _ok(rootless("run", "--rm", "--network", "n1", "--rootfs", rootfs,
                           "sh", "-c", script))  # fmt: skip
        lines = out.splitlines()
        assert lines[0] == "web-host" and lines[1] == "web-host", out
        assert "default via 10.89.0.1" in out
        assert "nameserver 10.89.0.1" in out

        # A container started later is resolved by one that was already running.
        _ok(rootless("run", "-d", "--name", "late", "--network", "n1:ip=10.89.0.77",
                     "--rootfs", rootfs, "sleep", "300"))  # fmt: skip
        out = _ok(rootless("exec", "first", "nslookup", "late"))
        assert "10.89.0.77" in out, out
        out = _ok(rootless("exec", "late", "cat", "/etc/hosts"))
        assert "10.89.0.77\t" in out and "late" in out
        # Unknown names are not invented: the upstream (slirp's resolver) says so.
        r = rootless("exec", "first", "nslookup", "no-such-container")
        assert "can't find no-such-container" in r.stdout + r.stderr

        inspect = json.loads(_ok(rootless("network", "inspect", "n1")))[0]
        ips = {c["name"]: c["ip"] for c in inspect["containers"].values()}
        assert ips["late"] == "10.89.0.77" and set(ips) == {"web", "first", "late"}
        assert inspect["subnets"] == [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}]

        # An address in use is refused before the container's command runs.
        r = rootless("run", "--rm", "--network", "n1:ip=10.89.0.77", "--rootfs", rootfs, "true")
        assert r.returncode == 125 and "already in use" in r.stderr

        r = rootless("network", "rm", "n1")
        assert r.returncode != 0 and "containers use it" in r.stderr
    finally:
        rootless("rm", "-f", "web", "first", "late")
    # Nothing is left once the last container is gone: holder, its namespace, slirp4netns.
    assert wait_gone([outer, inner, *slirp]) == []
    assert not (Path(rootless.runtime_dir) / "rootless" / "networks" / "n1").exists()
    _ok(rootless("network", "rm", "n1"))
    assert _ok(rootless("network", "ls", "-q")) == ""


def test_egress_reaches_host_loopback_only_when_allowed(rootless, busybox_rootfs):
    server, port = serve_on_host(b"from-host")
    try:
        _ok(rootless("network", "create", "-o", "allow_host_loopback=true", "open"))
        _ok(rootless("network", "create", "closed"))
        fetch = FETCH.format(path="", host="host.containers.internal", port=port)
        fetch_gw = FETCH.format(path="", host="10.0.2.2", port=port)
        for net, expected in (("open", "from-host"), ("closed", "unreachable")):
            cmd = f"({fetch_gw}) | grep . || echo unreachable"
            out = _ok(rootless("run", "--rm", "--network", net, "--rootfs", str(busybox_rootfs),
                               "sh", "-c", cmd))  # fmt: skip
            assert out.strip() == expected, (net, out)
        out = _ok(rootless("run", "--rm", "--network", "open", "--rootfs", str(busybox_rootfs),
                           "sh", "-c", fetch))  # fmt: skip
        assert out.strip() == "from-host"
    finally:
        server.shutdown()


def test_internal_network_has_no_route_out_but_resolves_names(rootless, busybox_rootfs):
    rootfs = str(busybox_rootfs)
    _ok(rootless("network", "create", "--internal", "--subnet", "10.91.0.0/24", "inner"))
    try:
        _ok(rootless("run", "-d", "--name", "db", "--network", "inner", "--rootfs", rootfs,
                     "sleep", "300"))  # fmt: skip
        script = "ip route; nslookup db; nslookup example.com || echo no-upstream"
        out = _ok(rootless("run", "--rm", "--network", "inner", "--rootfs", rootfs,
                           "sh", "-c", script))  # fmt: skip
        assert "default" not in out
        assert "10.91.0.2" in out
        assert "no-upstream" in out
    finally:
        rootless("rm", "-f", "db")


def test_network_verbs_and_errors(rootless, busybox_rootfs):
    _ok(rootless("network", "create", "--subnet", "10.92.0.0/16", "--gateway", "10.92.0.254",
                 "--label", "team=a", "big"))  # fmt: skip
    view = json.loads(_ok(rootless("network", "inspect", "big")))[0]
    assert view["subnets"] == [{"subnet": "10.92.0.0/16", "gateway": "10.92.0.254"}]
    assert view["labels"] == {"team": "a"}
    r = rootless("network", "create", "--subnet", "10.92.5.0/24", "clash")
    assert r.returncode == 125 and 'overlaps network "big"' in r.stderr
    r = rootless("network", "create", "--subnet", "10.0.2.0/24", "egress")
    assert r.returncode == 125 and "egress" in r.stderr
    r = rootless("network", "create", "--subnet", "10.93.0.1/24", "bits")
    assert r.returncode == 125 and "host bits" in r.stderr
    r = rootless("network", "create", "big")
    assert r.returncode == 125 and "already exists" in r.stderr
    _ok(rootless("network", "create", "spare"))
    assert _ok(rootless("network", "ls", "-q")).split() == ["big", "spare"]
    table = _ok(rootless("network", "ls"))
    assert table.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER"]

    # Unknown network and a bad ip=: clear errors, no container left running.
    r = rootless("run", "--rm", "--network", "nosuch", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125 and 'network "nosuch" not found' in r.stderr
    r = rootless("run", "--rm", "--network", "big:ip=10.50.0.3", "--rootfs",
                 str(busybox_rootfs), "true")  # fmt: skip
    assert r.returncode == 125 and "not a host address" in r.stderr

    _ok(rootless("create", "--name", "user", "--network", "spare", "--rootfs",
                 str(busybox_rootfs), "true"))  # fmt: skip
    assert _ok(rootless("network", "prune", "-f")).split() == ["big"]
    _ok(rootless("network", "rm", "-f", "spare"))
    assert _ok(rootless("network", "ls", "-q")) == ""
    assert rootless("inspect", "user").returncode != 0


def test_container_mode_shares_the_namespace(rootless, busybox_rootfs):
    rootfs = str(busybox_rootfs)
    _ok(rootless("network", "create", "n2"))
    try:
        _ok(rootless("run", "-d", "--name", "a", "--hostname", "a-host", "--network", "n2",
                     "--rootfs", rootfs, "httpd", "-f", "-p", "8080", "-h", "/etc"))  # fmt: skip
        _ok(rootless("run", "-d", "--name", "b", "--rootfs", rootfs, "sleep", "300"))
        # The sidecar sees a's eth0 and reaches a's server on 127.0.0.1.
        fetch = FETCH.format(path="hostname", host="127.0.0.1", port=8080)
        cmd = f"ip -o -4 addr show eth0; {fetch}"
        out = _ok(rootless("run", "--rm", "--network", "container:a", "--rootfs", rootfs,
                           "sh", "-c", cmd))  # fmt: skip
        assert "10.89.0.2/24" in out and out.splitlines()[-1] == "a-host", out
        # b uses slirp4netns in its own namespace: the sidecar gets its tap0.
        out = _ok(rootless("run", "--rm", "--network", "container:b", "--rootfs", rootfs,
                           "ip", "-o", "-4", "addr", "show", "tap0"))  # fmt: skip
        assert "10.0.2.100/24" in out
        _ok(rootless("stop", "-t", "1", "b"))
        r = rootless("run", "--rm", "--network", "container:b", "--rootfs", rootfs, "true")
        assert r.returncode == 125 and "not running" in r.stderr
    finally:
        rootless("rm", "-f", "a", "b")


def test_kill_9_of_the_holder_ends_its_egress(rootless, busybox_rootfs):
    _ok(rootless("network", "create", "n3"))
    _ok(rootless("run", "-d", "--name", "c", "--network", "n3", "--rootfs", str(busybox_rootfs),
                 "sleep", "300"))  # fmt: skip
    try:
        holder = network_state(rootless, "n3")["holder"]
        slirp = slirp_pids(holder["inner"])
        os.kill(holder["pid"], 9)
        assert wait_gone([holder["pid"], holder["inner"], *slirp]) == []
    finally:
        rootless("rm", "-f", "c")
    # The next container starts a new holder.
    out = _ok(rootless("run", "--rm", "--network", "n3", "--rootfs", str(busybox_rootfs),
                       "ip", "-o", "-4", "addr", "show", "eth0"))  # fmt: skip
    assert "10.89.0." in out


@pytest.fixture(autouse=True)
def _no_leftovers(rootless):
    yield
    # Whatever a test did, no holder of its networks may survive it.
    assert holders_left(rootless) == []


def _wait_restarted(rootless, name: str) -> None:
    """Until the restart policy has started ``name`` again and it runs."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = json.loads(_ok(rootless("inspect", name)))[0]
        if info["RestartCount"] >= 1 and info["State"]["Running"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} was not restarted")


def test_connect_and_disconnect(rootless, busybox_rootfs):
    rootfs = str(busybox_rootfs)
    _ok(rootless("network", "create", "front"))
    _ok(rootless("network", "create", "back"))
    try:
        _ok(rootless("run", "-d", "--name", "app", "--network", "front", "--rootfs", rootfs,
                     "sleep", "300"))  # fmt: skip
        _ok(rootless("run", "-d", "--name", "db", "--network", "back", "--rootfs", rootfs,
                     "sleep", "300"))  # fmt: skip
        _ok(rootless("network", "connect", "--alias", "api", "back", "app"))
        out = _ok(rootless("exec", "app", "ip", "-o", "-4", "addr"))
        assert "eth0" in out and "10.89.0.2/24" in out
        assert "eth1" in out and "10.89.1.3/24" in out
        assert "10.89.1.3" in _ok(rootless("exec", "db", "nslookup", "api"))
        nets = json.loads(_ok(rootless("inspect", "app")))[0]["NetworkSettings"]["Networks"]
        assert {n: v["IPAddress"] for n, v in nets.items()} == {
            "front": "10.89.0.2", "back": "10.89.1.3"
        }  # fmt: skip
        assert nets["back"]["Aliases"] == ["api"] and nets["back"]["Gateway"] == "10.89.1.1"
        ip = _ok(rootless("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "app"))
        assert ip.strip() == "10.89.0.2"
        _ok(rootless("network", "disconnect", "back", "app"))
        assert "eth1" not in _ok(rootless("exec", "app", "ip", "-o", "-4", "addr"))
        r = rootless("exec", "db", "nslookup", "api")
        assert "10.89.1.3" not in r.stdout
        # A connection is kept in the container: a restart by its policy, or a stopped
        # container connected, is on the network at its next start.
        _ok(rootless("network", "connect", "--alias", "api", "back", "app"))
        r = rootless("network", "rm", "back")
        assert r.returncode == 125 and "containers use it: db, app" in r.stderr
        _ok(rootless("stop", "-t", "1", "app"))
        _ok(rootless("start", "app"))
        assert "10.89.1." in _ok(rootless("exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"))
        # its first run exits 1 once the marker is there; the policy starts it again
        once = (
            "while ! test -e /m/go; do sleep 0.1; done; test -e /m/ran || { touch /m/ran; exit 1; }"
        )
        _ok(rootless("create", "--name", "later", "--restart", "on-failure", "--network", "front",
                     "-v", "later-marks:/m", "--rootfs", rootfs,
                     "sh", "-c", once + "; exec sleep 300"))  # fmt: skip
        _ok(rootless("network", "connect", "back", "later"))
        _ok(rootless("start", "later"))
        assert "eth1" in _ok(rootless("exec", "later", "ip", "-o", "-4", "addr"))
        _ok(rootless("exec", "later", "touch", "/m/go"))
        _wait_restarted(rootless, "later")
        assert "eth1" in _ok(rootless("exec", "later", "ip", "-o", "-4", "addr"))
        assert "10.89.1." in _ok(rootless("exec", "db", "nslookup", "later"))
        _ok(rootless("network", "disconnect", "back", "app"))
        _ok(rootless("restart", "-t", "1", "app"))
        assert "eth1" not in _ok(rootless("exec", "app", "ip", "-o", "-4", "addr"))
        r = rootless("network", "connect", "front", "app")
        assert r.returncode == 125 and "connected to network front already" in r.stderr
        # A slirp4netns container has a user namespace of its own: refused, clearly.
        _ok(rootless("run", "-d", "--name", "solo", "--rootfs", rootfs, "sleep", "300"))
        r = rootless("network", "connect", "back", "solo")
        assert r.returncode == 125 and "own user namespace" in r.stderr
    finally:
        rootless("rm", "-f", "app", "db", "solo", "later")
        rootless("volume", "rm", "-f", "later-marks")
