"""The service keys that `rootless run` flags stand for: parsing, `config`, run options."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from rootless.compose.files import load_project
from rootless.compose.model import Dependency, Logging
from rootless.compose.plan import config_hash
from rootless.compose.render import project_dict
from rootless.compose.to_run import service_run
from rootless.errors import ConfigError
from rootless.runtime.spec import Rlimit


def load(tmp_path, text):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(cwd=tmp_path, environ={"HOME": "/home/u"})


def error(tmp_path, text):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    return e.value.message


FULL = """
name: p
services:
  app:
    image: busybox
    ulimits: {nofile: 1024, nproc: {soft: 50, hard: 100}}
    shm_size: 96m
    mac_address: 92:D0:C6:0A:29:33
    tty: true
    stdin_open: true
    security_opt: ["seccomp:unconfined", no-new-privileges:false, label:disable]
    devices: [/dev/fuse, "/dev/null:/dev/mynull:r",
              {source: /dev/zero, target: /dev/z, permissions: rw}]
    logging: {driver: json-file, options: {max-size: 1m, max-file: "3", tag: x}}
    network_mode: service:db
  dns:
    image: busybox
    extra_hosts: ["db:10.0.0.5", "v6=fd00::1", "gw:host-gateway"]
    dns: 9.9.9.9
    dns_search: [example.com]
    dns_opt: ndots:2
  db:
    image: busybox
    privileged: true
    mem_limit: 512m
    pids_limit: 100
    deploy: {resources: {limits: {cpus: "0.5", memory: 512m}}}
