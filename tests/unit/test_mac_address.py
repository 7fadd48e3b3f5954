"""--mac-address: parsing, and the helpers' command lines (pure)."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.network.mode import SlirpOptions, parse_mac, parse_network
from rootless.network.slirp import slirp_command


def test_parse_mac_lowercases():
    assert parse_mac("92:D0:C6:0A:29:33") == "92:d0:c6:0a:29:33"


@pytest.mark.parametrize(
    "mac", ["92:d0:c6:0a:29", "92-d0-c6-0a-29-33", "g2:d0:c6:0a:29:33", "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01", "92:d0:c6:0a:29:33:00"],
)  # fmt: skip
def test_parse_mac_refuses_malformed_and_multicast(mac):
    with pytest.raises(ConfigError, match="invalid --mac-address"):
        parse_mac(mac)


def test_user_network_mac_option_must_be_unicast():
    with pytest.raises(ConfigError, match="unicast"):
        parse_network("net:mac=03:00:00:00:00:01")
    assert parse_network("net:mac=02:00:00:00:00:01").network.mac == "02:00:00:00:00:01"


def test_slirp_command_sets_the_tap_mac():
    cmd = slirp_command(
        42, SlirpOptions(mac="92:d0:c6:0a:29:33"), exit_fd=5, ready_fd=6, api_socket="/s"
    )
    assert "--macaddress=92:d0:c6:0a:29:33" in cmd
    assert cmd[-2:] == ["42", "tap0"]
    plain = slirp_command(42, SlirpOptions(), exit_fd=5, ready_fd=6, api_socket="/s")
    assert not any(a.startswith("--macaddress") for a in plain)
