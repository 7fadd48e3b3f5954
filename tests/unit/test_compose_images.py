from __future__ import annotations

import pytest

from rootless.compose.files import load_project
from rootless.compose.images import build_steps, pull_steps, push_steps, rmi_images
from rootless.errors import ConfigError

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


def test_pull_skips_built_services_and_repeats(project):
    assert [s.argv for s in pull_steps(project, ALL)] == [("pull", "postgres:16")]


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
