"""Compose service keys that become run options, seen from inside the containers."""

from __future__ import annotations

from pathlib import Path

from _compose import compose, project
from conftest import ok

FILE = """
services:
  db:
    image: {image}
    command: sleep 1000
    hostname: dbhost
    extra_hosts: ["registry.test:10.1.2.3"]
    dns: 9.9.9.9
    dns_search: [corp.test]
    ulimits: {{nofile: {{soft: 500, hard: 600}}}}
    shm_size: 32m
    stop_grace_period: 1s
  app:
    image: {image}
    command: sleep 1000
    network_mode: service:db
    stop_grace_period: 1s
"""


def test_service_keys_reach_the_container_and_network_mode_shares_a_namespace(
    rootless, image, tmp_path: Path
):  # type: ignore[no-untyped-def]
    file = project(tmp_path, FILE.format(image=image))
    try:
        ok(compose(rootless, file, "up", "-d", timeout=120))
        hosts = ok(compose(rootless, file, "exec", "-T", "db", "cat", "/etc/hosts"))
        assert "10.1.2.3\tregistry.test" in hosts or "10.1.2.3 registry.test" in hosts
        resolv = ok(compose(rootless, file, "exec", "-T", "db", "cat", "/etc/resolv.conf"))
        assert "nameserver 9.9.9.9" in resolv and "search corp.test" in resolv
        limits = ok(
            compose(rootless, file, "exec", "-T", "db", "sh", "-c", "ulimit -Sn; ulimit -Hn")
        )
        assert limits.split() == ["500", "600"]
        shm = (
            ok(compose(rootless, file, "exec", "-T", "db", "df", "-k", "/dev/shm"))
            .splitlines()[-1]
            .split()
        )
        assert shm[1] == str(32 * 1024)
        # app joined db's network namespace: same namespace, same hostname files
        net = [
            ok(compose(rootless, file, "exec", "-T", s, "readlink", "/proc/self/ns/net")).strip()
            for s in ("db", "app")
        ]
        assert net[0] == net[1]
        assert "registry.test" in ok(
            compose(rootless, file, "exec", "-T", "app", "cat", "/etc/hosts")
        )
    finally:
        ok(compose(rootless, file, "down", "-t", "1", timeout=60))
