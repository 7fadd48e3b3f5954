from __future__ import annotations

import pytest

from rootless.compose.files import find_compose_files, load_project, normalize_project_name
from rootless.errors import ConfigError

SIMPLE = "services:\n  web:\n    image: busybox\n"


def test_discovery_order_and_parents(tmp_path):
    for name in ("docker-compose.yml", "compose.yml"):
        (tmp_path / name).write_text(SIMPLE)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_compose_files(sub) == (tmp_path / "compose.yml",)
    (tmp_path / "compose.yaml").write_text(SIMPLE)
    assert find_compose_files(tmp_path) == (tmp_path / "compose.yaml",)


def test_discovery_takes_the_override_file(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(SIMPLE)
    (tmp_path / "docker-compose.override.yml").write_text("services:\n  web:\n    image: other\n")
    assert find_compose_files(tmp_path) == (
        tmp_path / "docker-compose.yml",
        tmp_path / "docker-compose.override.yml",
    )
    loaded = load_project(cwd=tmp_path, environ={})
    assert loaded.project.service("web").image == "other"


def test_nothing_found(tmp_path):
    with pytest.raises(ConfigError) as e:
        find_compose_files(tmp_path)
    assert e.value.message == f"no compose file found in {tmp_path} or any parent directory"


@pytest.mark.parametrize(
    ("text", "name"),
    [("My App", "myapp"), ("_x.y-Z", "xy-z"), ("web_1", "web_1"), ("--", ""), ("Ünï", "n")],
)
def test_normalize_project_name(text, name):
    assert normalize_project_name(text) == name


def test_project_name_precedence(tmp_path):
    project = tmp_path / "My.Dir"
    project.mkdir()
    (project / "compose.yaml").write_text(SIMPLE)
    assert load_project(cwd=project, environ={}).project.name == "mydir"
    (project / "compose.yaml").write_text("name: from-file\n" + SIMPLE)
    assert load_project(cwd=project, environ={}).project.name == "from-file"
    (project / ".env").write_text("COMPOSE_PROJECT_NAME=from-dotenv\n")
    assert load_project(cwd=project, environ={}).project.name == "from-dotenv"
    env = {"COMPOSE_PROJECT_NAME": "from-env"}
    assert load_project(cwd=project, environ=env).project.name == "from-env"
    loaded = load_project(cwd=project, environ=env, project_name="from-flag")
    assert loaded.project.name == "from-flag"


def test_bad_project_names(tmp_path):
    (tmp_path / "compose.yaml").write_text("name: Bad Name\n" + SIMPLE)
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path, environ={})
    assert e.value.message == 'invalid project name "Bad Name" (compose.yaml:1: name)'
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path, environ={}, project_name="-x")
    assert e.value.message == 'invalid project name "-x" (from -p)'


def test_several_files_merge_and_name_their_errors(tmp_path):
    (tmp_path / "base.yaml").write_text(SIMPLE + "    ports: ['80:80']\n")
    (tmp_path / "prod.yaml").write_text("services:\n  web:\n    ports: ['81:x']\n")
    with pytest.raises(ConfigError) as e:
        load_project(["base.yaml", "prod.yaml"], cwd=tmp_path, environ={})
    assert e.value.message == (
        'prod.yaml:3: services.web.ports[1]: invalid port "81:x": '
        '"x" is not a port or a range of ports (1-65535)'
    )


def test_files_relative_to_the_first_file(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yaml").write_text(SIMPLE + "    volumes: ['./data:/data']\n")
    (tmp_path / "deploy" / ".env").write_text("X=1\n")
    loaded = load_project(["deploy/compose.yaml"], cwd=tmp_path, environ={})
    assert loaded.project.directory == str(tmp_path / "deploy")
    assert loaded.project.name == "deploy"
    assert loaded.project.service("web").volumes[0].source == str(tmp_path / "deploy" / "data")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_project(["nope.yaml"], cwd=tmp_path, environ={})
    assert e.value.message == "compose file nope.yaml not found"


def test_env_files_replace_dotenv(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox:${TAG}\n")
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    (tmp_path / "a.env").write_text("TAG=a\n")
    (tmp_path / "b.env").write_text("TAG=${TAG}-b\n")
    loaded = load_project(cwd=tmp_path, environ={}, env_files=["a.env", "b.env"])
    assert loaded.project.service("web").image == "busybox:a-b"
    with pytest.raises(ConfigError) as e:
        load_project(cwd=tmp_path, environ={}, env_files=["none.env"])
    assert e.value.message == f"cannot read {tmp_path}/none.env: No such file or directory"


def test_compose_file_variable_and_profiles(tmp_path):
    (tmp_path / "one.yaml").write_text(SIMPLE)
    loaded = load_project(
        cwd=tmp_path,
        environ={"COMPOSE_FILE": "one.yaml", "COMPOSE_PROFILES": "a,b"},
        profiles=["c", "a"],
    )
    assert loaded.files == (tmp_path / "one.yaml",)
    assert loaded.profiles == ("c", "a", "b")
