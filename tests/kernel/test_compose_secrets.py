"""compose secrets: a host file, read-only at /run/secrets/NAME (or its target)."""

from __future__ import annotations

import pytest
from conftest import ok

STACK = """
services:
  app:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    secrets: [db_password, {{source: api_key, target: /etc/app/key}}]
secrets:
  db_password: {{file: ./secrets/db.txt}}
  api_key: {{file: ./secrets/{key_file}}}
"""


@pytest.fixture
def image(rootless, busybox_image):  # type: ignore[no-untyped-def]
    ok(rootless("pull", "-q", "--tls-verify=false", busybox_image))
    return busybox_image


def test_file_secrets_are_mounted_read_only(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db.txt").write_text("hunter2")
    (tmp_path / "secrets" / "key.txt").write_text("k-123")
    file = tmp_path / "compose.yaml"

    def compose(*args: str):  # type: ignore[no-untyped-def]
        return rootless("compose", "-f", str(file), "-p", "demo", *args, timeout=60)

    file.write_text(STACK.format(image=image, key_file="missing.txt"))
    r = compose("up", "-d")
    assert r.returncode == 125
    assert 'cannot give secret "api_key" to service "app"' in r.stderr
    assert f"{tmp_path}/secrets/missing.txt does not exist" in r.stderr

    file.write_text(STACK.format(image=image, key_file="key.txt"))
    try:
        ok(compose("up", "-d"))
        got = ok(compose("exec", "-T", "app", "cat", "/run/secrets/db_password", "/etc/app/key"))
        assert got == "hunter2k-123"
        r = compose("exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/db_password")
        assert r.returncode != 0 and "Read-only file system" in r.stderr
        # the value never reaches the container's configuration
        assert "hunter2" not in ok(rootless("inspect", "demo-app-1"))
    finally:
        ok(compose("down"))
    assert (tmp_path / "secrets" / "db.txt").read_text() == "hunter2"
