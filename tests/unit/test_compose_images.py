from __future__ import annotations

import pytest

from rootless.compose.files import load_project
from rootless.compose.images import (
    LocalImage,
    build_steps,
    check_never,
    pull_steps,
    push_steps,
    rmi_images,
    up_build_steps,
    up_pull_steps,
)
from rootless.errors import ConfigError, ImageError

TEXT = """
name: shop
services:
  web:
    build:
      context: ./web
      dockerfile: Containerfile.prod
      target: run
      args: {VERSION: "2", FROM_ENV: null}
    image: registry.example/shop/web:2
  worker:
    build: ./worker
  db:
    image: postgres:16
  cache:
    image: postgres:16
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "compose.yaml").write_text(TEXT)
    return load_project(cwd=tmp_path, environ={}).project


ALL = ("web", "worker", "db", "cache")


def test_build_steps_give_the_service_image_its_file_target_and_args(project, tmp_path):
    web, worker = build_steps(project, ALL, no_cache=True)
    assert web.image == "registry.example/shop/web:2"
    assert web.argv == (
        "build", "-t", "registry.example/shop/web:2",
        "-f", f"{tmp_path}/web/Containerfile.prod",  # relative to the context
        "--target", "run",
        "--build-arg", "FROM_ENV", "--build-arg", "VERSION=2",  # null: from the environment
        "--no-cache", f"{tmp_path}/web",
    )  # fmt: skip
    assert worker.argv == ("build", "-t", "shop-worker", "--no-cache", f"{tmp_path}/worker")
    assert build_steps(project, ["db"]) == []


def test_pull_takes_built_services_that_name_an_image_once_each(project):
    steps = pull_steps(project, ALL)
    assert [(s.argv, s.optional) for s in steps] == [
        (("pull", "registry.example/shop/web:2"), True),  # built if the pull fails
        (("pull", "postgres:16"), False),
    ]
    assert pulled(pull_steps(project, ALL, ignore_buildable=True)) == ["postgres:16"]


def test_pull_by_policy(tmp_path):
    p = policies(tmp_path)
    names = [s.name for s in p.services]
    # compose pull: always by default; never and build skip; missing skips what is there
    have = {"i-miss": seen_at(0)}
    assert pulled(pull_steps(p, names, have)) == ["i-always", "i-default", "i-day", "i-both"]
    assert pulled(pull_steps(p, names, {}, policy="missing")) == [
        "i-always", "i-miss", "i-never", "i-default", "i-day", "i-built", "i-both",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match='invalid pull policy "sometimes"'):
        pull_steps(p, names, {}, policy="sometimes")


def seen_at(when: float) -> LocalImage:
    return LocalImage("sha256:x", when)


def pulled(steps):
    return [s.image for s in steps]


POLICIES = """
name: p
services:
  always: {image: i-always, pull_policy: always}
  miss: {image: i-miss, pull_policy: missing}
  never: {image: i-never, pull_policy: never}
  default: {image: i-default}
  day: {image: i-day, pull_policy: daily}
  built: {build: ., image: i-built, pull_policy: build}
  both: {build: ., image: i-both}
  local: {build: .}
