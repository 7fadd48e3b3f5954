"""pull_policy and the build: keys beyond context/dockerfile/args/target (parsing)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from rootless.compose.files import load_project
from rootless.compose.model import Build, BuildSecret, refresh_seconds
from rootless.compose.render import project_dict
from rootless.errors import ConfigError


def load(tmp_path, text):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(cwd=tmp_path, environ={"HOME": "/home/u"})


def error(tmp_path, text):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    return e.value.message


FULL = """
services:
  app:
    image: reg.example/app:1
    pull_policy: if_not_present
    build:
      context: ./app
      dockerfile_inline: |
        FROM busybox
        RUN true
      labels: [a=1, "b=two words"]
      no_cache: true
      pull: "true"
      network: none
      secrets: [tok, {source: tok, target: other}]
      tags: [reg.example/app:latest, app:dev]
      cache_from: [x]
      platforms: [linux/arm64]
      extra_hosts: ["h:1.2.3.4", "v6=fd00::1", "v6b:fd00::2"]
      shm_size: 1g
      ulimits: {nofile: {soft: 512, hard: 1024}, nproc: 100}
      ssh: [default, "git=~/.ssh/agent.sock", "rel=run/agent.sock"]
      isolation: default
      colour: blue
secrets:
  tok: {file: ./tok.txt}
"""


def test_build_keys_are_read_and_the_unsupported_ones_warned_about(tmp_path):
    loaded = load(tmp_path, FULL)
    s = loaded.project.service("app")
    assert s.pull_policy == "missing"  # if_not_present is its other name
    assert s.build == Build(
        context=f"{tmp_path}/app",
        dockerfile_inline="FROM busybox\nRUN true\n",
        labels=(("a", "1"), ("b", "two words")),
        no_cache=True,
        pull=True,
        network="none",
        secrets=(BuildSecret("tok", "tok"), BuildSecret("tok", "other")),
        tags=("reg.example/app:latest", "app:dev"),
        extra_hosts=("h:1.2.3.4", "v6:fd00::1", "v6b:fd00::2"),
        shm_size=1 << 30,
        ulimits=("nofile=512:1024", "nproc=100:100"),
        ssh=("default", "git=/home/u/.ssh/agent.sock", f"rel={tmp_path}/run/agent.sock"),
    )
    assert loaded.warnings == (
        "compose.yaml:17: services.app.build.cache_from: not supported by rootless, ignored",
        "compose.yaml:18: services.app.build.platforms: not supported by rootless, ignored",
        "compose.yaml:23: services.app.build.isolation: not supported by rootless, ignored",
        "compose.yaml:24: services.app.build.colour: unknown key, ignored",
    )


def test_build_run_keys_in_their_other_forms(tmp_path):
    text = (
        "services:\n  a:\n    build:\n"
        "      extra_hosts: {db: 10.0.0.5, multi: [10.0.0.6, 'fd00::6']}\n"
        "      shm_size: 67108864\n"
        "      ulimits: {nofile: -1}\n"
        "      ssh: {default: null, key: ./agent.sock}\n"
    )
    b = load(tmp_path, text).project.service("a").build
    assert b is not None
    assert b.extra_hosts == ("db:10.0.0.5", "multi:10.0.0.6", "multi:fd00::6")
    assert b.shm_size == 64 << 20
    assert b.ulimits == ("nofile=-1:-1",)
    assert b.ssh == ("default", f"key={tmp_path}/agent.sock")


def test_labels_as_a_mapping_and_network_default(tmp_path):
    s = load(
        tmp_path,
        "services:\n  a:\n    build: {labels: {z: 1, y: x}, network: default}\n",
    ).project.service("a")
    assert s.build is not None
    assert s.build.labels == (("y", "x"), ("z", "1"))
    assert s.build.network is None and s.pull_policy is None


def test_config_prints_the_new_keys_and_reads_them_back(tmp_path):
    project = load(tmp_path, FULL).project
    out = project_dict(project)
    assert out["services"]["app"]["pull_policy"] == "missing"
    assert out["services"]["app"]["build"]["tags"] == ["reg.example/app:latest", "app:dev"]
    assert out["secrets"] == {"tok": {"file": f"{tmp_path}/tok.txt"}}
    again = tmp_path / "again"
    again.mkdir()
    (again / "compose.yaml").write_text(yaml.safe_dump(out))
    assert load_project(cwd=again, environ={}).project.service("app") == project.service("app")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "pull_policy: sometimes",
            'compose.yaml:4: services.s.pull_policy: unknown pull_policy "sometimes": use always, '
            "never, missing (if_not_present), build, daily, weekly or every_DURATION "
            "(every_12h, every_2d)",
        ),
        (
            "pull_policy: every_often",
            'compose.yaml:4: services.s.pull_policy: unknown pull_policy "every_often": use '
            "always, never, missing (if_not_present), build, daily, weekly or every_DURATION "
            "(every_12h, every_2d)",
        ),
        (
            "pull_policy: build",
            "compose.yaml:4: services.s.pull_policy: pull_policy build needs a build section",
        ),
        (
            "build: {dockerfile: D, dockerfile_inline: FROM x}",
            "compose.yaml:4: services.s.build.dockerfile_inline: give dockerfile or "
            "dockerfile_inline, not both",
        ),
        (
            "build: {network: mynet}",
            'compose.yaml:4: services.s.build.network: unsupported build network "mynet": '
            "rootless builds with host, none or default",
        ),
        (
            "build: {secrets: [nope]}",
            "compose.yaml:4: services.s.build.secrets[0]: secret \"nope\" is not declared in "
            "the top-level secrets section",
        ),
        ("build: {no_cache: maybe}", 'compose.yaml:4: services.s.build.no_cache: must be true '
         'or false, not "maybe"'),
        ("build: {tags: app}", "compose.yaml:4: services.s.build.tags: must be a list of "
         "strings, not a string"),
        ("build: {extra_hosts: [db=nowhere]}", 'compose.yaml:4: services.s.build.extra_hosts[0]: '
         'invalid extra host "db" "nowhere": use NAME=IP'),
        ("build: {shm_size: lots}", 'compose.yaml:4: services.s.build.shm_size: invalid size '
         '"lots": use bytes or a size like 64m or 1g'),
        ("build: {ulimits: {nofile: {soft: 10, hard: 5}}}", 'compose.yaml:4: '
         'services.s.build.ulimits.nofile: invalid ulimit "nofile=10:5": soft limit above hard '
         'limit'),
        ("build: {ulimits: {files: 5}}", 'compose.yaml:4: services.s.build.ulimits.files: '
         'invalid ulimit "files=5:5"'),
        ("build: {ssh: [=x]}", 'compose.yaml:4: services.s.build.ssh[0]: invalid ssh "=x": use '
         "default or ID=PATH"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_key(tmp_path, body, message):
    text = "services:\n  t: {image: t}\n  s:\n    " + body + "\n    image: i\n"
    assert error(tmp_path, text) == message


@pytest.mark.parametrize(
    ("policy", "seconds"),
    [
        ("daily", 86400.0),
        ("weekly", 604800.0),
        ("every_12h", 43200.0),
        ("every_1h30m", 5400.0),
        ("every_2d", 172800.0),
        ("every_1w", 604800.0),
        ("always", None),
        (None, None),
    ],
)
def test_refresh_policies(policy, seconds):
    assert refresh_seconds(policy) == seconds


def test_refresh_policy_is_accepted(tmp_path):
    s = load(tmp_path, "services:\n  a: {image: i, pull_policy: every_2d}\n").project.service("a")
    assert s.pull_policy == "every_2d"
