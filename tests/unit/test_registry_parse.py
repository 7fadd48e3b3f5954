"""Pure parts of the registry client: challenges, error bodies, auth files, TLS choice."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from rootless.errors import ConfigError
from rootless.image.registries_conf import RegistriesConf, RegistryEntry
from rootless.registry import AuthFiles, Credentials, tls_verify_for
from rootless.registry._challenge import parse_challenge
from rootless.registry._errors import error_details, status_error
from rootless.registry.authfile import lookup, normalize_key, store_credentials


def test_parse_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }


def test_parse_basic_challenge_and_garbage() -> None:
    challenge = parse_challenge('Basic realm="a \\"quoted\\" realm"')
    assert challenge is not None and challenge.scheme == "basic"
    assert challenge.realm == 'a "quoted" realm'
    assert parse_challenge("") is None


def test_error_details() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert error_details(body) == "MANIFEST_UNKNOWN: manifest unknown"
    assert error_details(b"<html>\n  oops  </html>") == "<html> oops </html>"


def test_status_errors() -> None:
    err = status_error("cannot pull manifest r/x:1", "r", 401, b"", user="bob")
    assert str(err) == (
        'cannot pull manifest r/x:1: unauthorized: r rejected the credentials of user "bob"; '
        "check the password and run: rootless login r"
    )
    err = status_error("cannot pull manifest r/x:1", "r", 500, b"boom")
    assert str(err) == "cannot pull manifest r/x:1: r answered HTTP 500 (boom)"


def test_normalize_key() -> None:
    assert normalize_key("https://index.docker.io/v1/") == "docker.io"
    assert normalize_key("http://localhost:5000/v2/") == "localhost:5000"
    assert normalize_key("quay.io/ns/repo") == "quay.io/ns/repo"


def test_auth_files_from_env(tmp_path: Path) -> None:
    files = AuthFiles.from_env({"HOME": str(tmp_path), "XDG_RUNTIME_DIR": "/run/user/7"})
    assert files.write_path == Path("/run/user/7/containers/auth.json")
    assert files.read_paths[1:] == (
        tmp_path / ".config/containers/auth.json",
        tmp_path / ".docker/config.json",
    )
    override = AuthFiles.from_env({"HOME": "/h", "REGISTRY_AUTH_FILE": "/x/auth.json"})
    assert override.write_path == Path("/x/auth.json")


def test_lookup_most_specific_and_first_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    files = AuthFiles(first, (first, second))

    def auth(user: str) -> dict[str, str]:
        return {"auth": base64.b64encode(f"{user}:pw".encode()).decode()}

    first.write_text(json.dumps({"auths": {"quay.io/team": auth("team")}}))
    second.write_text(
        json.dumps({"auths": {"quay.io": auth("all"), "https://index.docker.io/v1/": auth("hub")}})
    )
    assert lookup(files, "quay.io", "team/app") == Credentials("team", "pw")
    assert lookup(files, "quay.io", "other/app") == Credentials("all", "pw")
    assert lookup(files, "docker.io", "library/busybox") == Credentials("hub", "pw")
    assert lookup(files, "ghcr.io", "x") is None


def test_store_credentials_keeps_other_keys_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "containers" / "auth.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"other.io": {"auth": "eDp5"}}, "credHelpers": {}}))
    os.chmod(path, 0o644)
    store_credentials(AuthFiles(path, (path,)), "http://reg:5000/", Credentials("u", "p:w"))
    doc = json.loads(path.read_text())
    assert doc["auths"]["reg:5000"] == {"auth": base64.b64encode(b"u:p:w").decode()}
    assert doc["auths"]["other.io"] == {"auth": "eDp5"} and "credHelpers" in doc
    assert path.stat().st_mode & 0o777 == 0o600
    assert lookup(AuthFiles(path, (path,)), "reg:5000") == Credentials("u", "p:w")


def test_corrupt_auth_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError) as err:
        lookup(AuthFiles(path, (path,)), "x.io")
    assert str(err.value).startswith(f"cannot read auth file {path}: invalid JSON")


def test_tls_verify_for() -> None:
    conf = RegistriesConf(
        registries=(
            RegistryEntry("plain.local:5000", "plain.local:5000", insecure=True),
            RegistryEntry("mixed.io/dev", "mixed.io/dev", insecure=True),
        )
    )
    assert tls_verify_for("quay.io", None, conf) is True
    assert tls_verify_for("plain.local:5000", None, conf) is False
    # An explicit --tls-verify wins over registries.conf, either way.
    assert tls_verify_for("plain.local:5000", True, conf) is True
    assert tls_verify_for("quay.io", False, conf) is False
    # A longer prefix applies to names under it only.
    assert tls_verify_for("mixed.io/dev/app", None, conf) is False
    assert tls_verify_for("mixed.io", None, conf) is True
