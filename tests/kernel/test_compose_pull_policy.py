"""pull_policy and the build: keys of compose, against a local registry, for real."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import ok

LOOP = 'trap "exit 0" TERM; while true; do sleep 0.1; done'


@pytest.fixture
def registry(rootless, busybox_image):  # type: ignore[no-untyped-def]
    """The test registry, trusted over plain HTTP (compose up has no --tls-verify)."""
    host = busybox_image.split("/")[0]
    conf = Path(rootless.config_home) / "containers" / "registries.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    return host


def publish(rootless, tmp_path, base, ref, text, *, push=True):  # type: ignore[no-untyped-def]
    """Build an image whose /v holds ``text``, named ``ref``; push it with ``push``."""
    ctx = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {base}\nRUN echo {text} > /v\n")
    ok(rootless("build", "-q", "-t", ref, str(ctx), timeout=120))
    if push:
        ok(rootless("push", "-q", ref, timeout=120))


def image(rootless, ref):  # type: ignore[no-untyped-def]
    return json.loads(ok(rootless("image", "inspect", ref)))[0]


def test_always_missing_never_and_image_with_build(rootless, tmp_path, registry, busybox_image):  # type: ignore[no-untyped-def]
    repo = f"{registry}/policy{uuid.uuid4().hex[:8]}"
    # the registry has v2 of app:1, the local store v1 under the same name
    publish(rootless, tmp_path, busybox_image, f"{repo}/app:1", "v2")
    publish(rootless, tmp_path, busybox_image, f"{repo}/app:1", "v1", push=False)
    publish(rootless, tmp_path, busybox_image, f"{repo}/both:1", "pushed")
    ok(rootless("rmi", f"{repo}/both:1"))
    proj = tmp_path / "proj"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "Containerfile").write_text(f"FROM {busybox_image}\nRUN echo built > /v\n")
    (proj / "compose.yaml").write_text(
        f"""
services:
  miss: {{image: "{repo}/app:1", pull_policy: missing, command: sh -c 'cat /v; {LOOP}'}}
  always: {{image: "{repo}/app:1", pull_policy: always, command: sh -c 'cat /v; {LOOP}'}}
  never: {{image: "{repo}/absent:1", pull_policy: never, command: "true"}}
  both: {{image: "{repo}/both:1", build: ./app, command: sh -c 'cat /v; {LOOP}'}}
  nowhere: {{image: "{repo}/nowhere:1", build: ./app, command: sh -c 'cat /v; {LOOP}'}}
"""
    )

    def compose(*args: str):  # type: ignore[no-untyped-def]
        return rootless("compose", "-f", str(proj / "compose.yaml"), "-p", "pp", *args,
                        timeout=180)  # fmt: skip

    def logs(container: str) -> str:
        return ok(rootless("logs", container)).strip()

    try:
        r = compose("up", "-d", "never")
        assert r.returncode != 0
        assert (
            f'Error: the image {repo}/absent:1 of service "never" is not in the local store, '
            "and its pull policy is never" in r.stderr
        )
        assert f"rootless pull {repo}/absent:1" in r.stderr
        assert ok(rootless("ps", "-aq")).strip() == ""
        assert "pp_default" not in ok(rootless("network", "ls"))

        # compose pull: --policy stands for pull_policy; failures may be ignored
        assert compose("pull", "--policy", "missing", "never").returncode != 0
        r = compose("pull", "--policy", "missing", "--ignore-pull-failures", "never", "miss")
        ok(r)
        assert f'cannot pull the image {repo}/absent:1 of service "never"; ignored' in r.stderr
        assert "Copying" not in r.stderr  # miss: present, and its policy is missing

        r = compose("up", "-d", "miss")  # present: used as it is
        ok(r)
        assert "Copying" not in r.stderr
        assert logs("pp-miss-1") == "v1"
        r = compose("up", "-d", "always")  # pulled again: the registry's newer image
        ok(r)
        assert "Copying" in r.stderr
        assert logs("pp-always-1") == "v2"
        # image + build: pulled when the registry has it, else built
        r = compose("up", "-d", "both", "nowhere")
        ok(r)
        assert logs("pp-both-1") == "pushed"
        assert logs("pp-nowhere-1") == "built"
        assert "Service nowhere  Pull failed, building the image instead" in r.stderr
        assert "Service both  Pull failed" not in r.stderr
        # --pull never overrides always: nothing is pulled, nothing recreated
        r = compose("up", "-d", "--pull", "never", "always")
        ok(r)
        assert "Recreated" not in r.stderr and "Copying" not in r.stderr
    finally:
        ok(compose("down"))
    assert ok(rootless("ps", "-aq")).strip() == ""


def test_build_policy_and_build_keys(rootless, tmp_path, registry, busybox_image):  # type: ignore[no-untyped-def]
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "tok.txt").write_text("s3cret")
    inline = (
        f"FROM {busybox_image}\n"
        "RUN --mount=type=secret,id=token cat /run/secrets/token > /token\n"
        "RUN cat /proc/sys/kernel/random/uuid > /id\n"
    )
    (proj / "compose.yaml").write_text(
        json.dumps(
            {
                "services": {
                    "app": {
                        "build": {
                            "context": ".",
                            "dockerfile_inline": inline,
                            "labels": {"com.example.team": "blue"},
                            "no_cache": True,
                            "tags": ["extra/app:dev"],
                            "secrets": [{"source": "tok", "target": "token"}],
                        },
                        "pull_policy": "build",
                        "command": ["sh", "-c", f"cat /id; {LOOP}"],
                    }
                },
                "secrets": {"tok": {"file": "./tok.txt"}},
            }
        )
    )

    def compose(*args: str):  # type: ignore[no-untyped-def]
        return rootless("compose", "-f", str(proj / "compose.yaml"), "-p", "bp", *args,
                        timeout=180)  # fmt: skip

    try:
        ok(compose("up", "-d"))
        first = image(rootless, "bp-app")
        assert first["Config"]["Labels"]["com.example.team"] == "blue"
        assert image(rootless, "extra/app:dev")["Id"] == first["Id"]  # tags: more names
        assert ok(rootless("exec", "bp-app-1", "cat", "/token")) == "s3cret"
        id1 = ok(rootless("logs", "bp-app-1")).strip()
        # pull_policy build rebuilds on every up; no_cache makes RUN run again
        r = compose("up", "-d")
        ok(r)
        assert "bp-app-1  Recreated" in r.stderr
        assert image(rootless, "bp-app")["Id"] != first["Id"]
        id2 = ok(rootless("logs", "bp-app-1")).strip()
        assert id1 and id2 and id1 != id2
    finally:
        ok(compose("down", "--rmi", "all"))
    assert ok(rootless("ps", "-aq")).strip() == ""
