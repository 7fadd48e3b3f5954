"""-p / -P parsing and planning (pure), plus free-port choice on this host's loopback."""

from __future__ import annotations

import socket

import pytest

from rootless.errors import ConfigError
from rootless.network.ports import (
    PortMapping,
    assign_free_ports,
    parse_expose,
    parse_publish,
    plan_publish,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping("", 0, 80, "tcp")]),
        ("8080:80", [PortMapping("", 8080, 80, "tcp")]),
        ("53:53/udp", [PortMapping("", 53, 53, "udp")]),
        ("127.0.0.1:8080:80", [PortMapping("127.0.0.1", 8080, 80, "tcp")]),
        ("127.0.0.1::80/udp", [PortMapping("127.0.0.1", 0, 80, "udp")]),
        ("[::1]:8080:80", [PortMapping("::1", 8080, 80, "tcp")]),
        ("[::]::80", [PortMapping("::", 0, 80, "tcp")]),
        (":80", [PortMapping("", 0, 80, "tcp")]),
        (
            "8000-8002:80-82",
            [
                PortMapping("", 8000, 80, "tcp"),
                PortMapping("", 8001, 81, "tcp"),
                PortMapping("", 8002, 82, "tcp"),
            ],
        ),
        ("80-81/udp", [PortMapping("", 0, 80, "udp"), PortMapping("", 0, 81, "udp")]),
    ],
)
def test_parse_publish(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "no container port"),
        ("8080:", "no container port"),
        ("80/sctp", 'protocol "sctp"'),
        ("http", '"http" is not a port'),
        ("0", "out of range"),
        ("65536", "out of range"),
        ("90-80", "ends before it starts"),
        ("8000-8001:80", "host range has 2 ports, container range 1"),
        ("localhost:8080:80", '"localhost" is not an IP address'),
        ("[::1:8080:80", "[addr]:port"),
    ],
)
def test_parse_publish_errors(spec, why):
    with pytest.raises(ConfigError, match="invalid port spec") as err:
        parse_publish(spec)
    assert why in str(err.value)
    assert "[ip:][hostPort:]containerPort" in str(err.value)


def test_str_is_podman_port_format():
    assert str(PortMapping("", 8080, 80, "tcp")) == "80/tcp -> 0.0.0.0:8080"
    assert str(PortMapping("::1", 5353, 53, "udp")) == "53/udp -> [::1]:5353"


def test_expose_gives_random_host_ports():
    assert parse_expose(["80/tcp", "53/udp", "9000-9001"]) == [
        PortMapping("", 0, 80, "tcp"),
        PortMapping("", 0, 53, "udp"),
        PortMapping("", 0, 9000, "tcp"),
        PortMapping("", 0, 9001, "tcp"),
    ]
    with pytest.raises(ConfigError, match="invalid exposed port"):
        parse_expose(["8080:80"])


def test_plan_skips_exposed_ports_already_published():
    plan = plan_publish(["8080:80"], exposed=["80/tcp", "80/udp", "443"])
    assert plan == [
        PortMapping("", 8080, 80, "tcp"),
        PortMapping("", 0, 80, "udp"),
        PortMapping("", 0, 443, "tcp"),
    ]


@pytest.mark.parametrize(
    "specs",
    [
        ["8080:80", "8080:81"],
        ["127.0.0.1:8080:80", "8080:81"],  # all addresses overlap 127.0.0.1
        ["8000-8005:80-85", "8003:90"],
    ],
)
def test_plan_rejects_a_host_port_used_twice(specs):
    with pytest.raises(ConfigError, match="published twice"):
        plan_publish(specs)


def test_plan_allows_same_port_on_other_protocol_or_address():
    assert len(plan_publish(["8080:80", "8080:80/udp"])) == 2
    assert len(plan_publish(["127.0.0.1:8080:80", "127.0.0.2:8080:81"])) == 2


def test_assign_free_ports_fills_zeros_with_distinct_bindable_ports():
    plan = [PortMapping("127.0.0.1", 0, p, "tcp") for p in (80, 81, 82)]
    plan.append(PortMapping("127.0.0.1", 1234, 83, "tcp"))
    out = assign_free_ports(plan)
    chosen = [m.host_port for m in out[:3]]
    assert len(set(chosen)) == 3 and all(p > 0 for p in chosen)
    assert out[3].host_port == 1234
    for port in chosen:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
