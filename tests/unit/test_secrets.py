"""The secret store and --secret parsing (files in tmp_path only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rootless._paths import StoragePaths
from rootless.errors import ConfigError
from rootless.secrets import (
    SecretNotFound,
    SecretRequest,
    SecretStore,
    parse_secret_flag,
    remove_container_secrets,
    secret_mounts,
    secret_store,
)


def test_parse_secret_flag() -> None:
    assert parse_secret_flag("tok") == SecretRequest("tok", "/run/secrets/tok", 0o444)
    assert parse_secret_flag("tok,target=key,mode=0400") == SecretRequest(
        "tok", "/run/secrets/key", 0o400
    )
    assert parse_secret_flag("tok,target=/etc/k,type=mount").target == "/etc/k"


@pytest.mark.parametrize(
    "text",
    ["", "a=b", "tok,mode=9", "tok,bogus=1", "tok,type=env", "tok,uid=5", "tok,mode=1,mode=2"],
)
def test_parse_secret_flag_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_secret_flag(text)


def test_store_roundtrip(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    s = store.create("db", b"pw")
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "secrets" / f"{s.id}.data").stat().st_mode & 0o777 == 0o600
    assert store.find("db") == s == store.find(s.id[:6])
    assert store.value(s) == b"pw"
    assert "pw" not in repr(s.to_json())
    with pytest.raises(ConfigError, match="exists"):
        store.create("db", b"other")
    s2 = store.create("db", b"new", replace=True)
    assert [x.id for x in store.list()] == [s2.id]
    assert store.value(store.find("db")) == b"new"
    store.remove("db")
    assert store.list() == []
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == [".lock"]
    with pytest.raises(SecretNotFound):
        store.find("db")


@pytest.mark.parametrize(("name", "data"), [("-x", b"v"), ("ok", b""), ("a/b", b"v")])
def test_store_refuses(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(ConfigError):
        SecretStore(tmp_path).create(name, data)


def test_container_copies(tmp_path: Path) -> None:
    paths = StoragePaths(tmp_path / "d", tmp_path / "r", tmp_path / "c", tmp_path / "k")
    secret_store(paths).create("tok", b"value")
    mounts = secret_mounts(["tok", "tok,target=/k,mode=0400"], cid="c1", paths=paths)
    assert [m.destination for m in mounts] == ["/run/secrets/tok", "/k"]
    assert all("ro" in m.options and m.type == "bind" for m in mounts)
    assert Path(mounts[0].source).read_bytes() == b"value"
    assert os.stat(mounts[1].source).st_mode & 0o777 == 0o400
    assert Path(mounts[0].source).parent == tmp_path / "r" / "secrets" / "c1"
    remove_container_secrets(paths, "c1")
    assert not (tmp_path / "r" / "secrets" / "c1").exists()
    with pytest.raises(ConfigError, match="same target"):
        secret_mounts(["tok", "tok"], cid="c2", paths=paths)