"""


def test_keys_are_read(tmp_path):
    loaded = load(tmp_path, FULL)
    app = loaded.project.service("app")
    d = loaded.project.service("dns")
    assert d.extra_hosts == ("db:10.0.0.5", "v6:fd00::1", "gw:host-gateway")
    assert (d.dns, d.dns_search, d.dns_opt) == (("9.9.9.9",), ("example.com",), ("ndots:2",))
    assert app.ulimits == ("nofile=1024:1024", "nproc=50:100")
    assert app.shm_size == 96 << 20
    assert app.mac_address == "92:d0:c6:0a:29:33"
    assert app.tty and app.stdin_open
    assert app.devices == ("/dev/fuse", "/dev/null:/dev/mynull:r", "/dev/zero:/dev/z:rw")
    assert app.logging == Logging("json-file", (("max-file", "3"), ("max-size", "1m")))
    assert app.network_mode == "service:db"
    assert app.networks == ()
    assert app.depends_on == (Dependency("db"),)  # implicit, as in Compose
    db = loaded.project.service("db")
    assert db.privileged and db.mem_limit == 512 << 20 and db.pids_limit == 100
    assert db.cpus == 0.5
    assert loaded.warnings == (
        "compose.yaml:14: services.app.logging.options.tag: not supported by rootless, ignored",
    )


def test_run_options(tmp_path):
    project = load(tmp_path, FULL).project
    n = service_run(project, "dns").options.network
    assert n is not None
    assert n.add_hosts == ("db:10.0.0.5", "v6:fd00::1", "gw:host-gateway")
    assert n.dns == ("9.9.9.9",) and n.dns_search == ("example.com",)
    assert n.dns_options == ("ndots:2",)
    o = service_run(project, "app").options
    assert o.network is not None
    assert o.network.mode == "container:p-db-1"
    assert o.network.mac_address == "92:d0:c6:0a:29:33"
    assert o.ulimits == (
        Rlimit("RLIMIT_NOFILE", 1024, 1024),
        Rlimit("RLIMIT_NPROC", 50, 100),
    )
    assert o.shm_size == 96 << 20
    assert o.tty and o.interactive
    assert (o.seccomp, o.no_new_privileges, o.unmask) == (None, False, ())
    assert o.devices == ("/dev/fuse", "/dev/null:/dev/mynull:r", "/dev/zero:/dev/z:rw")
    assert o.extra["log_max_size"] == 1 << 20 and o.extra["log_max_files"] == 2
    assert not o.limits
    db = service_run(project, "db").options
    assert (db.cap_add, db.seccomp, db.unmask) == (("ALL",), None, ("ALL",))
    assert db.limits == {"memory": str(512 << 20), "cpus": "0.5", "pids-limit": "100"}


def test_defaults_change_nothing(tmp_path):
    o = service_run(load(tmp_path, "services: {a: {image: i}}").project, "a").options
    assert o.network is not None and o.network.add_hosts == () and o.network.dns == ()
    assert (o.tty, o.interactive, o.shm_size, o.ulimits, o.limits) == (False, False, None, (), {})
    assert (o.seccomp, o.no_new_privileges, o.unmask) == ("default", True, ())
    assert "log_max_size" not in o.extra


@pytest.mark.parametrize("mode", ["none", "host", "slirp4netns:mtu=1500", "pasta", "container:x"])
def test_network_modes_pass_through(tmp_path, mode):
    project = load(tmp_path, f"services: {{a: {{image: i, network_mode: '{mode}'}}}}").project
    o = service_run(project, "a").options
    assert o.network is not None and o.network.mode == mode
    assert project.networks == ()  # no default network made for it


def test_config_prints_them_and_reads_them_back(tmp_path):
    project = load(tmp_path, FULL).project
    out = project_dict(project)
    app = out["services"]["app"]
    assert out["services"]["dns"]["extra_hosts"] == ["db=10.0.0.5", "v6=fd00::1", "gw=host-gateway"]
    assert app["ulimits"] == {
        "nofile": {"soft": 1024, "hard": 1024},
        "nproc": {"soft": 50, "hard": 100},
    }
    assert app["logging"] == {"driver": "json-file", "options": {"max-file": "3", "max-size": "1m"}}
    assert app["network_mode"] == "service:db" and app["tty"] is True
    assert out["services"]["db"]["mem_limit"] == 512 << 20
    again = tmp_path / "again"
    again.mkdir()
    (again / "compose.yaml").write_text(yaml.safe_dump(out))
    back = load_project(cwd=again, environ={}).project
    assert sorted(back.services, key=str) == sorted(project.services, key=str)


@pytest.mark.parametrize(
    "change",
    ["dns: [1.1.1.1]", "shm_size: 1g", "tty: true", "ulimits: {nofile: 10}", "cpus: 1",
     "logging: {options: {max-size: 2m}}", "network_mode: host", "extra_hosts: [a:1.2.3.4]"],
)  # fmt: skip
def test_each_key_changes_the_config_hash(tmp_path, change):
    base = "services:\n  a:\n    image: i\n"
    before = config_hash(load(tmp_path, base).project, "a")
    assert config_hash(load(tmp_path, base + f"    {change}\n").project, "a") != before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("dns: [8.8.8.8, dns.example]", 'services.s.dns[1]: "dns.example" is not an IP address'),
        ("extra_hosts: [db]", 'services.s.extra_hosts[0]: invalid extra host "db" ""'),
        ("ulimits: {nofile: {soft: 10, hard: 5}}", "soft limit above hard limit"),
        ("shm_size: lots", 'services.s.shm_size: invalid size "lots"'),
        ("mac_address: 01:00:00:00:00:01", "services.s.mac_address: invalid --mac-address"),
        ("tty: sometimes", 'services.s.tty: must be true or false, not "sometimes"'),
        ("security_opt: [apparmor=x]", "services.s.security_opt[0]: unsupported --security-opt"),
        ("devices: [dev/fuse]", 'services.s.devices[0]: invalid --device "dev/fuse"'),
        ("cpus: none", "services.s.cpus: must be a number of CPUs above 0"),
        ("mem_limit: 1q", 'services.s.mem_limit: invalid size "1q"'),
        ("network_mode: bridge", 'services.s.network_mode: unsupported network_mode "bridge"'),
        ("network_mode: service:nope", 'joins the network of undefined service "nope"'),
        ("network_mode: service:s", "a service cannot join its own network"),
        (
            "network_mode: container:x\n    dns: 1.1.1.1",
            "compose.yaml:5: services.s.dns: cannot be used with network_mode container:x",
        ),
        ("network_mode: host\n    networks: [default]", "give network_mode or networks, not both"),
        ("logging: {options: {max-size: big}}", 'logging.options.max-size: invalid max-size "big"'),
        (
            "mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}",
            "compose.yaml:5: services.s.deploy.resources.limits.memory: differs from mem_limit",
        ),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, body, message):
    text = "services:\n  s:\n    image: i\n    " + body + "\n"
    got = error(tmp_path, text)
    assert got.startswith("compose.yaml:") and message in got, got
    assert "compose.yaml:4: " in got or "compose.yaml:5: " in message


def test_unsupported_log_driver_warns(tmp_path):
    loaded = load(tmp_path, "services: {a: {image: i, logging: {driver: journald}}}")
    assert loaded.project.service("a").logging == Logging()
    assert 'logging.driver: driver "journald" is not supported' in loaded.warnings[0]


def test_pids_limit_unlimited_and_limits_from_deploy_alone(tmp_path):
    s = load(
        tmp_path,
        "services: {a: {image: i, pids_limit: -1, deploy: {resources: {limits: {pids: 5}}}}}",
    ).project.service("a")
    assert s.pids_limit == 5
    assert (
        load(tmp_path, "services: {a: {image: i, pids_limit: 0}}").project.service("a").pids_limit
        is None
    )
