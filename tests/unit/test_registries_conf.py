from pathlib import Path

import pytest

from rootless.errors import ConfigError
from rootless.image.registries_conf import default_paths, load


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_empty_means_docker_hub(tmp_path: Path) -> None:
    conf = load([tmp_path / "missing.conf"])
    assert conf.unqualified_search() == ("docker.io",)
    assert not conf.is_insecure("localhost:5000")


def test_v2_format(tmp_path: Path) -> None:
    p = write(
        tmp_path / "r.conf",
        """
unqualified-search-registries = ["quay.io", "docker.io"]
[[registry]]
location = "localhost:5000"
insecure = true
[[registry]]
prefix = "example.com/foo"
location = "mirror.local/foo"
[[registry]]
location = "evil.io"
blocked = true
[aliases]
"myapp" = "quay.io/team/myapp"
""",
    )
    conf = load([p])
    assert conf.unqualified_search() == ("quay.io", "docker.io")
    assert conf.is_insecure("localhost:5000")
    assert not conf.is_insecure("localhost:5001")
    assert [str(r) for r in conf.candidates("app:1")] == [
        "quay.io/app:1",
        "docker.io/library/app:1",
    ]
    assert [str(r) for r in conf.candidates("myapp:2")] == ["quay.io/team/myapp:2"]
    ref = conf.candidates("example.com/foo/bar:1")[0]
    assert str(conf.rewrite(ref)) == "mirror.local/foo/bar:1"
    assert conf.is_blocked(conf.candidates("evil.io/x")[0])


def test_v1_format(tmp_path: Path) -> None:
    p = write(
        tmp_path / "r.conf",
        """
[registries.search]
registries = ["registry.fedoraproject.org"]
[registries.insecure]
registries = ["10.0.0.1:5000"]
""",
    )
    conf = load([p])
    assert conf.unqualified_search() == ("registry.fedoraproject.org",)
    assert conf.is_insecure("10.0.0.1:5000")


def test_later_files_override(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", 'unqualified-search-registries = ["a.io"]\n')
    b = write(tmp_path / "b.conf", '[[registry]]\nlocation = "h:1"\ninsecure = true\n')
    c = write(tmp_path / "c.conf", 'unqualified-search-registries = ["c.io"]\n')
    conf = load([a, b, c])
    assert conf.unqualified_search() == ("c.io",)
    assert conf.is_insecure("h:1")


def test_user_file_replaces_system(tmp_path: Path) -> None:
    system = write(tmp_path / "etc" / "registries.conf", "")
    write(tmp_path / "etc" / "registries.conf.d" / "10-x.conf", "")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    assert default_paths(env, system) == [system, tmp_path / "etc/registries.conf.d/10-x.conf"]
    user = write(tmp_path / "cfg" / "containers" / "registries.conf", "")
    assert default_paths(env, system)[0] == user


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unqualified-search-registries = 'x'", "must be a list of strings"),
        ("[[registry]]\ninsecure = true", "needs a location or prefix"),
        ("[[registry]]\nlocation = 'a'\ninsecure = 'yes'", "must be true or false"),
        ("not toml [", "cannot read registries configuration"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path / "r.conf", text)
    with pytest.raises(ConfigError, match=message):
        load([p])


def test_default_files_are_cached_until_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, runtime = tmp_path / "config", tmp_path / "runtime"
    (config / "containers").mkdir(parents=True)
    runtime.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    user = config / "containers" / "registries.conf"
    user.write_text('unqualified-search-registries = ["a.example"]\n')
    first = load()
    assert "a.example" in first.unqualified_search()
    caches = list(runtime.rglob("registries.conf.cache"))
    assert len(caches) == 1
    assert load() == first  # from the cache
    user.write_text('unqualified-search-registries = ["bb.example"]\n')
    assert "bb.example" in load().unqualified_search()
    caches[0].write_bytes(b"not marshal data")
    assert "bb.example" in load().unqualified_search()
