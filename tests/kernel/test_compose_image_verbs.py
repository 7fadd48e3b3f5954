"""compose pull, build, push, top, up --build and down --rmi for real."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import ok

STACK = """
services:
  app:
    build: {{context: ./app, args: {{GREETING: hi}}}}
    image: {registry}/demo/app:1
    command: sh -c 'cat /greeting; trap "exit 0" TERM; while true; do sleep 0.1; done'
  other:
    build: ./app
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    profiles: [extra]
  cache:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
"""

CONTAINERFILE = 'FROM {image}\nARG GREETING=none\nRUN echo "$GREETING {version}" > /greeting\n'


@pytest.fixture
def stack(tmp_path, busybox_image):  # type: ignore[no-untyped-def]
    d = tmp_path / "proj"
    (d / "app").mkdir(parents=True)
    (d / "app" / "Containerfile").write_text(CONTAINERFILE.format(image=busybox_image, version=1))
    registry = busybox_image.split("/")[0]
    (d / "compose.yaml").write_text(STACK.format(image=busybox_image, registry=registry))
    return d


def test_pull_build_top_push_rebuild_and_down_rmi(rootless, stack, busybox_image):  # type: ignore[no-untyped-def]
    registry = busybox_image.split("/")[0]

    def compose(*args: str):  # type: ignore[no-untyped-def]
        base = ("compose", "-f", str(stack / "compose.yaml"), "-p", "demo", "--profile", "extra")
        return rootless(*base, *args, timeout=120)

    try:
        ok(compose("pull", "-q", "--tls-verify=false"))
        assert busybox_image in ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}"))
        ok(compose("build", "-q", "--tls-verify=false", "app", "other"))
        names = ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}"))
        assert f"{registry}/demo/app:1" in names and "demo-other" in names

        ok(compose("up", "-d"))
        assert "hi 1" in ok(rootless("logs", "demo-app-1"))
        top = ok(compose("top"))
        for name in ("demo-app-1", "demo-cache-1", "demo-other-1"):
            assert name in top
        assert "PID" in top and "sleep" in top

        ok(compose("push", "-q", "--tls-verify=false"))
        url = f"http://{registry}/v2/demo/app/tags/list"
        assert json.loads(urllib.request.urlopen(url, timeout=5).read())["tags"] == ["1"]

        # a new image recreates the service that runs it, not the others
        (stack / "app" / "Containerfile").write_text(
            CONTAINERFILE.format(image=busybox_image, version=2)
        )
        r = compose("up", "-d", "--build", "app")
        ok(r)
        assert "demo-app-1  Recreated" in r.stderr
        assert "demo-cache-1  Recreated" not in r.stderr
        assert "hi 2" in ok(rootless("logs", "demo-app-1"))

        r = compose("down", "--rmi", "local")
        ok(r)
        assert "Image demo-other  Removed" in r.stderr
        names = ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}"))
        assert "demo-other" not in names
        assert f"{registry}/demo/app:1" in names and busybox_image in names
    finally:
        ok(compose("down", "--rmi", "all"))
    assert ok(rootless("ps", "-aq")).strip() == ""
    # what the rebuild untagged stays, as with Compose: only named images go
    left = ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert left == ["<none>:<none>"]


DEPS = """
services:
  web:
    image: {image}
    depends_on: [db]
  db:
    image: {registry}/demo/db:1
  app:
    build: .
    image: {registry}/demo/never-pushed:1
"""


def test_pull_include_deps_and_ignore_buildable(rootless, tmp_path, busybox_image):  # type: ignore[no-untyped-def]
    registry = busybox_image.split("/")[0]
    db = f"{registry}/demo/db:1"
    ok(rootless("pull", "-q", "--tls-verify=false", busybox_image))
    ok(rootless("tag", busybox_image, db))
    ok(rootless("push", "-q", "--tls-verify=false", db))
    ok(rootless("rmi", busybox_image, db))
    (tmp_path / "compose.yaml").write_text(DEPS.format(image=busybox_image, registry=registry))

    def compose(*args: str):  # type: ignore[no-untyped-def]
        base = ("compose", "-f", str(tmp_path / "compose.yaml"), "-p", "deps", "pull")
        return rootless(*base, "-q", "--tls-verify=false", *args, timeout=120)

    def local() -> list[str]:
        return ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}")).split()

    ok(compose("web"))
    assert local() == [busybox_image]  # not its dependency
    ok(compose("--include-deps", "web"))
    assert sorted(local()) == sorted([busybox_image, db])
    # a service with build: is pulled too; its failure is a warning (it can be built)
    r = compose()
    ok(r)
    assert (
        f'cannot pull the image {registry}/demo/never-pushed:1 of service "app"; '
        "build it: rootless compose build app" in r.stderr
    )
    r = compose("--ignore-buildable")
    ok(r)
    assert "never-pushed" not in r.stderr
