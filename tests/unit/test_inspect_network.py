"""inspect's NetworkSettings, from a container's options and its networks' state (pure)."""

from __future__ import annotations

from rootless.engine.listing import network_settings


def test_ports_and_no_address_off_user_networks():
    ports = [["", 8080, 80, "tcp"], ["127.0.0.1", 53, 53, "udp"], ["::1", 8081, 80, "tcp"]]
    options = {"network": "slirp4netns", "ports": ports}
    settings = network_settings(options, {})
    assert settings["Ports"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
    }
    assert settings["IPAddress"] == "" and settings["Networks"] == {}


def test_each_user_network_and_the_first_at_the_top():
    attached = {
        "front": {"ip": "10.89.0.2", "mac": "02:52:0a:59:00:02", "aliases": ["www"],
                  "gateway": "10.89.0.1", "prefixlen": 24},
        "back": {"ip": "10.89.1.3", "mac": "02:52:0a:59:01:03", "aliases": [],
                 "gateway": "10.89.1.1", "prefixlen": 24},
    }  # fmt: skip
    settings = network_settings({"network": "front"}, attached)
    assert list(settings["Networks"]) == ["front", "back"]
    assert settings["Networks"]["back"] == {
        "NetworkID": "back", "IPAddress": "10.89.1.3", "IPPrefixLen": 24,
        "Gateway": "10.89.1.1", "MacAddress": "02:52:0a:59:01:03", "Aliases": [],
    }  # fmt: skip
    assert (settings["IPAddress"], settings["Gateway"]) == ("10.89.0.2", "10.89.0.1")
    assert settings["Networks"]["front"]["Aliases"] == ["www"]
