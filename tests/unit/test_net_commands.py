"""Command lines of slirp4netns and pasta, and slirp API requests (pure)."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.network.mode import SlirpOptions
from rootless.network.pasta import pasta_command
from rootless.network.ports import PortMapping
from rootless.network.slirp import hostfwd_request, slirp_command


def test_slirp_command_defaults_deny_host_loopback():
    cmd = slirp_command(42, SlirpOptions(), exit_fd=5, ready_fd=6, api_socket="/run/s.sock")
    assert cmd == [
        "slirp4netns", "--configure", "--mtu=65520", "--cidr=10.0.2.0/24", "--exit-fd=5",
        "--ready-fd=6", "--api-socket=/run/s.sock", "--disable-host-loopback", "42", "tap0",
    ]  # fmt: skip


def test_slirp_command_options():
    opts = SlirpOptions(allow_host_loopback=True, enable_ipv6=True, outbound_addr="192.0.2.2")
    cmd = slirp_command(42, opts, exit_fd=5, ready_fd=6, api_socket="/s")
    assert "--disable-host-loopback" not in cmd
    assert "--enable-ipv6" in cmd and "--outbound-addr=192.0.2.2" in cmd


def test_hostfwd_request():
    req = hostfwd_request(PortMapping("", 8080, 80, "udp"), "10.0.2.100")
    assert req == {
        "execute": "add_hostfwd",
        "arguments": {
            "proto": "udp",
            "host_addr": "0.0.0.0",
            "host_port": 8080,
            "guest_addr": "10.0.2.100",
            "guest_port": 80,
        },
    }
    with pytest.raises(ConfigError, match="use --network pasta"):
        hostfwd_request(PortMapping("::1", 8080, 80, "tcp"), "10.0.2.100")


def test_pasta_command_defaults():
    cmd = pasta_command(42, [], [])
    assert cmd[:2] == ["pasta", "-f"] and cmd[-1] == "42"
    assert "-q" in cmd and "--no-map-gw" in cmd and "--config-net" in cmd
    for flag in ("-t", "-u", "-T", "-U"):
        assert cmd[cmd.index(flag) + 1] == "none"


def test_pasta_command_ports_and_user_options():
    ports = [PortMapping("127.0.0.1", 8080, 80, "tcp"), PortMapping("", 5353, 53, "udp")]
    cmd = pasta_command(42, ["-T", "3306", "--map-gw", "--debug"], ports)
    assert cmd[cmd.index("-t") + 1] == "127.0.0.1/8080:80"
    assert cmd[cmd.index("-u") + 1] == "5353:53"
    # The user's -T replaces our "-T none"; --map-gw is ours to interpret, not pasta's.
    assert cmd.count("-T") == 1 and cmd[cmd.index("-T") + 1] == "3306"
    assert "--map-gw" not in cmd and "--no-map-gw" not in cmd
    assert "-q" not in cmd and cmd[-2] == "--debug"


def test_pasta_command_refuses_flags_it_owns():
    with pytest.raises(ConfigError, match='"--config-net" is set by rootless'):
        pasta_command(42, ["--config-net"], [])
