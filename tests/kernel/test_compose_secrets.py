"""compose secrets: a host file, read-only at /run/secrets/NAME (or its target)."""

from __future__ import annotations

import json

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


STORED = """
services:
  app:
    build:
      context: .
      dockerfile_inline: |
        FROM {image}
        RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /tok-len
      secrets: [{{source: token, target: tok}}]
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    secrets:
      - token
      - {{source: shared, target: /etc/shared, mode: 0400}}
secrets:
  token: {{environment: API_TOKEN}}
  shared: {{external: true, name: team_pw}}
"""


def test_environment_and_external_secrets(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = tmp_path / "compose.yaml"
    file.write_text(STORED.format(image=image))

    def compose(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return rootless("compose", "-f", str(file), "-p", "st", *args, timeout=120, env=env)

    r = compose("up", "-d")  # API_TOKEN unset
    assert r.returncode == 125
    assert 'with secret "token": the variable API_TOKEN of its environment: is not set' in r.stderr
    r = compose("up", "-d", env={"API_TOKEN": "tok-xyz"})  # team_pw not stored yet
    assert r.returncode == 125
    assert 'cannot give secret "shared" to service "app": it is external' in r.stderr
    ok(rootless("secret", "create", "team_pw", "-", input="pw-123"))
    try:
        ok(compose("up", "-d", env={"API_TOKEN": "tok-xyz"}))
        show = "cat /run/secrets/token; echo; cat /etc/shared; echo; stat -c %a /etc/shared"
        got = ok(compose("exec", "-T", "app", "sh", "-c", show))
        assert got.split() == ["tok-xyz", "pw-123", "400"]
        # the build saw it (7 bytes), the image keeps only what the RUN wrote
        assert ok(compose("exec", "-T", "app", "cat", "/tok-len")).strip() == "7"
        assert "st_token" in ok(rootless("secret", "ls", "--format", "{{.Name}}"))
        for where in (rootless("inspect", "st-app-1"), rootless("image", "inspect", "st-app"),
                      compose("config", env={"API_TOKEN": "tok-xyz"})):  # fmt: skip
            assert "tok-xyz" not in ok(where)
        r = compose("exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token")
        assert r.returncode != 0 and "Read-only file system" in r.stderr
    finally:
        r = compose("down", "--rmi", "local")
    ok(r)
    assert "Secret st_token  Removed" in r.stderr
    names = ok(rootless("secret", "ls", "--format", "{{.Name}}")).split()
    assert names == ["team_pw"]  # the external one stays
    assert "tok-xyz" not in "".join(
        p.read_text(errors="replace")
        for p in rootless.data_home.rglob("*")
        if p.is_file() and p.stat().st_size < 1 << 20
    )


def test_an_environment_secret_never_replaces_a_users_own(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = tmp_path / "compose.yaml"
    file.write_text(STORED.format(image=image))
    ok(rootless("secret", "create", "st_token", "-", input="mine"))
    ok(rootless("secret", "create", "team_pw", "-", input="pw-123"))
    env = {"API_TOKEN": "tok-xyz"}
    r = rootless("compose", "-f", str(file), "-p", "st", "up", "-d", timeout=120, env=env)
    try:
        assert r.returncode == 125
        assert 'a secret "st_token" is stored already, not made by this project' in r.stderr
    finally:
        ok(rootless("compose", "-f", str(file), "-p", "st", "down", timeout=120, env=env))
    [mine] = json.loads(ok(rootless("secret", "inspect", "st_token")))
    assert mine["Spec"]["Labels"] == {}  # still the user's, and still there after down
