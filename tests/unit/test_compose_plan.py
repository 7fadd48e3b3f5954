from __future__ import annotations

import textwrap

import pytest

from rootless.compose.files import load_project
from rootless.compose.plan import (
    config_hash,
    container_names,
    diff_projects,
    enabled_services,
    find_cycle,
    restart_dependents,
    select_services,
    start_order,
    stop_order,
)
from rootless.errors import ConfigError

PIPELINE = """
name: pipe
services:
  api:
    image: api
    depends_on: {processor: {condition: service_healthy}}
  processor:
    image: proc
    depends_on: [ingest, migrate]
  ingest:
    image: ingest
    deploy: {replicas: 2}
  migrate:
    image: m
    profiles: [setup]
  debug:
    image: d
    profiles: [debug]
    depends_on: [api]
  named:
    image: n
    container_name: fixed
"""


def project(tmp_path, text=PIPELINE):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(cwd=tmp_path, environ={}).project


def test_find_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ("b", "c", "b")
    assert find_cycle({"x": ["x"]}) == ("x", "x")


def test_start_and_stop_order(tmp_path):
    p = project(tmp_path)
    order = start_order(p)
    assert order == ("ingest", "migrate", "named", "processor", "api", "debug")
    assert stop_order(p) == tuple(reversed(order))


def test_profiles(tmp_path):
    p = project(tmp_path)
    assert enabled_services(p, ()) == ("api", "processor", "ingest", "named")
    assert enabled_services(p, ("debug",)) == ("api", "processor", "ingest", "debug", "named")
    assert set(enabled_services(p, ("*",))) == {s.name for s in p.services}


def test_dependency_in_a_disabled_profile_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        select_services(project(tmp_path))
    assert e.value.message == (
        'service "processor" depends on "migrate", whose profile is not enabled'
    )
    assert e.value.hint == "add --profile setup (its profiles: setup)"


def test_select(tmp_path):
    p = project(tmp_path)
    assert select_services(p, profiles=["setup"]) == (
        "ingest", "migrate", "named", "processor", "api",
    )  # fmt: skip
    # naming a service enables its profiles; its dependencies come along
    assert select_services(p, ["debug"], profiles=["setup"]) == (
        "ingest", "migrate", "processor", "api", "debug",
    )  # fmt: skip
    assert select_services(p, ["api"], no_deps=True) == ("api",)
    assert select_services(p, ["processor", "ingest"], no_deps=True) == ("ingest", "processor")
    with pytest.raises(ConfigError, match='no such service: "nope"'):
        select_services(p, ["nope"])


def test_optional_dependency_is_left_out(tmp_path):
    p = project(
        tmp_path,
        """
        services:
          a: {image: i, depends_on: {b: {condition: service_started, required: false}}}
          b: {image: i, profiles: [x]}
        """,
    )
    warnings: list[str] = []
    assert select_services(p, warn=warnings.append) == ("a",)
    assert warnings == [
        'service "a" depends on "b", whose profile is not enabled: '
        "starting without it (required: false)"
    ]
    assert select_services(p, profiles=["x"], warn=warnings.append) == ("b", "a")
    assert len(warnings) == 1


def test_restart_dependents_follows_restart_true_transitively(tmp_path):
    p = project(
        tmp_path,
        """
        services:
          app: {image: i, depends_on: {db: {condition: service_started, restart: true}}}
          worker: {image: i, depends_on: {app: {restart: true}, cache: {}}}
          report: {image: i, depends_on: [db]}
          cache: {image: i}
          db: {image: i}
        """,
    )
    assert restart_dependents(p, ["db"]) == ("db", "app", "worker")
    assert restart_dependents(p, ["app"]) == ("app", "worker")
    assert restart_dependents(p, ["cache"]) == ("cache",)  # worker has no restart: true on it
    assert restart_dependents(p, []) == ()


def test_container_names(tmp_path):
    p = project(tmp_path)
    assert container_names(p, "ingest") == ("pipe-ingest-1", "pipe-ingest-2")
    assert container_names(p, "api") == ("pipe-api-1",)
    assert container_names(p, "named") == ("fixed",)


def test_config_hash_and_diff(tmp_path):
    old = project(tmp_path)
    changed = PIPELINE.replace("image: api", "image: api2").replace("replicas: 2", "replicas: 5")
    changed = changed.replace("depends_on: [ingest, migrate]", "depends_on: [ingest]")
    changed = changed.replace(
        "  named:\n    image: n\n    container_name: fixed\n", "  new:\n    image: x\n"
    )
    new = project(tmp_path, changed)
    assert config_hash(old, "ingest") == config_hash(new, "ingest")  # replicas do not count
    assert config_hash(old, "api") != config_hash(new, "api")
    assert len(config_hash(old, "api")) == 64
    assert diff_projects(old, new) == (
        ("new",),
        ("named",),
        ("api",),
        ("processor", "ingest", "migrate", "debug"),
    )


def test_hash_sees_network_and_volume_names(tmp_path):
    text = "services:\n  a: {image: i, volumes: ['v:/v']}\nvolumes:\n  v: {name: one}\n"
    first = project(tmp_path, text)
    second = project(tmp_path, text.replace("name: one", "name: two"))
    assert config_hash(first, "a") != config_hash(second, "a")
