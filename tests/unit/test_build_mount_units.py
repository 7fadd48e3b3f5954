"""RUN --mount helpers: --secret parsing, mount points, scaffolding made and removed."""

from __future__ import annotations

import pytest

from rootless.build.cachemounts import cache_dir_name
from rootless.build.dockerfile import parse_mount
from rootless.build.mounts import (
    BuildSecret,
    _prune,
    _scaffold,
    parse_secret,
    secret_id,
    target_of,
)
from rootless.errors import BuildError


def test_parse_secret_forms():
    assert parse_secret("id=tok,src=/f") == BuildSecret("tok", "/f", None)
    assert parse_secret("id=tok,source=/f,type=file") == BuildSecret("tok", "/f", None)
    assert parse_secret("id=tok,env=TOKEN") == BuildSecret("tok", None, "TOKEN")
    assert parse_secret("type=env,id=TOKEN") == BuildSecret("TOKEN", None, "TOKEN")


@pytest.mark.parametrize(
    "text", ["src=/f", "id=a/b,src=/f", "id=x", "id=x,src=/f,env=V", "id=x,bogus=1", "id"]
)
def test_parse_secret_errors(text):
    with pytest.raises(BuildError):
        parse_secret(text)


def test_targets_and_ids():
    assert target_of(parse_mount("type=secret,id=tok"), "/w") == "/run/secrets/tok"
    assert target_of(parse_mount("type=cache,target=cache"), "/w") == "/w/cache"
    assert target_of(parse_mount("type=bind,target=/a/../b"), "/w") == "/b"
    assert secret_id(parse_mount("type=secret,target=/etc/key")) == "key"
    assert cache_dir_name("a") != cache_dir_name("b") and len(cache_dir_name("a")) == 32


def test_scaffold_makes_missing_points_and_prune_removes_only_empty_ones(tmp_path):
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    made = _scaffold(str(root), "/run/secrets/tok", is_dir=False)
    assert made == [str(root / "run/secrets"), str(root / "run/secrets/tok")]
    assert (root / "run/secrets/tok").is_file()
    assert _scaffold(str(root), "/run", is_dir=True) == []
    deep = _scaffold(str(root), "/a/b/c", is_dir=True)
    (root / "a" / "kept").write_text("written by the RUN\n")
    _prune(made + deep)
    assert not (root / "run/secrets").exists() and (root / "run").is_dir()
    assert not (root / "a/b").exists() and (root / "a/kept").exists()
