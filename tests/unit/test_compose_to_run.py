from __future__ import annotations

import json
import textwrap

import pytest

from rootless.compose.files import load_project
from rootless.compose.plan import config_hash
from rootless.compose.to_run import NetworkAttachment, service_run
from rootless.errors import ConfigError
from rootless.supervise.health import health_config

TEXT = """
name: shop
services:
  web:
    build: ./web
    entrypoint: [/bin/tini, --]
    command: [serve, --port, "80"]
    environment: {A: "1", UNSET: null}
    ports: ["8080:80", "127.0.0.1::53/udp", "[::1]:9000:90"]
    volumes:
      - ./html:/srv:ro
      - data:/data:nocopy
      - /anon
      - {type: tmpfs, target: /cache, tmpfs: {size: 1k, mode: "700"}}
    tmpfs: [/run]
    secrets: [token]
    networks: {front: {aliases: [www]}}
    healthcheck: {test: [CMD, wget, -q, localhost], interval: 1500ms, retries: 4}
    restart: on-failure:2
    stop_signal: SIGINT
    stop_grace_period: 3s
    labels: {tier: web}
    working_dir: /srv
    user: "101"
    hostname: shop-web
    cap_add: [NET_RAW]
    cap_drop: [MKNOD]
    read_only: true
    init: true
    deploy: {replicas: 2}
  db:
    image: db
    entrypoint: ""
    healthcheck: {disable: true}
volumes:
  data:
networks:
  front:
secrets:
  token: {file: ./token.txt}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(TEXT))
    return load_project(cwd=tmp_path, environ={}).project


def test_service_run(project, tmp_path):
    run = service_run(project, "web", 2)
    o = run.options
    assert o.name == "shop-web-2"
    assert o.image == "shop-web"  # built services get PROJECT-SERVICE
    assert (o.entrypoint, o.command) == ("/bin/tini", ("--", "serve", "--port", "80"))
    assert o.env == (("A", "1"),)
    assert o.network.mode == "shop_front"
    assert o.network.publish == ("8080:80/tcp", "127.0.0.1::53/udp", "[::1]:9000:90/tcp")
    assert o.mounts.mounts == (
        f"type=bind,source={tmp_path}/html,target=/srv,ro",
        "type=volume,source=shop_data,target=/data,volume-nocopy=true",
        "type=volume,target=/anon",
        "type=tmpfs,target=/cache,tmpfs-size=1024,tmpfs-mode=700",
        f"type=bind,source={tmp_path}/token.txt,target=/run/secrets/token,ro",
    )
    assert o.mounts.tmpfs == ("/run",)
    assert (o.workdir, o.user, o.hostname) == ("/srv", "101", "shop-web")
    assert (o.cap_add, o.cap_drop, o.read_only, o.init) == (("NET_RAW",), ("MKNOD",), True, True)
    assert run.networks == (NetworkAttachment("shop_front", ("web", "www")),)
    assert run.volumes == ("shop_data",)
    assert run.host_dirs == (f"{tmp_path}/html",)
    extra = o.extra
    assert extra["restart"] == "on-failure:2"
    assert extra["stop_timeout"] == 3.0
    assert extra["stop_signal"] == "SIGINT"
    digest = config_hash(project, "web")
    assert extra["labels"] == {
        "tier": "web",
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.config-hash": digest,
        "com.docker.compose.oneoff": "False",
    }
    assert extra["compose"] == {
        "project": "shop",
        "service": "web",
        "number": 2,
        "config_hash": digest,
    }
    flags = extra["health_flags"]
    assert json.loads(flags["cmd"]) == ["CMD", "wget", "-q", "localhost"]
    # the flags are what the engine's healthcheck code accepts
    health = health_config(None, **{k: v for k, v in flags.items() if k != "disabled"})
    assert health is not None
    assert (health.test, health.interval, health.retries) == (
        ("CMD", "wget", "-q", "localhost"), 1.5, 4,
    )  # fmt: skip


def test_mount_flags_parse_with_the_engine_parser(project):
    from rootless.volumes.parse import parse_mount_flag

    specs = [parse_mount_flag(m) for m in service_run(project, "web").options.mounts.mounts]
    assert [(s.kind, s.target, s.readonly) for s in specs] == [
        ("bind", "/srv", True),
        ("volume", "/data", False),
        ("volume", "/anon", False),
        ("tmpfs", "/cache", False),
        ("bind", "/run/secrets/token", True),
    ]
    assert specs[1].copy is False


def test_publish_specs_parse_with_the_engine_parser(project):
    from rootless.network.ports import parse_publish

    mappings = [parse_publish(p)[0] for p in service_run(project, "web").options.network.publish]
    assert [(m.host_ip, m.host_port, m.container_port, m.protocol) for m in mappings] == [
        ("", 8080, 80, "tcp"),
        ("127.0.0.1", 0, 53, "udp"),
        ("::1", 9000, 90, "tcp"),
    ]


def test_empty_entrypoint_and_disabled_healthcheck(project):
    o = service_run(project, "db").options
    assert (o.entrypoint, o.command, o.image, o.name) == ("", (), "db", "shop-db-1")
    assert o.network.mode == "shop_default"
    assert o.extra["health_flags"] == {"disabled": True}


def test_replica_out_of_range(project):
    with pytest.raises(ConfigError) as e:
        service_run(project, "db", 2)
    assert e.value.message == 'service "db" has no replica 2 (1-1)'