"""


def policies(tmp_path):
    (tmp_path / "compose.yaml").write_text(POLICIES)
    return load_project(cwd=tmp_path, environ={}).project


def test_up_pulls_by_policy_and_builds_what_is_missing(tmp_path):
    p = policies(tmp_path)
    names = [s.name for s in p.services]
    now = 10 * 86400.0
    # nothing is there: each pulls except never (checked apart) and build; a buildable
    # image+build service tries a pull that may fail
    steps = up_pull_steps(p, names, {}, now=now)
    assert pulled(steps) == ["i-always", "i-miss", "i-default", "i-day", "i-both"]
    assert [s.optional for s in steps] == [False, False, False, False, True]
    assert pulled(up_build_steps(p, names, {})) == ["i-built", "i-both", "p-local"]

    # all there, pulled an hour ago: only always pulls; only build rebuilds
    fresh = {i: seen_at(now - 3600) for i in ("i-always", "i-miss", "i-never", "i-default",
                                        "i-day", "i-built", "i-both", "p-local")}  # fmt: skip
    assert pulled(up_pull_steps(p, names, fresh, now=now)) == ["i-always"]
    assert pulled(up_build_steps(p, names, fresh)) == ["i-built"]
    # two days later, daily pulls again
    assert pulled(up_pull_steps(p, names, fresh, now=now + 2 * 86400)) == ["i-always", "i-day"]


def test_up_overrides(tmp_path):
    p = policies(tmp_path)
    names = [s.name for s in p.services]
    everything = {i: seen_at(0) for i in ("i-always", "i-miss", "i-never", "i-default", "i-day",
                                     "i-built", "i-both", "p-local")}  # fmt: skip
    # --pull always: every named image (the built ones may fail); never: none
    assert pulled(up_pull_steps(p, names, everything, policy="always", now=1)) == [
        "i-always", "i-miss", "i-never", "i-default", "i-day", "i-built", "i-both",
    ]  # fmt: skip
    assert up_pull_steps(p, names, {}, policy="never") == []
    assert pulled(up_build_steps(p, names, everything, policy="never")) == []
    # --build: every service with build: is built, none of them pulled
    assert pulled(up_pull_steps(p, names, {}, build=True)) == [
        "i-always", "i-miss", "i-default", "i-day",
    ]  # fmt: skip
    assert pulled(up_build_steps(p, names, everything, build=True)) == [
        "i-built", "i-both", "p-local",
    ]  # fmt: skip


def test_never_with_a_missing_image_is_an_error_naming_the_service(tmp_path):
    p = policies(tmp_path)
    check_never(p, ["never"], {"i-never": seen_at(0)})
    check_never(p, ["default"], {})
    with pytest.raises(ImageError) as e:
        check_never(p, ["always", "never"], {})
    assert e.value.message == (
        'the image i-never of service "never" is not in the local store, and its pull '
        "policy is never"
    )
    assert e.value.hint == "pull it first (rootless pull i-never), or use pull_policy: missing"
    with pytest.raises(ImageError, match='service "default"'):
        check_never(p, ["default"], {}, policy="never")
    check_never(p, ["both", "local"], {}, policy="never")  # these can be built


def test_build_keys_become_build_flags(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        """
services:
  app:
    image: reg/app:1
    build:
      context: ./app
      dockerfile_inline: "FROM busybox"
      labels: {a: "1"}
      no_cache: true
      pull: true
      network: none
      secrets: [tok, {source: tok, target: other}]
      tags: [reg/app:latest]
      extra_hosts: {db: 10.0.0.5}
      shm_size: 128m
      ulimits: {nofile: {soft: 512, hard: 1024}}
      ssh: [default, git=./agent.sock]
secrets:
  tok: {file: ./tok.txt}
"""
    )
    p = load_project(cwd=tmp_path, environ={}).project
    (step,) = build_steps(p, ["app"])
    assert step.inline == "FROM busybox"
    assert step.argv == (
        "build", "-t", "reg/app:1", "-t", "reg/app:latest",
        "--label", "a=1", "--network", "none",
        "--secret", f"id=tok,src={tmp_path}/tok.txt",
        "--secret", f"id=other,src={tmp_path}/tok.txt",
        "--add-host", "db:10.0.0.5", "--shm-size", str(128 << 20),
        "--ulimit", "nofile=512:1024",
        "--ssh", "default", "--ssh", f"git={tmp_path}/agent.sock",
        "--no-cache", "--pull", f"{tmp_path}/app",
    )  # fmt: skip


def test_push_only_built_services_that_name_their_image(project):
    assert [s.argv for s in push_steps(project, ALL)] == [("push", "registry.example/shop/web:2")]


def test_rmi_all_or_local(project):
    assert rmi_images(project, "all") == [
        "registry.example/shop/web:2",
        "shop-worker",
        "postgres:16",
    ]
    assert rmi_images(project, "local") == ["shop-worker"]
    with pytest.raises(ConfigError, match='invalid --rmi "some"'):
        rmi_images(project, "some")
